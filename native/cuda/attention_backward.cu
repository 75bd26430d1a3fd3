// The backward of attention on the GPU, as native/cpu/attention_backward.cpp
// computes it: a warp per query row recomputes its log-sum-exp, D_i = dO_i.O_i
// and dq_i; then a warp per key walks the rows that see it (every head of its
// group, in order), rebuilding P_ij from the kept log-sum-exp, and sums dk_j and
// dv_j in registers: no atomics, the same bits on every run. Head sizes up to
// 128 (four values a lane).
#include "common.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

constexpr int kLanes = 32, kPer = 4, kWarps = 4;

struct Head {
  const float* p;
  int64_t sb, ss, sh;
  __device__ const float* row(int64_t b, int64_t s, int64_t h) const { return p + b * sb + s * ss + h * sh; }
};

struct Grad {
  float* p;
  int64_t sb, ss, sh;
  __device__ float* row(int64_t b, int64_t s, int64_t h) const { return p + b * sb + s * ss + h * sh; }
};

struct BackArgs {
  Head q, k, v, o, dout;
  Grad dq, dk, dv;
  int64_t B, Sq, Skv, Hq, Hkv, D;
  float scale;
  int causal;
  double* lse;    // [B,Hq,Sq]
  double* delta;  // [B,Hq,Sq]
};

// a.b over D values, lane l holding d = l, l + 32, ...; every lane gets the sum.
__device__ __forceinline__ float warp_dot(const float* a, const float* b, int64_t D) {
  float s = 0.0f;
  for (int64_t d = threadIdx.x % kLanes; d < D; d += kLanes) s += a[d] * b[d];
  return warp_sum(s);
}

__global__ void __launch_bounds__(kLanes* kWarps) attention_backward_rows(BackArgs a) {
  const int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / kLanes;
  if (row >= a.B * a.Hq * a.Sq) return;
  const int64_t i = row % a.Sq, h = (row / a.Sq) % a.Hq, b = row / (a.Sq * a.Hq), hk = h / (a.Hq / a.Hkv);
  const int lane = threadIdx.x % kLanes;
  const int64_t n = a.causal ? min(a.Skv, i + 1 + (a.Skv - a.Sq)) : a.Skv;
  const float *qi = a.q.row(b, i, h), *doi = a.dout.row(b, i, h);
  float* dqi = a.dq.row(b, i, h);
  float acc[kPer] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (n > 0) {
    double m = -INFINITY, sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      const double s = a.scale * warp_dot(qi, a.k.row(b, j, hk), a.D);
      if (s > m) {
        sum = sum * exp(m - s) + 1.0;
        m = s;
      } else {
        sum += exp(s - m);
      }
    }
    const double lse = m + log(sum);
    const double delta = warp_dot(doi, a.o.row(b, i, h), a.D);
    for (int64_t j = 0; j < n; ++j) {
      const float* kj = a.k.row(b, j, hk);
      const double p = exp(a.scale * warp_dot(qi, kj, a.D) - lse);
      const float ds = float(p * (warp_dot(doi, a.v.row(b, j, hk), a.D) - delta));
      for (int c = 0; c < kPer; ++c) {
        const int64_t d = lane + int64_t(c) * kLanes;
        if (d < a.D) acc[c] += a.scale * ds * kj[d];
      }
    }
    if (lane == 0) {
      a.lse[row] = lse;
      a.delta[row] = delta;
    }
  }
  for (int c = 0; c < kPer; ++c) {
    const int64_t d = lane + int64_t(c) * kLanes;
    if (d < a.D) dqi[d] = acc[c];
  }
}

__global__ void __launch_bounds__(kLanes* kWarps) attention_backward_keys(BackArgs a) {
  const int64_t key = blockIdx.x * int64_t(kWarps) + threadIdx.x / kLanes;
  if (key >= a.B * a.Hkv * a.Skv) return;
  const int64_t j = key % a.Skv, hk = (key / a.Skv) % a.Hkv, b = key / (a.Skv * a.Hkv), G = a.Hq / a.Hkv;
  const int lane = threadIdx.x % kLanes;
  const float *kj = a.k.row(b, j, hk), *vj = a.v.row(b, j, hk);
  float dk[kPer] = {0.0f, 0.0f, 0.0f, 0.0f}, dv[kPer] = {0.0f, 0.0f, 0.0f, 0.0f};
  const int64_t first = a.causal ? max(int64_t(0), j - (a.Skv - a.Sq)) : 0;
  for (int64_t h = hk * G; h < (hk + 1) * G; ++h) {
    for (int64_t i = first; i < a.Sq; ++i) {
      const int64_t at = (b * a.Hq + h) * a.Sq + i;
      const float *qi = a.q.row(b, i, h), *doi = a.dout.row(b, i, h);
      const double p = exp(a.scale * warp_dot(qi, kj, a.D) - a.lse[at]);
      const float ds = float(p * (warp_dot(doi, vj, a.D) - a.delta[at]));
      for (int c = 0; c < kPer; ++c) {
        const int64_t d = lane + int64_t(c) * kLanes;
        if (d < a.D) {
          dv[c] += float(p) * doi[d];
          dk[c] += a.scale * ds * qi[d];
        }
      }
    }
  }
  float *dkj = a.dk.row(b, j, hk), *dvj = a.dv.row(b, j, hk);
  for (int c = 0; c < kPer; ++c) {
    const int64_t d = lane + int64_t(c) * kLanes;
    if (d < a.D) {
      dkj[d] = dk[c];
      dvj[d] = dv[c];
    }
  }
}

Head head(const te_tensor& t) {
  return Head{static_cast<const float*>(t.data), t.strides[0], t.strides[1], t.strides[2]};
}
Grad grad(const te_tensor& t) { return Grad{static_cast<float*>(t.data), t.strides[0], t.strides[1], t.strides[2]}; }

}  // namespace

void attention_backward(const te_tensor& q, const te_tensor& k, const te_tensor& v, const te_tensor& o,
                        const te_tensor& dout, const te_tensor& dq, const te_tensor& dk, const te_tensor& dv,
                        float scale, bool causal) {
  // Filled by name (C++17 has no designated initialisers); what is not named here is zero.
  BackArgs a{};
  a.q = head(q);
  a.k = head(k);
  a.v = head(v);
  a.o = head(o);
  a.dout = head(dout);
  a.dq = grad(dq);
  a.dk = grad(dk);
  a.dv = grad(dv);
  a.B = q.shape[0];
  a.Sq = q.shape[1];
  a.Hq = q.shape[2];
  a.D = q.shape[3];
  a.Skv = k.shape[1];
  a.Hkv = k.shape[2];
  a.scale = scale;
  a.causal = causal ? 1 : 0;
  if (a.D > kLanes * kPer)
    fail(TE_ERR_UNSUPPORTED, "attention backward on CUDA takes head sizes up to %d (got %lld)", kLanes * kPer,
         (long long)a.D);
  const int64_t rows = a.B * a.Hq * a.Sq, keys = a.B * a.Hkv * a.Skv;
  if (rows == 0 && keys == 0) return;
  if (rows > 65535LL * 32 * kWarps || keys > 65535LL * 32 * kWarps)
    fail(TE_ERR_UNSUPPORTED, "attention backward on CUDA: too many rows for one launch");
  const size_t stat_bytes = sizeof(double) * static_cast<size_t>(rows > 0 ? rows : 1);
  Scratch lse(stat_bytes), delta(stat_bytes);
  a.lse = lse.as<double>();
  a.delta = delta.as<double>();
  if (rows > 0) {
    attention_backward_rows<<<blocks_for(rows, kWarps), kLanes * kWarps, 0, stream()>>>(a);
    check_launch("attention backward (rows)");
  }
  if (keys > 0) {
    attention_backward_keys<<<blocks_for(keys, kWarps), kLanes * kWarps, 0, stream()>>>(a);
    check_launch("attention backward (keys)");
  }
}

}  // namespace te::cuda

// The backward of attention, flash-style: no S x S matrix is stored. With
// P = softmax(s) over each query's visible keys, s_ij = scale q_i.k_j, and
// D_i = dO_i.O_i (O the forward's output), the gradients are
//   dS_ij = P_ij (dO_i.v_j - D_i)
//   dq_i = scale sum_j dS_ij k_j,   dk_j = scale sum_i dS_ij q_i,   dv_j = sum_i P_ij dO_i.
// Phase 1 runs over query rows: each recomputes its log-sum-exp (kept) and D_i,
// then dq_i. Phase 2 runs over keys: each walks the query rows of every head
// sharing its kv head, in order, rebuilding P_ij from the kept log-sum-exp, so
// dk and dv are summed without atomics and are the same bits for any thread
// count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/threadpool.h"
#include "attention.h"

namespace te::cpu {

namespace {

struct View {
  const float* p;
  int64_t sb, ss, sh;
  const float* row(int64_t b, int64_t s, int64_t h) const { return p + b * sb + s * ss + h * sh; }
};

struct OutView {
  float* p;
  int64_t sb, ss, sh;
  float* row(int64_t b, int64_t s, int64_t h) const { return p + b * sb + s * ss + h * sh; }
};

View in(const te_tensor& t) { return {static_cast<const float*>(t.data), t.strides[0], t.strides[1], t.strides[2]}; }
OutView out(const te_tensor& t) { return {static_cast<float*>(t.data), t.strides[0], t.strides[1], t.strides[2]}; }

float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

}  // namespace

void attention_backward(const te_tensor& q, const te_tensor& k, const te_tensor& v, const te_tensor& o,
                        const te_tensor& dout, const te_tensor& dq, const te_tensor& dk, const te_tensor& dv,
                        float scale, bool causal) {
  const int64_t B = q.shape[0], Sq = q.shape[1], Hq = q.shape[2], D = q.shape[3];
  const int64_t Skv = k.shape[1], Hkv = k.shape[2], G = Hq / Hkv;
  // The last key query row i sees, plus one; and the first query row key j is seen by.
  const auto visible = [&](int64_t i) { return causal ? std::min(Skv, i + 1 + (Skv - Sq)) : Skv; };
  const auto first_seen = [&](int64_t j) { return causal ? std::max<int64_t>(0, j - (Skv - Sq)) : 0; };
  const View Q = in(q), K = in(k), V = in(v), O = in(o), dO = in(dout);
  const OutView dQ = out(dq), dK = out(dk), dV = out(dv);
  std::vector<double> lse(static_cast<size_t>(B * Hq * Sq)), delta(lse.size());

  // Rows and keys go to the threads in chunks of this many: each is written by one task only.
  constexpr int64_t kChunk = 16;
  const int64_t qchunks = (Sq + kChunk - 1) / kChunk, kchunks = (Skv + kChunk - 1) / kChunk;

  // Phase 1: per query row, its log-sum-exp and D_i, then dq_i.
  parallel_for(B * Hq * qchunks, [&](int64_t task, int) {
    const int64_t t = task / qchunks, i0 = task % qchunks * kChunk;
    const int64_t b = t / Hq, h = t % Hq, hk = h / G;
    std::vector<float> s(static_cast<size_t>(std::max<int64_t>(Skv, 1)));
    for (int64_t i = i0; i < std::min(Sq, i0 + kChunk); ++i) {
      const int64_t n = visible(i), at = t * Sq + i;
      const float *qi = Q.row(b, i, h), *doi = dO.row(b, i, h);
      float* dqi = dQ.row(b, i, h);
      std::fill(dqi, dqi + D, 0.0f);
      if (n <= 0) continue;
      double m = -INFINITY;
      for (int64_t j = 0; j < n; ++j) m = std::max<double>(m, s[j] = scale * dot(qi, K.row(b, j, hk), D));
      double sum = 0.0;
      for (int64_t j = 0; j < n; ++j) sum += std::exp(s[j] - m);
      lse[at] = m + std::log(sum);
      delta[at] = dot(doi, O.row(b, i, h), D);
      for (int64_t j = 0; j < n; ++j) {
        const float* kj = K.row(b, j, hk);
        const float ds = static_cast<float>(std::exp(s[j] - lse[at]) * (dot(doi, V.row(b, j, hk), D) - delta[at]));
        for (int64_t d = 0; d < D; ++d) dqi[d] += scale * ds * kj[d];
      }
    }
  });

  // Phase 2: per key, the rows that see it, head by head and row by row.
  parallel_for(B * Hkv * kchunks, [&](int64_t task, int) {
    const int64_t t = task / kchunks, j0 = task % kchunks * kChunk;
    const int64_t b = t / Hkv, hk = t % Hkv;
    for (int64_t j = j0; j < std::min(Skv, j0 + kChunk); ++j) {
      const float *kj = K.row(b, j, hk), *vj = V.row(b, j, hk);
      float *dkj = dK.row(b, j, hk), *dvj = dV.row(b, j, hk);
      std::fill(dkj, dkj + D, 0.0f);
      std::fill(dvj, dvj + D, 0.0f);
      for (int64_t h = hk * G; h < (hk + 1) * G; ++h) {
        for (int64_t i = first_seen(j); i < Sq; ++i) {
          const int64_t at = (b * Hq + h) * Sq + i;
          const float *qi = Q.row(b, i, h), *doi = dO.row(b, i, h);
          const double p = std::exp(scale * dot(qi, kj, D) - lse[at]);
          const float pf = static_cast<float>(p);
          const float ds = static_cast<float>(p * (dot(doi, vj, D) - delta[at]));
          for (int64_t d = 0; d < D; ++d) {
            dvj[d] += pf * doi[d];
            dkj[d] += scale * ds * qi[d];
          }
        }
      }
    }
  });
}

}  // namespace te::cpu

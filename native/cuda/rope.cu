// Rotary embedding, rotate-half layout: pairs (i, i + rotary_dim/2) of each
// head turned by position * theta^(-2i/rotary_dim). Frequencies and angles
// are formed in f32 as Hugging Face does (the CPU kernel's roundings); the
// sine and cosine in double, so the two devices agree.
#include <cmath>

#include "common.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

struct RopeArgs {
  const float* x;
  float* y;
  int64_t S, H;
  int64_t xs0, xs1, xs2, ys0, ys1, ys2;
  const void* pos;
  int pos_i64;
  int pos_2d;
  int64_t ps0, ps1;
  int64_t offset;
  int half;
  const float* inv_freq;
};

// One block per (b, s); threads over (head, pair).
__global__ void rope_kernel(RopeArgs a) {
  const int64_t t = blockIdx.x, b = t / a.S, s = t % a.S;
  int64_t p = a.offset + s;
  if (a.pos) {
    const int64_t idx = a.pos_2d ? b * a.ps0 + s * a.ps1 : s * a.ps0;
    p = a.pos_i64 ? static_cast<const int64_t*>(a.pos)[idx] : static_cast<const int32_t*>(a.pos)[idx];
  }
  const float pf = static_cast<float>(p);
  for (int64_t i = threadIdx.x; i < a.H * a.half; i += blockDim.x) {
    const int64_t h = i / a.half;
    const int j = static_cast<int>(i % a.half);
    const double angle = static_cast<double>(pf * a.inv_freq[j]);
    const float c = static_cast<float>(cos(angle)), sn = static_cast<float>(sin(angle));
    const float* in = a.x + b * a.xs0 + s * a.xs1 + h * a.xs2;
    float* out = a.y + b * a.ys0 + s * a.ys1 + h * a.ys2;
    const float x1 = in[j], x2 = in[j + a.half];
    out[j] = x1 * c - x2 * sn;
    out[j + a.half] = x2 * c + x1 * sn;
  }
}

// The dims past rotary_dim pass through (when not in place).
__global__ void rope_tail_kernel(RopeArgs a, int64_t D, int rotary) {
  const int64_t t = blockIdx.x, b = t / a.S, s = t % a.S;
  const int64_t tail = D - rotary;
  for (int64_t i = threadIdx.x; i < a.H * tail; i += blockDim.x) {
    const int64_t h = i / tail, d = rotary + i % tail;
    a.y[b * a.ys0 + s * a.ys1 + h * a.ys2 + d] = a.x[b * a.xs0 + s * a.xs1 + h * a.xs2 + d];
  }
}

}  // namespace

void rope(const te_tensor& x, const te_tensor* positions, int64_t offset, int32_t rotary_dim, float theta,
          const te_tensor& y) {
  const int64_t B = x.shape[0], S = x.shape[1], H = x.shape[2], D = x.shape[3];
  if (!B || !S || !H || !D) return;
  if (B * S > 0x7fffffff) fail(TE_ERR_UNSUPPORTED, "rope over more than 2^31 positions");
  const int half = rotary_dim / 2;
  float inv_freq_host[512];
  if (half > 512) fail(TE_ERR_UNSUPPORTED, "rope: rotary_dim above 1024");
  for (int i = 0; i < half; ++i)
    inv_freq_host[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(rotary_dim));
  Scratch inv_freq(sizeof(float) * (half ? half : 1));
  check(cudaMemcpyAsync(inv_freq.as<float>(), inv_freq_host, sizeof(float) * half, cudaMemcpyHostToDevice, stream()),
        "rope frequencies");
  // Filled by name (C++17 has no designated initialisers); what is not named here is zero.
  RopeArgs a{};
  a.x = static_cast<const float*>(x.data);
  a.y = static_cast<float*>(y.data);
  a.S = S;
  a.H = H;
  a.xs0 = x.strides[0];
  a.xs1 = x.strides[1];
  a.xs2 = x.strides[2];
  a.ys0 = y.strides[0];
  a.ys1 = y.strides[1];
  a.ys2 = y.strides[2];
  a.pos = positions ? positions->data : nullptr;
  a.pos_i64 = positions && positions->dtype == TE_I64;
  a.pos_2d = positions && positions->ndim == 2;
  a.ps0 = positions ? positions->strides[0] : 0;
  a.ps1 = positions && positions->ndim == 2 ? positions->strides[1] : 0;
  a.offset = offset;
  a.half = half;
  a.inv_freq = inv_freq.as<float>();
  const unsigned blocks = static_cast<unsigned>(B * S);
  if (half) rope_kernel<<<blocks, 128, 0, stream()>>>(a);
  if (x.data != y.data && rotary_dim < D) rope_tail_kernel<<<blocks, 128, 0, stream()>>>(a, D, rotary_dim);
  check_launch("rope");
}

}  // namespace te::cuda

// LayerNorm and RMSNorm over the last dimension: one block per row, two
// passes over the row (mean first, then the centred variance, as the CPU
// kernels do, so a large mean does not cost precision).
#include "common.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

__global__ void layer_norm_kernel(const float* x, int64_t xs, const float* w, const float* b, float eps, float* y,
                                  int64_t ys, int64_t n) {
  __shared__ float red[32];
  const float* xr = x + blockIdx.x * xs;
  float* yr = y + blockIdx.x * ys;
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) s += xr[c];
  const float mean = block_sum(s, red) / float(n);
  float q = 0.0f;
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) {
    const float d = xr[c] - mean;
    q += d * d;
  }
  const float rstd = rsqrtf(block_sum(q, red) / float(n) + eps);
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) {
    float v = (xr[c] - mean) * rstd;
    if (w) v *= w[c];
    if (b) v += b[c];
    yr[c] = v;
  }
}

__global__ void rms_norm_kernel(const float* x, int64_t xs, const float* w, float eps, float* y, int64_t ys,
                                int64_t n) {
  __shared__ float red[32];
  const float* xr = x + blockIdx.x * xs;
  float* yr = y + blockIdx.x * ys;
  float q = 0.0f;
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) q += xr[c] * xr[c];
  const float r = rsqrtf(block_sum(q, red) / float(n) + eps);
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) yr[c] = w ? xr[c] * r * w[c] : xr[c] * r;
}

unsigned row_blocks(const Rows& x, const char* op) {
  if (x.rows > 0x7fffffff) fail(TE_ERR_UNSUPPORTED, "%s over more than 2^31 rows", op);
  return static_cast<unsigned>(x.rows);
}

}  // namespace

void layer_norm(const Rows& x, const float* weight, const float* bias, float eps, const Rows& y) {
  if (!x.rows || !x.cols) return;
  layer_norm_kernel<<<row_blocks(x, "layer_norm"), 256, 0, stream()>>>(
      reinterpret_cast<const float*>(x.data), x.stride, weight, bias, eps, reinterpret_cast<float*>(y.data), y.stride,
      x.cols);
  check_launch("layer_norm");
}

void rms_norm(const Rows& x, const float* weight, float eps, const Rows& y) {
  if (!x.rows || !x.cols) return;
  rms_norm_kernel<<<row_blocks(x, "rms_norm"), 256, 0, stream()>>>(reinterpret_cast<const float*>(x.data), x.stride,
                                                                    weight, eps, reinterpret_cast<float*>(y.data),
                                                                    y.stride, x.cols);
  check_launch("rms_norm");
}

}  // namespace te::cuda

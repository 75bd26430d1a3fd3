// LayerNorm and RMSNorm over the last dimension, one block per row. The
// statistics take two passes (mean first, then the centred variance, as the
// CPU kernels do, so a large mean does not cost precision). Rows of up to
// 256 x 16 values (every model here: 768 to 5120) are read from memory once
// into registers, which is what makes these memory-bound kernels fast; longer
// rows are read again for each pass.
#include "common.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kPerThread = 16;  // register-resident row: up to 4096 values

// Thread t holds elements t, t + 256, ... of the row.
struct RowRegs {
  float v[kPerThread];
  __device__ __forceinline__ void load(const float* xr, int64_t n) {
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int64_t c = threadIdx.x + int64_t(j) * kThreads;
      v[j] = c < n ? xr[c] : 0.0f;
    }
  }
};

// The normalised value's affine part: * weight[c] + bias[c], each optional.
__device__ __forceinline__ float affine(float v, const float* w, const float* b, int64_t c) {
  if (w) v *= w[c];
  if (b) v += b[c];
  return v;
}

__global__ void __launch_bounds__(kThreads) layer_norm_regs(const float* x, int64_t xs, const float* w, const float* b,
                                                            float eps, float* y, int64_t ys, int64_t n) {
  __shared__ float red[32];
  RowRegs r;
  r.load(x + blockIdx.x * xs, n);
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) s += r.v[j];  // zeros past the end
  const float mean = block_sum(s, red) / float(n);
  float q = 0.0f;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t c = threadIdx.x + int64_t(j) * kThreads;
    const float d = c < n ? r.v[j] - mean : 0.0f;
    q += d * d;
  }
  const float rstd = rsqrtf(block_sum(q, red) / float(n) + eps);
  float* yr = y + blockIdx.x * ys;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t c = threadIdx.x + int64_t(j) * kThreads;
    if (c >= n) break;
    yr[c] = affine((r.v[j] - mean) * rstd, w, b, c);
  }
}

__global__ void __launch_bounds__(kThreads)
    rms_norm_regs(const float* x, int64_t xs, const float* w, float eps, float* y, int64_t ys, int64_t n) {
  __shared__ float red[32];
  RowRegs r;
  r.load(x + blockIdx.x * xs, n);
  float q = 0.0f;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) q += r.v[j] * r.v[j];
  const float inv = rsqrtf(block_sum(q, red) / float(n) + eps);
  float* yr = y + blockIdx.x * ys;
#pragma unroll
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t c = threadIdx.x + int64_t(j) * kThreads;
    if (c >= n) break;
    yr[c] = affine(r.v[j] * inv, w, nullptr, c);
  }
}

// Rows longer than the registers hold: each pass reads the row again.
__global__ void __launch_bounds__(kThreads) layer_norm_long(const float* x, int64_t xs, const float* w, const float* b,
                                                            float eps, float* y, int64_t ys, int64_t n) {
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
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) yr[c] = affine((xr[c] - mean) * rstd, w, b, c);
}

__global__ void __launch_bounds__(kThreads)
    rms_norm_long(const float* x, int64_t xs, const float* w, float eps, float* y, int64_t ys, int64_t n) {
  __shared__ float red[32];
  const float* xr = x + blockIdx.x * xs;
  float* yr = y + blockIdx.x * ys;
  float q = 0.0f;
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) q += xr[c] * xr[c];
  const float r = rsqrtf(block_sum(q, red) / float(n) + eps);
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) yr[c] = affine(xr[c] * r, w, nullptr, c);
}

unsigned row_blocks(const Rows& x, const char* op) {
  if (x.rows > 0x7fffffff) fail(TE_ERR_UNSUPPORTED, "%s over more than 2^31 rows", op);
  return static_cast<unsigned>(x.rows);
}

}  // namespace

void layer_norm(const Rows& x, const float* weight, const float* bias, float eps, const Rows& y) {
  if (!x.rows || !x.cols) return;
  const unsigned blocks = row_blocks(x, "layer_norm");
  const auto* xp = reinterpret_cast<const float*>(x.data);
  auto* yp = reinterpret_cast<float*>(y.data);
  if (x.cols <= kThreads * kPerThread)
    layer_norm_regs<<<blocks, kThreads, 0, stream()>>>(xp, x.stride, weight, bias, eps, yp, y.stride, x.cols);
  else
    layer_norm_long<<<blocks, kThreads, 0, stream()>>>(xp, x.stride, weight, bias, eps, yp, y.stride, x.cols);
  check_launch("layer_norm");
}

void rms_norm(const Rows& x, const float* weight, float eps, const Rows& y) {
  if (!x.rows || !x.cols) return;
  const unsigned blocks = row_blocks(x, "rms_norm");
  const auto* xp = reinterpret_cast<const float*>(x.data);
  auto* yp = reinterpret_cast<float*>(y.data);
  if (x.cols <= kThreads * kPerThread)
    rms_norm_regs<<<blocks, kThreads, 0, stream()>>>(xp, x.stride, weight, eps, yp, y.stride, x.cols);
  else
    rms_norm_long<<<blocks, kThreads, 0, stream()>>>(xp, x.stride, weight, eps, yp, y.stride, x.cols);
  check_launch("rms_norm");
}

namespace {

// The backward of one row (one block): its statistics recomputed in double, then, with g = dy w and
// xhat = (x - mean) rstd, dx = rstd (g - mean(g) - xhat mean(g xhat)) (RMSNorm: mean 0, no mean(g) term).
// The row's mean and rstd are kept for the parameter gradients.
__global__ void __launch_bounds__(kThreads)
    norm_backward_rows(const float* x, int64_t xs, const float* w, float eps, bool centre, const float* dy, int64_t ds,
                       float* dx, int64_t dxs, int64_t n, double* mean_out, double* rstd_out) {
  __shared__ double red[32];
  const float* xr = x + blockIdx.x * xs;
  const float* dr = dy + blockIdx.x * ds;
  double s = 0.0;
  if (centre)
    for (int64_t c = threadIdx.x; c < n; c += kThreads) s += xr[c];
  const double mean = centre ? block_sum(s, red) / double(n) : 0.0;
  double q = 0.0;
  for (int64_t c = threadIdx.x; c < n; c += kThreads) q += (xr[c] - mean) * (xr[c] - mean);
  const double rstd = rsqrt(block_sum(q, red) / double(n) + eps);
  double sg = 0.0, sgx = 0.0;
  for (int64_t c = threadIdx.x; c < n; c += kThreads) {
    const double g = w ? double(dr[c]) * w[c] : double(dr[c]);
    sg += g;
    sgx += g * (xr[c] - mean) * rstd;
  }
  const double mg = centre ? block_sum(sg, red) / double(n) : 0.0;
  const double mgx = block_sum(sgx, red) / double(n);
  float* out = dx + blockIdx.x * dxs;
  for (int64_t c = threadIdx.x; c < n; c += kThreads) {
    const double g = w ? double(dr[c]) * w[c] : double(dr[c]);
    out[c] = float(rstd * (g - mg - (xr[c] - mean) * rstd * mgx));
  }
  if (threadIdx.x == 0) {
    mean_out[blockIdx.x] = mean;
    rstd_out[blockIdx.x] = rstd;
  }
}

// dweight_c (+)= sum_r dy_rc xhat_rc and dbias_c (+)= sum_r dy_rc: a thread per column walks the rows in order,
// so the sums are the same bits on every run.
__global__ void norm_param_grads(const float* x, int64_t xs, const float* dy, int64_t ds, const double* mean,
                                 const double* rstd, int64_t rows, int64_t n, float* dw, float* db, bool accumulate) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= n) return;
  double sw = 0.0, sb = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const double g = dy[r * ds + c];
    sw += g * (x[r * xs + c] - mean[r]) * rstd[r];
    sb += g;
  }
  if (dw) dw[c] = float((accumulate ? dw[c] : 0.0) + sw);
  if (db) db[c] = float((accumulate ? db[c] : 0.0) + sb);
}

}  // namespace

void norm_backward(const Rows& x, const float* weight, float eps, bool centre, const Rows& dy, const Rows& dx,
                   float* dweight, float* dbias, bool accumulate) {
  if (!x.rows || !x.cols) return;
  if (x.rows > 0x7fffffffLL) fail(TE_ERR_UNSUPPORTED, "norm backward on CUDA: too many rows");
  Scratch mean(sizeof(double) * x.rows), rstd(sizeof(double) * x.rows);
  norm_backward_rows<<<static_cast<unsigned>(x.rows), kThreads, 0, stream()>>>(
      reinterpret_cast<const float*>(x.data), x.stride, weight, eps, centre, reinterpret_cast<const float*>(dy.data),
      dy.stride, reinterpret_cast<float*>(dx.data), dx.stride, x.cols, mean.as<double>(), rstd.as<double>());
  check_launch("norm backward");
  if (!dweight && !dbias) return;
  norm_param_grads<<<blocks_for(x.cols, 128), 128, 0, stream()>>>(
      reinterpret_cast<const float*>(x.data), x.stride, reinterpret_cast<const float*>(dy.data), dy.stride,
      mean.as<double>(), rstd.as<double>(), x.rows, x.cols, dweight, dbias, accumulate);
  check_launch("norm parameter gradients");
}

}  // namespace te::cuda

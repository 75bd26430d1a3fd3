// Element-wise and row-wise ops: activation, swiglu, softmax, add, scale.
#include "common.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

struct RowsView {
  const float* x;
  int64_t x_stride;
  float* y;
  int64_t y_stride;
  int64_t rows, cols;
};

// The offset of element i of a row-major [rows, cols] view with this row stride;
// dense views (FLAT) skip the 64-bit division.
template <bool FLAT>
__device__ __forceinline__ int64_t at(int64_t i, int64_t cols, int64_t stride) {
  if (FLAT) return i;
  return (i / cols) * stride + i % cols;
}

template <bool FLAT>
__global__ void activation_kernel(RowsView v, int act) {
  const int64_t n = v.rows * v.cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    v.y[at<FLAT>(i, v.cols, v.y_stride)] = activate(v.x[at<FLAT>(i, v.cols, v.x_stride)], act);
}

template <bool FLAT>
__global__ void swiglu_kernel(RowsView gate, const float* up, int64_t up_stride) {
  const int64_t n = gate.rows * gate.cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate.x[at<FLAT>(i, gate.cols, gate.x_stride)];
    gate.y[at<FLAT>(i, gate.cols, gate.y_stride)] = g / (1.0f + expf(-g)) * up[at<FLAT>(i, gate.cols, up_stride)];
  }
}

// One block per row: max, then sum of exponentials, then the quotients.
__global__ void softmax_kernel(RowsView v, float scale) {
  __shared__ float red[32];
  const float* x = v.x + blockIdx.x * v.x_stride;
  float* y = v.y + blockIdx.x * v.y_stride;
  float mx = -INFINITY;
  for (int64_t c = threadIdx.x; c < v.cols; c += blockDim.x) mx = fmaxf(mx, x[c] * scale);
  const float m = block_max(mx, red);
  // A row of -inf (all masked) gives 0/0 as PyTorch does (NaN); keep it so.
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < v.cols; c += blockDim.x) {
    const float e = expf(x[c] * scale - m);
    y[c] = e;
    sum += e;
  }
  sum = block_sum(sum, red);
  const float inv = 1.0f / sum;
  for (int64_t c = threadIdx.x; c < v.cols; c += blockDim.x) y[c] *= inv;
}

__global__ void add_kernel(const float* a, const float* b, int64_t n, int64_t b_len, float alpha, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = a[i] + alpha * b[i % b_len];
}

__global__ void scale_kernel(const float* x, int64_t n, float alpha, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = alpha * x[i];
}

bool dense(const Rows& r) { return r.rows <= 1 || r.stride == r.cols; }

RowsView view(const Rows& x, const Rows& y) {
  return {reinterpret_cast<const float*>(x.data), x.stride, reinterpret_cast<float*>(y.data), y.stride, x.rows, x.cols};
}

}  // namespace

void activation(const Rows& x, int32_t act, const Rows& y) {
  const int64_t n = x.rows * x.cols;
  if (!n) return;
  const bool flat = dense(x) && dense(y);
  if (flat)
    activation_kernel<true><<<blocks_for(n, 256), 256, 0, stream()>>>(view(x, y), act);
  else
    activation_kernel<false><<<blocks_for(n, 256), 256, 0, stream()>>>(view(x, y), act);
  check_launch("activation");
}

void swiglu(const Rows& gate, const Rows& up, const Rows& y) {
  const int64_t n = gate.rows * gate.cols;
  if (!n) return;
  const auto* u = reinterpret_cast<const float*>(up.data);
  if (dense(gate) && dense(up) && dense(y))
    swiglu_kernel<true><<<blocks_for(n, 256), 256, 0, stream()>>>(view(gate, y), u, up.stride);
  else
    swiglu_kernel<false><<<blocks_for(n, 256), 256, 0, stream()>>>(view(gate, y), u, up.stride);
  check_launch("swiglu");
}

void softmax(const Rows& x, float scale, const Rows& y) {
  if (!x.rows || !x.cols) return;
  if (x.rows > 0x7fffffff) fail(TE_ERR_UNSUPPORTED, "softmax over more than 2^31 rows");
  softmax_kernel<<<static_cast<unsigned>(x.rows), 256, 0, stream()>>>(view(x, y), scale);
  check_launch("softmax");
}

void add(const float* a, const float* b, int64_t n, int64_t b_len, float alpha, float* y) {
  if (!n) return;
  add_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(a, b, n, b_len, alpha, y);
  check_launch("add");
}

void scale(const float* x, int64_t n, float alpha, float* y) {
  if (!n) return;
  scale_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(x, n, alpha, y);
  check_launch("scale");
}

}  // namespace te::cuda

// Element-wise and row-wise ops: activation, swiglu, softmax, add, scale, dropout.
#include "../cpu/dropout.h"
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

// The CPU's masks (dropout.h), so a run drops the same elements on either device.
__global__ void dropout_apply_kernel(const float* x, int64_t n, float p, uint64_t seed, bool accumulate, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = x[i] * cpu::dropout_factor(seed, static_cast<uint64_t>(i), p);
    y[i] = accumulate ? y[i] + v : v;
  }
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

void dropout_apply(const float* x, int64_t n, float p, uint64_t seed, bool accumulate, float* y) {
  if (!n) return;
  dropout_apply_kernel<<<blocks_for(n, 256), 256, 0, stream()>>>(x, n, p, seed, accumulate, y);
  check_launch("dropout_apply");
}

namespace {

// d/dv of each activation (the backward of a training step), in float as the forward.
__device__ __forceinline__ float act_grad(float v, int act) {
  switch (act) {
    case TE_ACT_GELU_ERF: {
      const float phi = 0.3989422804014327f * expf(-0.5f * v * v);
      return normcdff(v) + v * phi;
    }
    case TE_ACT_GELU_TANH: {
      const float k = 0.7978845608028654f;
      const float t = tanhf(k * (v + 0.044715f * v * v * v));
      return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * v * v);
    }
    case TE_ACT_QUICK_GELU: {
      const float s = 1.0f / (1.0f + expf(-1.702f * v));
      return s + 1.702f * v * s * (1.0f - s);
    }
    case TE_ACT_SILU: {
      const float s = 1.0f / (1.0f + expf(-v));
      return s * (1.0f + v * (1.0f - s));
    }
    case TE_ACT_RELU:
      return v > 0.0f ? 1.0f : 0.0f;
    default:
      return 1.0f;
  }
}

// Element i of a [rows, cols] view with row stride `stride`.
__device__ __forceinline__ int64_t strided(int64_t i, int64_t cols, int64_t stride) {
  return (i / cols) * stride + i % cols;
}

__global__ void activation_backward_kernel(Rows x, Rows dy, int act, Rows dx) {
  const int64_t n = x.rows * x.cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = reinterpret_cast<const float*>(x.data)[strided(i, x.cols, x.stride)];
    const float g = reinterpret_cast<const float*>(dy.data)[strided(i, x.cols, dy.stride)];
    reinterpret_cast<float*>(dx.data)[strided(i, x.cols, dx.stride)] = g * act_grad(v, act);
  }
}

// y = silu(g) u:  dg = dy u silu'(g),  du = dy silu(g).
__global__ void swiglu_backward_kernel(Rows gate, Rows up, Rows dy, Rows dgate, Rows dup) {
  const int64_t n = gate.rows * gate.cols, cols = gate.cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = reinterpret_cast<const float*>(gate.data)[strided(i, cols, gate.stride)];
    const float u = reinterpret_cast<const float*>(up.data)[strided(i, cols, up.stride)];
    const float d = reinterpret_cast<const float*>(dy.data)[strided(i, cols, dy.stride)];
    const float s = 1.0f / (1.0f + expf(-g));
    reinterpret_cast<float*>(dgate.data)[strided(i, cols, dgate.stride)] = d * u * s * (1.0f + g * (1.0f - s));
    reinterpret_cast<float*>(dup.data)[strided(i, cols, dup.stride)] = d * g * s;
  }
}

}  // namespace

void activation_backward(const Rows& x, const Rows& dy, int32_t act, const Rows& dx) {
  if (!x.rows || !x.cols) return;
  activation_backward_kernel<<<blocks_for(x.rows * x.cols, 256), 256, 0, stream()>>>(x, dy, act, dx);
  check_launch("activation backward");
}

void swiglu_backward(const Rows& gate, const Rows& up, const Rows& dy, const Rows& dgate, const Rows& dup) {
  if (!gate.rows || !gate.cols) return;
  swiglu_backward_kernel<<<blocks_for(gate.rows * gate.cols, 256), 256, 0, stream()>>>(gate, up, dy, dgate, dup);
  check_launch("swiglu backward");
}

}  // namespace te::cuda

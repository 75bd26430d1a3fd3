// Shared by the .cu files: status checks, launch shapes, 16-bit loads, and
// the warp/block reductions every row-wise kernel uses.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../core/error.h"
#include "tinyemo.h"

namespace te::cuda {

// Turns a CUDA status into a te::Error; memory exhaustion keeps its own code.
void check(cudaError_t status, const char* what);
// After a launch: a bad configuration shows here, a fault inside the kernel later.
void check_launch(const char* kernel);
// The stream every op runs on (the legacy default stream: ops are ordered,
// and a copy to the host waits for them).
inline cudaStream_t stream() { return 0; }
// Compute capability of the current device, e.g. 90 (cached per device).
int arch();
int sm_count();

// Scratch device memory for one op call, from the stream-ordered pool; freed
// (returned to the pool, in stream order) at scope exit.
class Scratch {
 public:
  explicit Scratch(size_t bytes);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
  bool pooled_ = true;
};

// The first bad position a kernel found in its inputs (an id outside a table,
// a target outside the labels): kernels atomicMin positions into where();
// first() waits for them and reads it back.
class FirstBad {
 public:
  FirstBad();
  unsigned long long* where() const { return s_.as<unsigned long long>(); }
  // The lowest position reported, if any.
  bool first(unsigned long long& position) const;

 private:
  Scratch s_;
};

inline unsigned blocks_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535LL * 32 ? 65535LL * 32 : b));
}

template <class T>
__device__ __forceinline__ float to_f32(T v);
template <>
__device__ __forceinline__ float to_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float to_f32<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <class T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// float, or double where a sum must be exact to double's precision.
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the result. `shared` holds 32 values.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : T(0);
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(v);
}

// The element activations of te_act, as the CPU kernels compute them.
__device__ __forceinline__ float activate(float x, int act) {
  switch (act) {
    case TE_ACT_GELU_ERF:
      return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case TE_ACT_GELU_TANH: {
      const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
      return 0.5f * x * (1.0f + tanhf(u));
    }
    case TE_ACT_QUICK_GELU:
      return x / (1.0f + expf(-1.702f * x));
    case TE_ACT_SILU:
      return x / (1.0f + expf(-x));
    case TE_ACT_RELU:
      return x > 0.0f ? x : 0.0f;
    default:
      return x;
  }
}

}  // namespace te::cuda

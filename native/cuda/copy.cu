// te_copy where a CUDA tensor is involved: host <-> device as one transfer
// (contiguous, same dtype), device -> device element by element with any
// strides and f32/f16/bf16 conversion.
#include "common.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

struct View {
  int ndim;
  int64_t shape[TE_MAX_DIMS];
  int64_t src_strides[TE_MAX_DIMS];
  int64_t dst_strides[TE_MAX_DIMS];
};

// The source and destination offsets of the i-th element in row-major order.
__device__ __forceinline__ void offsets(int64_t i, const View& v, int64_t& so, int64_t& d) {
  so = 0;
  d = 0;
  for (int k = v.ndim - 1; k >= 0; --k) {
    const int64_t idx = i % v.shape[k];
    i /= v.shape[k];
    so += idx * v.src_strides[k];
    d += idx * v.dst_strides[k];
  }
}

template <class S, class D>
__global__ void copy_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n, View v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t so, d;
    offsets(i, v, so, d);
    dst[d] = from_f32<D>(to_f32<S>(src[so]));
  }
}

// Same dtype: the bits move unchanged (any element size).
template <class T>
__global__ void copy_same_kernel(const T* __restrict__ src, T* __restrict__ dst, int64_t n, View v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t so, d;
    offsets(i, v, so, d);
    dst[d] = src[so];
  }
}

template <class S>
void launch_from(const te_tensor& src, const te_tensor& dst, int64_t n, const View& v) {
  const unsigned blocks = blocks_for(n, 256);
  switch (dst.dtype) {
    case TE_F32:
      copy_kernel<<<blocks, 256, 0, stream()>>>(static_cast<const S*>(src.data), static_cast<float*>(dst.data), n, v);
      break;
    case TE_F16:
      copy_kernel<<<blocks, 256, 0, stream()>>>(static_cast<const S*>(src.data), static_cast<__half*>(dst.data), n, v);
      break;
    default:
      copy_kernel<<<blocks, 256, 0, stream()>>>(static_cast<const S*>(src.data), static_cast<__nv_bfloat16*>(dst.data),
                                                n, v);
      break;
  }
}

}  // namespace

void copy(const te_tensor& src, const te_tensor& dst) {
  const int64_t n = numel(src);
  if (n == 0) return;
  if (src.device != TE_DEVICE_CUDA || dst.device != TE_DEVICE_CUDA) {
    if (src.dtype != dst.dtype || !is_contiguous(src) || !is_contiguous(dst))
      fail(TE_ERR_UNSUPPORTED,
           "a copy between the host and a CUDA device needs contiguous views of one dtype (got %s to %s); "
           "convert or compact on one side first",
           dtype_name(src.dtype), dtype_name(dst.dtype));
    const int32_t dev = src.device == TE_DEVICE_CUDA ? src.device_index : dst.device_index;
    use_device(dev);
    const cudaMemcpyKind kind = src.device == TE_DEVICE_CUDA ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
    // Synchronous: the host side may be reused (or freed) as soon as we return.
    check(cudaMemcpy(dst.data, src.data, static_cast<size_t>(n) * dtype_size(src.dtype), kind),
          kind == cudaMemcpyDeviceToHost ? "copy to the host (or an earlier kernel)" : "copy to the device");
    return;
  }
  use_device(src.device_index);
  if (src.dtype == dst.dtype && is_contiguous(src) && is_contiguous(dst)) {
    check(cudaMemcpyAsync(dst.data, src.data, static_cast<size_t>(n) * dtype_size(src.dtype), cudaMemcpyDeviceToDevice,
                          stream()),
          "device copy");
    return;
  }
  View v{};
  v.ndim = src.ndim;
  for (int i = 0; i < src.ndim; ++i) {
    v.shape[i] = src.shape[i];
    v.src_strides[i] = src.strides[i];
    v.dst_strides[i] = dst.strides[i];
  }
  const unsigned blocks = blocks_for(n, 256);
  if (src.dtype == dst.dtype) {
    switch (dtype_size(src.dtype)) {
      case 2:
        copy_same_kernel<<<blocks, 256, 0, stream()>>>(static_cast<const uint16_t*>(src.data),
                                                       static_cast<uint16_t*>(dst.data), n, v);
        break;
      case 4:
        copy_same_kernel<<<blocks, 256, 0, stream()>>>(static_cast<const uint32_t*>(src.data),
                                                       static_cast<uint32_t*>(dst.data), n, v);
        break;
      default:
        copy_same_kernel<<<blocks, 256, 0, stream()>>>(static_cast<const uint64_t*>(src.data),
                                                       static_cast<uint64_t*>(dst.data), n, v);
        break;
    }
  } else {
    switch (src.dtype) {
      case TE_F32:
        launch_from<float>(src, dst, n, v);
        break;
      case TE_F16:
        launch_from<__half>(src, dst, n, v);
        break;
      default:
        launch_from<__nv_bfloat16>(src, dst, n, v);
        break;
    }
  }
  check_launch("copy");
}

}  // namespace te::cuda

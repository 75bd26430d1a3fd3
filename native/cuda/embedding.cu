// Token embedding (a row gather, ids checked on the device) and a ViT's
// patch embedding (patches gathered into rows, then one GEMM).
#include "common.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

// Out-of-range ids leave their row unwritten and report the first bad position.
template <class TT, class TI>
__global__ void embedding_kernel(const TT* table, int64_t ts, int64_t V, const TI* ids, int64_t id_stride, int64_t N,
                                 int64_t H, float* out, int64_t os, unsigned long long* bad) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const int64_t id = static_cast<int64_t>(ids[n * id_stride]);
    if (id < 0 || id >= V) {
      if (threadIdx.x == 0) atomicMin(bad, static_cast<unsigned long long>(n));
      continue;
    }
    for (int64_t c = threadIdx.x; c < H; c += blockDim.x) out[n * os + c] = to_f32<TT>(table[id * ts + c]);
  }
}

template <class TT>
void launch_embedding(const Rows& table, const te_tensor& ids, const Rows& out, unsigned long long* bad) {
  const int64_t N = ids.shape[0];
  const unsigned blocks = static_cast<unsigned>(N < 65535 ? N : 65535);
  if (ids.dtype == TE_I64)
    embedding_kernel<<<blocks, 128, 0, stream()>>>(reinterpret_cast<const TT*>(table.data), table.stride, table.rows,
                                                   static_cast<const int64_t*>(ids.data), ids.strides[0], N, table.cols,
                                                   reinterpret_cast<float*>(out.data), out.stride, bad);
  else
    embedding_kernel<<<blocks, 128, 0, stream()>>>(reinterpret_cast<const TT*>(table.data), table.stride, table.rows,
                                                   static_cast<const int32_t*>(ids.data), ids.strides[0], N, table.cols,
                                                   reinterpret_cast<float*>(out.data), out.stride, bad);
}

// rows[(b*ph + py)*pw + px][(c*P + i)*P + j] = pixels[b][c][py*P + i][px*P + j]:
// the order of the convolution weight [E][C][P][P] flattened.
__global__ void patches_kernel(const float* px, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P, float* rows) {
  const int64_t pw = W / P, ph = H / P, K = C * P * P, n = B * ph * pw * K;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = t / K, k = t % K;
    const int64_t b = r / (ph * pw), py = (r / pw) % ph, pxi = r % pw;
    const int64_t c = k / (P * P), i = (k / P) % P, j = k % P;
    rows[t] = px[((b * C + c) * H + py * P + i) * W + pxi * P + j];
  }
}

}  // namespace

void embedding(const Rows& table, const te_tensor& ids, const Rows& out) {
  const int64_t N = ids.shape[0];
  if (!N) return;
  const FirstBad bad;
  switch (table.dtype) {
    case TE_F32:
      launch_embedding<float>(table, ids, out, bad.where());
      break;
    case TE_F16:
      launch_embedding<__half>(table, ids, out, bad.where());
      break;
    default:
      launch_embedding<__nv_bfloat16>(table, ids, out, bad.where());
      break;
  }
  check_launch("embedding");
  unsigned long long at = 0;
  if (bad.first(at))
    fail(TE_ERR_INVALID_ARGUMENT, "ids[%llu] is outside the table's %lld rows", at, (long long)table.rows);
}

void patch_embed(const float* pixels, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P, const void* weight,
                 int32_t weight_dtype, const float* bias, int64_t E, float* out) {
  const int64_t M = B * (H / P) * (W / P), K = C * P * P;
  if (!M || !E) return;
  Scratch rows(sizeof(float) * static_cast<size_t>(M * K));
  patches_kernel<<<blocks_for(M * K, 256), 256, 0, stream()>>>(pixels, B, C, H, W, P, rows.as<float>());
  check_launch("patch_embed");
  GemmEpilogue ep;
  ep.col_shift = bias;
  cuda::gemm(M, E, K, {rows.as<float>(), K, false}, {weight, weight_dtype, K, false}, out, E, ep);
}

}  // namespace te::cuda

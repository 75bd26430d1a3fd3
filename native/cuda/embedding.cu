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

namespace {

template <class ID>
__global__ void check_ids_below(const ID* ids, int64_t is, int64_t N, int64_t V, unsigned long long* bad) {
  for (int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; n < N; n += int64_t(gridDim.x) * blockDim.x)
    if (ids[n * is] >= V) atomicMin(bad, static_cast<unsigned long long>(n));
}

// dtable[ids[n]] += dy[n] for ids >= 0: a thread per column adds the positions in order, so a token seen many
// times sums to the same bits on every run.
template <class ID>
__global__ void embedding_backward_kernel(const ID* ids, int64_t is, int64_t N, const float* dy, int64_t ds,
                                          float* dtable, int64_t H) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= H) return;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t id = ids[n * is];
    if (id >= 0) dtable[id * H + c] += dy[n * ds + c];
  }
}

template <class ID>
void launch_embedding_backward(const te_tensor& ids, const Rows& dy, const Rows& dtable, unsigned long long* bad,
                               bool check_only) {
  const auto* p = static_cast<const ID*>(ids.data);
  const int64_t N = ids.shape[0];
  if (check_only)
    check_ids_below<<<blocks_for(N, 256), 256, 0, stream()>>>(p, ids.strides[0], N, dtable.rows, bad);
  else
    embedding_backward_kernel<<<blocks_for(dtable.cols, 128), 128, 0, stream()>>>(
        p, ids.strides[0], N, reinterpret_cast<const float*>(dy.data), dy.stride, reinterpret_cast<float*>(dtable.data),
        dtable.cols);
}

}  // namespace

void embedding_backward(const te_tensor& ids, const Rows& dy, const Rows& dtable, bool accumulate) {
  const int64_t N = ids.shape[0];
  const bool i64 = ids.dtype == TE_I64;
  if (N > 0) {
    const FirstBad bad;
    if (i64)
      launch_embedding_backward<int64_t>(ids, dy, dtable, bad.where(), true);
    else
      launch_embedding_backward<int32_t>(ids, dy, dtable, bad.where(), true);
    check_launch("embedding backward (ids)");
    unsigned long long at = 0;
    if (bad.first(at))
      fail(TE_ERR_INVALID_ARGUMENT, "ids[%llu] is outside the table's %lld rows", at, (long long)dtable.rows);
  }
  if (!accumulate)
    check(cudaMemsetAsync(dtable.data, 0, sizeof(float) * static_cast<size_t>(dtable.rows * dtable.cols), stream()),
          "embedding backward");
  if (N == 0 || dtable.cols == 0) return;
  if (i64)
    launch_embedding_backward<int64_t>(ids, dy, dtable, nullptr, false);
  else
    launch_embedding_backward<int32_t>(ids, dy, dtable, nullptr, false);
  check_launch("embedding backward");
}

}  // namespace te::cuda

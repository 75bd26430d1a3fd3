// The label lookup: L2-normalise, cosine against a label table, and the k
// best labels per query without a B x C score matrix: the table is scored
// in chunks by the GEMM (1/||t|| as its column scale), and after each chunk
// one block per query merges the chunk's scores into the best k so far.
// The order of results is the CPU's: higher score first, then lower index,
// NaN last.
#include <algorithm>

#include "common.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

constexpr float kNormEps = 1e-12f;  // F.normalize's

__global__ void l2_normalize_kernel(const float* x, int64_t xs, float eps, float* y, int64_t ys, int64_t n) {
  __shared__ float red[32];
  const float* xr = x + blockIdx.x * xs;
  float* yr = y + blockIdx.x * ys;
  float q = 0.0f;
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) q += xr[c] * xr[c];
  const float inv = 1.0f / fmaxf(sqrtf(block_sum(q, red)), eps);
  for (int64_t c = threadIdx.x; c < n; c += blockDim.x) yr[c] = xr[c] * inv;
}

// One warp per table row: 1 / max(||t_c||, eps).
template <class T>
__global__ void inverse_norms_kernel(const T* t, int64_t ts, int64_t C, int64_t H, float* inv) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
  if (c >= C) return;
  float q = 0.0f;
  for (int64_t h = threadIdx.x & 31; h < H; h += 32) {
    const float v = to_f32<T>(t[c * ts + h]);
    q += v * v;
  }
  q = warp_sum(q);
  if ((threadIdx.x & 31) == 0) inv[c] = 1.0f / fmaxf(sqrtf(q), kNormEps);
}

struct Cand {
  float score;
  int32_t index;
};

__device__ __forceinline__ bool better(const Cand& a, const Cand& b) {
  const bool an = a.score != a.score, bn = b.score != b.score;
  if (an != bn) return bn;
  if (!an && a.score != b.score) return a.score > b.score;
  return a.index < b.index;
}

// No candidate: loses to every real one (see pick).
__device__ __forceinline__ Cand no_cand() { return Cand{0.0f, INT32_MAX}; }

__device__ __forceinline__ bool pick(const Cand& a, const Cand& b) {  // a beats b, no_cand() never wins
  if (b.index == INT32_MAX) return a.index != INT32_MAX;
  if (a.index == INT32_MAX) return false;
  return better(a, b);
}

__device__ __forceinline__ Cand warp_best(Cand c) {
  for (int o = 16; o > 0; o >>= 1) {
    Cand other{__shfl_xor_sync(0xffffffffu, c.score, o), __shfl_xor_sync(0xffffffffu, c.index, o)};
    if (pick(other, c)) c = other;
  }
  return c;
}

constexpr int kSelectThreads = 256;
constexpr int kMaxK = 256;
constexpr int kMaxChunk = 16384;

// For query b: the best k of (the `have` best so far in scores/indices) and
// this chunk's scores row[0..cn) for table rows c0 + j. k rounds of a block
// arg-best; taken entries are marked in shared memory.
__global__ void __launch_bounds__(kSelectThreads)
    merge_topk_kernel(const float* tile, int64_t cn, int32_t c0, int32_t k, int32_t have, float* scores,
                      int32_t* indices) {
  __shared__ unsigned taken_chunk[kMaxChunk / 32];
  __shared__ unsigned char taken_prev[kMaxK];
  __shared__ Cand prev[kMaxK];
  __shared__ Cand out[kMaxK];
  __shared__ Cand warp_win[kSelectThreads / 32];
  const int64_t b = blockIdx.x;
  const float* row = tile + b * cn;
  for (int i = threadIdx.x; i < (cn + 31) / 32; i += blockDim.x) taken_chunk[i] = 0u;
  for (int i = threadIdx.x; i < have; i += blockDim.x) {
    prev[i] = Cand{scores[b * k + i], indices[b * k + i]};
    taken_prev[i] = 0;
  }
  __syncthreads();
  const int total = have + static_cast<int>(cn);
  const int rounds = k < total ? k : total;
  for (int r = 0; r < rounds; ++r) {
    Cand best = no_cand();
    for (int i = threadIdx.x; i < have; i += blockDim.x)
      if (!taken_prev[i] && pick(prev[i], best)) best = prev[i];
    for (int64_t j = threadIdx.x; j < cn; j += blockDim.x)
      if (!(taken_chunk[j >> 5] & (1u << (j & 31)))) {
        const Cand c{row[j], c0 + static_cast<int32_t>(j)};
        if (pick(c, best)) best = c;
      }
    best = warp_best(best);
    if ((threadIdx.x & 31) == 0) warp_win[threadIdx.x >> 5] = best;
    __syncthreads();
    if (threadIdx.x < 32) {
      Cand w = threadIdx.x < blockDim.x / 32 ? warp_win[threadIdx.x] : no_cand();
      w = warp_best(w);
      if (threadIdx.x == 0) {
        out[r] = w;
        // Mark the winner taken: a chunk entry by its index, a previous one by search.
        if (w.index >= c0 && w.index < c0 + cn) {
          const int j = w.index - c0;
          taken_chunk[j >> 5] |= 1u << (j & 31);
        } else {
          for (int i = 0; i < have; ++i)
            if (prev[i].index == w.index) taken_prev[i] = 1;
        }
      }
    }
    __syncthreads();
  }
  for (int i = threadIdx.x; i < rounds; i += blockDim.x) {
    scores[b * k + i] = out[i].score;
    indices[b * k + i] = out[i].index;
  }
}

void normalize_rows(const float* x, int64_t xs, int64_t rows, int64_t cols, float eps, float* y, int64_t ys) {
  if (rows > 0x7fffffff) fail(TE_ERR_UNSUPPORTED, "more than 2^31 rows");
  l2_normalize_kernel<<<static_cast<unsigned>(rows), 256, 0, stream()>>>(x, xs, eps, y, ys, cols);
  check_launch("l2_normalize");
}

void inverse_norms(const Rows& t, float* inv) {
  const unsigned blocks = static_cast<unsigned>((t.rows + 7) / 8);
  switch (t.dtype) {
    case TE_F32:
      inverse_norms_kernel<<<blocks, 256, 0, stream()>>>(reinterpret_cast<const float*>(t.data), t.stride, t.rows,
                                                         t.cols, inv);
      break;
    case TE_F16:
      inverse_norms_kernel<<<blocks, 256, 0, stream()>>>(reinterpret_cast<const __half*>(t.data), t.stride, t.rows,
                                                         t.cols, inv);
      break;
    default:
      inverse_norms_kernel<<<blocks, 256, 0, stream()>>>(reinterpret_cast<const __nv_bfloat16*>(t.data), t.stride,
                                                         t.rows, t.cols, inv);
      break;
  }
  check_launch("table norms");
}

}  // namespace

void l2_normalize(const Rows& x, float eps, const Rows& y) {
  if (!x.rows || !x.cols) return;
  normalize_rows(reinterpret_cast<const float*>(x.data), x.stride, x.rows, x.cols, eps,
                 reinterpret_cast<float*>(y.data), y.stride);
}

void cosine(const Rows& q, const Rows& table, float* out, int64_t ldo) {
  const int64_t B = q.rows, C = table.rows, H = q.cols;
  if (!B || !C) return;
  Scratch qn(sizeof(float) * static_cast<size_t>(B * H)), inv(sizeof(float) * static_cast<size_t>(C));
  normalize_rows(reinterpret_cast<const float*>(q.data), q.stride, B, H, kNormEps, qn.as<float>(), H);
  inverse_norms(table, inv.as<float>());
  GemmEpilogue ep;
  ep.col_scale = inv.as<float>();
  cuda::gemm(B, C, H, {qn.as<float>(), H, false}, {table.data, table.dtype, table.stride, false}, out, ldo, ep);
}

void cosine_topk(const Rows& q, const Rows& table, bool table_normalized, int32_t k, float* scores, int32_t* indices) {
  const int64_t B = q.rows, C = table.rows, H = q.cols;
  if (!B) return;
  if (k > kMaxK) fail(TE_ERR_UNSUPPORTED, "cosine_topk on CUDA takes k <= %d (got %d)", kMaxK, k);
  if (B > 0x7fffffff) fail(TE_ERR_UNSUPPORTED, "more than 2^31 queries");
  Scratch qn(sizeof(float) * static_cast<size_t>(B * H));
  normalize_rows(reinterpret_cast<const float*>(q.data), q.stride, B, H, kNormEps, qn.as<float>(), H);
  Scratch inv(table_normalized ? 0 : sizeof(float) * static_cast<size_t>(C));
  if (!table_normalized) inverse_norms(table, inv.as<float>());
  // Chunks of at least k columns (each merge then has k candidates), at most
  // 64 MB of scores in flight.
  const int64_t cb = std::min<int64_t>(C, std::max<int64_t>(k, std::min<int64_t>(kMaxChunk, (int64_t{1} << 24) / B)));
  Scratch tile(sizeof(float) * static_cast<size_t>(B * cb));
  const size_t es = dtype_size(table.dtype);
  for (int64_t c0 = 0; c0 < C; c0 += cb) {
    const int64_t cn = std::min(cb, C - c0);
    GemmEpilogue ep;
    ep.col_scale = table_normalized ? nullptr : inv.as<float>() + c0;
    cuda::gemm(B, cn, H, {qn.as<float>(), H, false},
               {table.data + c0 * table.stride * static_cast<int64_t>(es), table.dtype, table.stride, false},
               tile.as<float>(), cn, ep);
    const int32_t have = static_cast<int32_t>(std::min<int64_t>(k, c0));
    merge_topk_kernel<<<static_cast<unsigned>(B), kSelectThreads, 0, stream()>>>(
        tile.as<float>(), cn, static_cast<int32_t>(c0), k, have, scores, indices);
    check_launch("cosine_topk");
  }
}

}  // namespace te::cuda

// C[m,n] = act((alpha * sum_k A'(m,k) B(n,k) + beta * C[m,n]) * col_scale[n] + col_shift[n])
// with the optional prologue A'(m,k) = dropout(act_p(A(m,k) * scale[k] + shift[k])),
// the same contract as native/cpu/gemm.cpp.
//
// The kernels, chosen by shape and device:
//  - gemv: M <= 8 and B rows contiguous (a decode step, one image, one query):
//    memory-bound, one warp per output column streams B's row once for all M rows.
//  - mma.sync (gemm_mma_sync.cu): 16-bit B on sm_80+ with row-major, 16-byte
//    aligned operands and K % 8 == 0 (A rounded to B's type, f32 accumulation).
//  - wgmma (gemm_wgmma.cu): the same cases on Hopper with te_cuda_gemm_variant(3),
//    until a GPU check has passed it.
//  - mma: tensor cores through WMMA, for the other 16-bit cases (f16 on sm_75,
//    odd K, transposed operands) and for f32 B as tf32 when allowed
//    (te_cuda_allow_tf32 / TINYEMO_TF32=1; off by default, as PyTorch).
//  - simt: plain f32 FMA tiles, exact f32 (the default for f32 B);
//  - tiled128: 128x128 block tiles, 8x8 outputs a thread, float4 loads, two
//    shared-memory stages, for row-major f32 operands; a variant chosen with
//    te_cuda_gemm_variant(1) so the two f32 kernels can be timed side by side
//    until measurements pick the default.
#include <mma.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "gemm_args.cuh"
#include "ops.h"

namespace te::cuda {

namespace {

using namespace gemm_detail;

// Which kernel serves a GEMM, to check and time them against each other
// (te_cuda_gemm_variant's integers).
enum class GemmVariant : int32_t {
  Default = 0,   // the choice by dtype and architecture
  Tiled128 = 1,  // f32: the 128x128 double-buffered kernel where it applies
  Wmma = 2,      // 16-bit B: WMMA where mma.sync would serve
  Wgmma = 3,     // 16-bit B on Hopper: wgmma where mma.sync would serve
};

// Process-wide knobs, set from one thread and read by every launching
// thread (the pool's workers included): atomics, relaxed (no data hangs on them).
std::atomic<GemmVariant> g_variant{GemmVariant::Default};

std::atomic<bool> g_allow_tf32{[] {
  const char* e = std::getenv("TINYEMO_TF32");
  return e && std::strcmp(e, "1") == 0;
}()};

// ---- simt: 64x64 tiles, 256 threads, 4x4 outputs each ----------------------

constexpr int SB = 64, SK = 16;

template <class TB>
__global__ void __launch_bounds__(256) gemm_simt(Args g) {
  __shared__ float As[SK][SB + 4];
  __shared__ float Bs[SK][SB + 4];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t m0 = int64_t(blockIdx.y) * SB, n0 = int64_t(blockIdx.x) * SB;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < g.K; k0 += SK) {
    for (int i = threadIdx.x; i < SB * SK; i += 256) {
      // Consecutive threads take consecutive k for row-major operands.
      const int r = i / SK, kk = i % SK;
      const int64_t k = k0 + kk;
      As[kk][r] = (m0 + r < g.M && k < g.K) ? load_a(g, m0 + r, k) : 0.0f;
      Bs[kk][r] = (n0 + r < g.N && k < g.K) ? load_b<TB>(g, n0 + r, k) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < SK; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = Bs[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < g.M && n < g.N) store_c(g, m, n, acc[i][j]);
    }
}

// ---- tiled128: 128x128 tiles, 256 threads of 8x8, float4 loads --------------
// For A [M,K] and B [N,K] row-major f32 with K, lda, ldb multiples of 4 and
// 16-byte aligned bases: each thread loads one float4 of A and one of B per
// 8-deep step (row tid/2, k quad (tid%2)*4), the next step's while the
// current one is multiplied (two shared-memory stages, one barrier a step).
// A thread's 8x8 outputs are rows {ty*4 + i, 64 + ty*4 + i} and columns
// {tx*4 + j, 64 + tx*4 + j}, so the float4 reads of a warp from shared memory
// are consecutive and conflict-free.

constexpr int T_TILE = 128, T_K = 8, T_HALF = T_TILE / 2;

__global__ void __launch_bounds__(256) gemm_tiled128(Args g) {
  __shared__ __align__(16) float As[2][T_K][T_TILE];
  __shared__ __align__(16) float Bs[2][T_K][T_TILE];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int lr = tid >> 1, lq = (tid & 1) * 4;
  const int64_t m0 = int64_t(blockIdx.y) * T_TILE, n0 = int64_t(blockIdx.x) * T_TILE;
  const float* B = static_cast<const float*>(g.b);
  float4 av, bv;
  const auto fetch = [&](int64_t k0) {
    const int64_t k = k0 + lq, m = m0 + lr, n = n0 + lr;  // k < K means k + 3 < K (K is a multiple of 4)
    av = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    bv = av;
    if (m < g.M && k < g.K) {
      av = *reinterpret_cast<const float4*>(g.a + m * g.lda + k);
      if (g.has_prologue) av = prologue4(g, av, m, k);
    }
    if (n < g.N && k < g.K) bv = *reinterpret_cast<const float4*>(B + n * g.ldb + k);
  };
  const auto stash = [&](int s) {
    As[s][lq + 0][lr] = av.x;
    As[s][lq + 1][lr] = av.y;
    As[s][lq + 2][lr] = av.z;
    As[s][lq + 3][lr] = av.w;
    Bs[s][lq + 0][lr] = bv.x;
    Bs[s][lq + 1][lr] = bv.y;
    Bs[s][lq + 2][lr] = bv.z;
    Bs[s][lq + 3][lr] = bv.w;
  };
  float acc[8][8] = {};
  fetch(0);
  stash(0);
  __syncthreads();
  for (int64_t k0 = 0; k0 < g.K; k0 += T_K) {
    const int cur = static_cast<int>((k0 / T_K) & 1);
    const bool more = k0 + T_K < g.K;
    if (more) fetch(k0 + T_K);
#pragma unroll
    for (int kk = 0; kk < T_K; ++kk) {
      const float4 a0 = *reinterpret_cast<const float4*>(&As[cur][kk][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[cur][kk][T_HALF + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[cur][kk][tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[cur][kk][T_HALF + tx * 4]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    // The other stage was last read before the previous step's barrier.
    if (more) stash(cur ^ 1);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int64_t m = m0 + (i < 4 ? ty * 4 + i : T_HALF + ty * 4 + i - 4);
      const int64_t n = n0 + (j < 4 ? tx * 4 + j : T_HALF + tx * 4 + j - 4);
      if (m < g.M && n < g.N) store_c(g, m, n, acc[i][j]);
    }
}

bool tiled128_applies(const Args& g) {
  const auto aligned = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; };
  return !g.a_trans && !g.b_trans && g.K % 4 == 0 && g.lda % 4 == 0 && g.ldb % 4 == 0 && aligned(g.a) && aligned(g.b);
}

// ---- gemv: M <= 8, B rows contiguous (b_trans false) ------------------------

constexpr int GV_MAX_M = 8;

template <class TB>
__global__ void __launch_bounds__(256) gemm_gemv(Args g) {
  extern __shared__ float a_rows[];  // [M][K], the prologue applied once
  for (int64_t i = threadIdx.x; i < g.M * g.K; i += blockDim.x) a_rows[i] = load_a(g, i / g.K, i % g.K);
  __syncthreads();
  const int lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (n >= g.N) return;
  const TB* brow = static_cast<const TB*>(g.b) + n * g.ldb;
  float acc[GV_MAX_M] = {};
  for (int64_t k = lane; k < g.K; k += 32) {
    const float bv = to_f32<TB>(brow[k]);
#pragma unroll
    for (int m = 0; m < GV_MAX_M; ++m)
      if (m < g.M) acc[m] = fmaf(a_rows[m * g.K + k], bv, acc[m]);
  }
#pragma unroll
  for (int m = 0; m < GV_MAX_M; ++m) {
    if (m >= g.M) break;
    const float s = warp_sum(acc[m]);
    if (lane == 0) store_c(g, m, n, s);
  }
}

// ---- mma: WMMA tensor cores; 64x64 block tile, 4 warps of 32x32 ------------

constexpr int MB = 64, MK = 32;

template <class T>
struct Mma;  // the fragment types of one input precision
template <>
struct Mma<__half> {
  using in = __half;
  using frag_t = __half;
  static constexpr int k = 16;
  static constexpr int min_arch = 700;
};
template <>
struct Mma<__nv_bfloat16> {
  using in = __nv_bfloat16;
  using frag_t = __nv_bfloat16;
  static constexpr int k = 16;
  static constexpr int min_arch = 800;
};
struct Tf32Tag {};
// tf32 fragments exist only when compiling for sm_80 and later.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define TE_TF32_FRAG float
#define TE_TO_TF32(x) (x)
#else
#define TE_TF32_FRAG nvcuda::wmma::precision::tf32
#define TE_TO_TF32(x) nvcuda::wmma::__float_to_tf32(x)
#endif
template <>
struct Mma<Tf32Tag> {
  using in = float;
  using frag_t = TE_TF32_FRAG;
  static constexpr int k = 8;
  static constexpr int min_arch = 800;
};

template <class P, class TB>
__global__ void __launch_bounds__(128) gemm_mma(Args g) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
  if constexpr (P::min_arch > __CUDA_ARCH__) {
    __trap();  // never launched: the host picks this kernel only where the instructions exist
  } else {
    namespace w = nvcuda::wmma;
    using In = typename P::in;
    constexpr int LD = MK + 8;  // padding against bank conflicts; a multiple of 8 as WMMA wants
    __shared__ __align__(32) unsigned char
        smem[(2 * MB * LD * sizeof(In)) > (MB * (MB + 4) * 4) ? (2 * MB * LD * sizeof(In)) : (MB * (MB + 4) * 4)];
    In* As = reinterpret_cast<In*>(smem);
    In* Bs = As + MB * LD;
    const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
    const int64_t m0 = int64_t(blockIdx.y) * MB, n0 = int64_t(blockIdx.x) * MB;
    w::fragment<w::accumulator, 16, 16, P::k, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) w::fill_fragment(acc[i][j], 0.0f);
    for (int64_t k0 = 0; k0 < g.K; k0 += MK) {
      for (int i = threadIdx.x; i < MB * MK; i += 128) {
        const int r = i / MK, kk = i % MK;
        const int64_t k = k0 + kk;
        const float av = (m0 + r < g.M && k < g.K) ? load_a(g, m0 + r, k) : 0.0f;
        const float bv = (n0 + r < g.N && k < g.K) ? load_b<TB>(g, n0 + r, k) : 0.0f;
        if constexpr (std::is_same<In, float>::value) {
          As[r * LD + kk] = TE_TO_TF32(av);
          Bs[r * LD + kk] = TE_TO_TF32(bv);
        } else {
          As[r * LD + kk] = from_f32<In>(av);
          Bs[r * LD + kk] = from_f32<In>(bv);
        }
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < MK; kk += P::k) {
        w::fragment<w::matrix_a, 16, 16, P::k, typename P::frag_t, w::row_major> fa[2];
        w::fragment<w::matrix_b, 16, 16, P::k, typename P::frag_t, w::col_major> fb[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) w::load_matrix_sync(fa[i], As + (wm * 32 + i * 16) * LD + kk, LD);
#pragma unroll
        for (int j = 0; j < 2; ++j) w::load_matrix_sync(fb[j], Bs + (wn * 32 + j * 16) * LD + kk, LD);
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j) w::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
      __syncthreads();
    }
    // Through shared memory, so the epilogue can see (m, n) of every element.
    float* Cs = reinterpret_cast<float*>(smem);
    constexpr int LDC = MB + 4;
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j)
        w::store_matrix_sync(Cs + (wm * 32 + i * 16) * LDC + wn * 32 + j * 16, acc[i][j], LDC, w::mem_row_major);
    __syncthreads();
    for (int i = threadIdx.x; i < MB * MB; i += 128) {
      const int r = i / MB, cidx = i % MB;
      const int64_t m = m0 + r, n = n0 + cidx;
      if (m < g.M && n < g.N) store_c(g, m, n, Cs[r * LDC + cidx]);
    }
  }
#else
  // Never launched: the host picks this kernel only on devices that have the instructions.
  __trap();
#endif
}

template <class TB>
void launch_mma(const Args& g, dim3 grid) {
  if constexpr (std::is_same<TB, __half>::value)
    gemm_mma<Mma<__half>, TB><<<grid, 128, 0, stream()>>>(g);
  else if constexpr (std::is_same<TB, __nv_bfloat16>::value)
    gemm_mma<Mma<__nv_bfloat16>, TB><<<grid, 128, 0, stream()>>>(g);
  else
    gemm_mma<Mma<Tf32Tag>, TB><<<grid, 128, 0, stream()>>>(g);
}

template <class TB>
void run(const Args& g) {
  const bool contiguous_b_rows = !g.b_trans;
  if (g.M <= GV_MAX_M && contiguous_b_rows && g.M * g.K * 4 <= 48 * 1024) {
    const unsigned blocks = static_cast<unsigned>((g.N + 7) / 8);
    gemm_gemv<TB><<<blocks, 256, static_cast<size_t>(g.M * g.K * 4), stream()>>>(g);
    check_launch("gemm (gemv)");
    return;
  }
  const dim3 grid(static_cast<unsigned>((g.N + 63) / 64), static_cast<unsigned>((g.M + 63) / 64));
  if (grid.y > 65535) fail(TE_ERR_UNSUPPORTED, "gemm: M = %lld is too large for one launch", (long long)g.M);
  const int a = arch();
  const bool f32 = std::is_same<TB, float>::value;
  const GemmVariant variant = g_variant.load(std::memory_order_relaxed);
  const bool tf32 = g_allow_tf32.load(std::memory_order_relaxed);
  const bool mma = f32 ? (tf32 && a >= 80) : (std::is_same<TB, __half>::value ? a >= 70 : a >= 80);
  if (mma && !f32 && variant == GemmVariant::Wgmma && wgmma_available() && mma_sync_applies(g)) {
    if constexpr (std::is_same<TB, __half>::value)
      launch_wgmma_f16(g);
    else
      launch_wgmma_bf16(g);
    check_launch("gemm (wgmma)");
  } else if (mma && !f32 && a >= 80 && variant != GemmVariant::Wmma && mma_sync_applies(g)) {
    if constexpr (std::is_same<TB, __half>::value)
      launch_mma_sync_f16(g);
    else
      launch_mma_sync_bf16(g);
    check_launch("gemm (mma.sync)");
  } else if (mma) {
    launch_mma<TB>(g, grid);
    check_launch("gemm (tensor cores)");
  } else if (f32 && variant == GemmVariant::Tiled128 && tiled128_applies(g)) {
    const dim3 big(static_cast<unsigned>((g.N + T_TILE - 1) / T_TILE),
                   static_cast<unsigned>((g.M + T_TILE - 1) / T_TILE));
    gemm_tiled128<<<big, 256, 0, stream()>>>(g);
    check_launch("gemm (f32, tiled128)");
  } else {
    gemm_simt<TB><<<grid, 256, 0, stream()>>>(g);
    check_launch("gemm (f32)");
  }
}

}  // namespace

void gemm(int64_t M, int64_t N, int64_t K, const GemmA& a, const GemmB& b, float* c, int64_t ldc,
          const GemmEpilogue& ep, const GemmPrologue* pro) {
  if (M == 0 || N == 0) return;
  // Filled by name (C++17 has no designated initialisers); what is not named here is zero.
  Args g{};
  g.M = M;
  g.N = N;
  g.K = K;
  g.a = a.p;
  g.lda = a.ld;
  g.a_trans = a.trans;
  g.b = b.p;
  g.ldb = b.ld;
  g.b_trans = b.trans;
  g.c = c;
  g.ldc = ldc;
  g.alpha = ep.alpha;
  g.beta = ep.beta;
  g.col_scale = ep.col_scale;
  g.col_shift = ep.col_shift;
  g.act = ep.act;
  if (pro) {
    g.p_scale = pro->scale;
    g.p_shift = pro->shift;
    g.p_act = pro->act;
    g.p_drop = pro->drop_p;
    g.p_seed = pro->seed;
    g.has_prologue = true;
  }
  switch (b.dtype) {
    case TE_F32:
      run<float>(g);
      break;
    case TE_F16:
      run<__half>(g);
      break;
    default:
      run<__nv_bfloat16>(g);
      break;
  }
}

}  // namespace te::cuda

extern "C" TE_API te_status te_cuda_allow_tf32(int32_t allow) {
  return te::guard([&] { te::cuda::g_allow_tf32.store(allow != 0, std::memory_order_relaxed); });
}

extern "C" TE_API int32_t te_cuda_tf32_allowed(void) {
  return te::cuda::g_allow_tf32.load(std::memory_order_relaxed) ? 1 : 0;
}

extern "C" TE_API te_status te_cuda_gemm_variant(int32_t variant) {
  return te::guard([&] {
    if (variant < 0 || variant > 3) {
      te::fail(TE_ERR_INVALID_ARGUMENT,
               "gemm variant %d (0: default, 1: f32 tiled128, 2: 16-bit through WMMA, 3: 16-bit through wgmma)",
               variant);
    }
    using te::cuda::GemmVariant;
    if (static_cast<GemmVariant>(variant) == GemmVariant::Wgmma && !te::cuda::gemm_detail::wgmma_available()) {
      te::fail(TE_ERR_UNSUPPORTED, "gemm variant 3 (wgmma) needs a Hopper GPU and a build with sm_90a code");
    }
    te::cuda::g_variant.store(static_cast<GemmVariant>(variant), std::memory_order_relaxed);
  });
}

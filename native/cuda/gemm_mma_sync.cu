// C = A'·Bᵀ for 16-bit B (f16 or bf16 weights, [N, K] row-major) on tensor
// cores through mma.sync.m16n8k16 (sm_80 and later), f32 accumulation.
//
// A block computes a 128x128 tile of C with 8 warps (2 along M x 4 along N,
// 64x32 each: 4x4 mma tiles, 64 accumulators a thread), stepping K by 32.
// Two shared-memory stages: while the tensor cores work on one, B's next
// tile arrives by cp.async (16 bytes at a time, straight to shared memory)
// and A's next tile (f32 in global memory) is loaded into registers, given
// the prologue, rounded to B's type and stored after the compute.
//
// Fragments are read from shared memory with 32-bit loads in the layout the
// PTX ISA gives for m16n8k16 (g = lane / 4, t = lane % 4):
//   A (16x16, row-major): {A[g][2t..2t+1], A[g+8][2t..], A[g][2t+8..], A[g+8][2t+8..]}
//   B (16x8, "col" = our [n][k] rows): {B[n=g][k=2t..2t+1], B[g][2t+8..]}
//   C (16x8): {C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]}
// Each 32-bit register holds two consecutive k, the lower k in the low half.
#include "gemm_args.cuh"

namespace te::cuda::gemm_detail {

namespace {

constexpr int BM = 128, BN = 128, BK = 32;
constexpr int THREADS = 256;
constexpr int WM = 64, WN = 32;           // one warp's part of the tile
constexpr int MT = WM / 16, NT = WN / 8;  // mma tiles per warp along M and N
// Row pitch in elements: 80 bytes keeps rows 16-byte aligned for cp.async, and
// the 8 rows x 4 words of one fragment load fall in 32 different banks.
constexpr int LDS = BK + 8;

template <class T>
__device__ __forceinline__ uint32_t ld32(const T* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800

// d += a·b for one 16x8x16 tile.
template <class T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
template <>
__device__ __forceinline__ void mma16816<__half>(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

#endif

template <class T>
__global__ void __launch_bounds__(THREADS) gemm_mma_sync(Args g) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(16) T As[2][BM * LDS];
  __shared__ __align__(16) T Bs[2][BN * LDS];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / (BN / WN), wn = warp % (BN / WN);
  const int gq = lane >> 2, tq = lane & 3;
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  Slices<T, BM, BK, THREADS> next;  // BM == BN
  const auto at = [](int r, int k) { return r * LDS + k; };

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  const auto compute = [&](int stage) {
    const T* as = As[stage] + (wm * WM) * LDS;
    const T* bs = Bs[stage] + (wn * WN) * LDS;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t af[MT][4], bf[NT][2];
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        const T* p = as + (i * 16 + gq) * LDS + kk + 2 * tq;
        af[i][0] = ld32(p);
        af[i][1] = ld32(p + 8 * LDS);
        af[i][2] = ld32(p + 8);
        af[i][3] = ld32(p + 8 * LDS + 8);
      }
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const T* p = bs + (j * 8 + gq) * LDS + kk + 2 * tq;
        bf[j][0] = ld32(p);
        bf[j][1] = ld32(p + 8);
      }
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < NT; ++j) mma16816<T>(acc[i][j], af[i], bf[j]);
    }
  };

  const int64_t tiles = (g.K + BK - 1) / BK;
  next.fetch_b(g, n0, 0, Bs[0], at);
  next.fetch_a(g, m0, 0);
  next.store_a(As[0], at);
  cp_async_wait_all();
  __syncthreads();
  for (int64_t t = 0; t < tiles; ++t) {
    const int cur = static_cast<int>(t & 1);
    const bool more = t + 1 < tiles;
    // The other stage was last read before the previous iteration's barrier: free to fill.
    if (more) {
      next.fetch_b(g, n0, (t + 1) * BK, Bs[cur ^ 1], at);
      next.fetch_a(g, m0, (t + 1) * BK);
    }
    compute(cur);
    if (more) {
      next.store_a(As[cur ^ 1], at);
      cp_async_wait_all();
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      const int64_t m = m0 + wm * WM + i * 16 + gq, n = n0 + wn * WN + j * 8 + 2 * tq;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t mm = m + (e >> 1) * 8, nn = n + (e & 1);
        if (mm < g.M && nn < g.N) store_c(g, mm, nn, acc[i][j][e]);
      }
    }
#else
  __trap();  // never launched: the host picks this kernel only on sm_80 and later
#endif
}

template <class T>
void launch(const Args& g) {
  const dim3 grid(static_cast<unsigned>((g.N + BN - 1) / BN), static_cast<unsigned>((g.M + BM - 1) / BM));
  gemm_mma_sync<T><<<grid, THREADS, 0, stream()>>>(g);
}

}  // namespace

bool mma_sync_applies(const Args& g) {
  const auto aligned = [](const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; };
  // Whole 16-byte chunks of B rows and float4s of A rows, no transposed operand.
  return !g.a_trans && !g.b_trans && g.K % 8 == 0 && g.lda % 4 == 0 && g.ldb % 8 == 0 && aligned(g.a) && aligned(g.b) &&
         (g.M + BM - 1) / BM <= 65535;
}

void launch_mma_sync_f16(const Args& g) { launch<__half>(g); }
void launch_mma_sync_bf16(const Args& g) { launch<__nv_bfloat16>(g); }

}  // namespace te::cuda::gemm_detail

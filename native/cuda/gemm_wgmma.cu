// C = A'·Bᵀ for 16-bit B on Hopper's warpgroup tensor cores (wgmma, sm_90a):
// the same contract, loads and epilogue as gemm_mma_sync.cu, with the
// multiply issued by a warpgroup (4 warps) as m64n128k16 operations that
// read both operands straight from shared memory.
//
// A block computes 128x128 of C with two warpgroups (rows 0-63 and 64-127,
// all 128 columns: 64 accumulators a thread), stepping K by 32 with two
// shared-memory stages: B's next slice arrives by cp.async and A's next
// slice is loaded, given the prologue and rounded in registers while the
// tensor cores work on the current stage.
//
// Shared memory holds each operand in the "no swizzle, K-major" layout wgmma
// reads: core matrices of 8 rows x 8 values (8 rows of 16 bytes, 128 bytes
// contiguous), ordered row group fastest, then k group:
//   element (r, k) of a 128 x 32 tile at ((k / 8) * 16 + r / 8) * 64 + (r % 8) * 8 + k % 8.
// In a descriptor, the leading-dimension byte offset (LBO) steps to the
// next 8 values of K (16 core matrices on: 2048 bytes) and the stride byte
// offset (SBO) to the next 8 rows (128 bytes).
//
// Not yet run on a GPU: it is selected only by te_cuda_gemm_variant(3) until
// bench/gpu/check.py has passed it on a Hopper GPU.
#include "gemm_args.cuh"

namespace te::cuda::gemm_detail {

namespace {

constexpr int BM = 128, BN = 128, BK = 32;
constexpr int THREADS = 256;                                   // two warpgroups
constexpr int CORE = 64;                                       // values in one core matrix (8 x 8)
constexpr uint32_t LBO = (BM / 8) * CORE * 2, SBO = CORE * 2;  // bytes; BM == BN

// Offset (in values) of element (r, k) of a 128 x 32 tile in the core-matrix layout.
__device__ __forceinline__ int core_offset(int r, int k) {
  return ((k / 8) * (BM / 8) + r / 8) * CORE + (r % 8) * 8 + k % 8;
}

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)

// A shared-memory matrix descriptor: start address, LBO and SBO in 16-byte
// units; base offset 0 and no swizzle (bits 49-51 and 62-63 zero).
__device__ __forceinline__ uint64_t descriptor(const void* smem) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(LBO >> 4) << 16) | (uint64_t(SBO >> 4) << 32);
}

// d += a·b over one 64 x 128 x 16 step (scale-d 1, no negation, both K-major);
// TYPE is f16 or bf16, the 64 accumulators are operands 0-63.
#define TE_WGMMA_M64N128K16(TYPE)                                                                                      \
  asm volatile(                                                                                                        \
      "{\n"                                                                                                            \
      ".reg .pred p;\n"                                                                                                \
      "setp.ne.b32 p, %66, 0;\n"                                                                                       \
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE                                                     \
      " "                                                                                                              \
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, "     \
      "%23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, " \
      "%45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "               \
      "%64, %65, p, 1, 1, 0, 0;\n"                                                                                     \
      "}\n"                                                                                                            \
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),    \
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),         \
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),        \
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]),        \
        "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),        \
        "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),        \
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),        \
        "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])                      \
      : "l"(a), "l"(b), "n"(1))

template <class T>
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t a, uint64_t b) {
  if constexpr (std::is_same<T, __half>::value)
    TE_WGMMA_M64N128K16("f16");
  else
    TE_WGMMA_M64N128K16("bf16");
}
#undef TE_WGMMA_M64N128K16

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// Ordinary stores (and cp.async) to shared memory, made visible to the tensor cores' async proxy.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

#endif

template <class T>
__global__ void __launch_bounds__(THREADS) gemm_wgmma(Args g) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __shared__ __align__(128) T As[2][BM * BK];
  __shared__ __align__(128) T Bs[2][BN * BK];
  const int tid = threadIdx.x, wg = tid / 128, warp = (tid / 32) % 4, lane = tid & 31;
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  Slices<T, BM, BK, THREADS> next;  // BM == BN
  const auto at = [](int r, int k) { return core_offset(r, k); };

  float acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.0f;

  const int64_t tiles = (g.K + BK - 1) / BK;
  next.fetch_b(g, n0, 0, Bs[0], at);
  next.fetch_a(g, m0, 0);
  next.store_a(As[0], at);
  cp_async_wait_all();
  fence_proxy_async();
  __syncthreads();
  for (int64_t t = 0; t < tiles; ++t) {
    const int cur = static_cast<int>(t & 1);
    const bool more = t + 1 < tiles;
    // The other stage's last readers were waited for before the previous barrier.
    if (more) {
      next.fetch_b(g, n0, (t + 1) * BK, Bs[cur ^ 1], at);
      next.fetch_a(g, m0, (t + 1) * BK);
    }
    wgmma_fence();
#pragma unroll
    for (int s = 0; s < BK / 16; ++s) {
      // This warpgroup's 64 rows of A and all of B, k from 16 s: core matrices (2 s) * 16 + row group.
      const uint64_t da = descriptor(&As[cur][(2 * s * (BM / 8) + wg * 8) * CORE]);
      const uint64_t db = descriptor(&Bs[cur][(2 * s * (BN / 8)) * CORE]);
      wgmma_m64n128k16<T>(acc, da, db);
    }
    wgmma_commit();
    if (more) {
      next.store_a(As[cur ^ 1], at);
      cp_async_wait_all();
      fence_proxy_async();
    }
    wgmma_wait_all();
    __syncthreads();
  }

  // Accumulator i of a thread: row 16 warp + lane / 4 (+ 8 for i % 4 >= 2),
  // column 8 (i / 4) + 2 (lane % 4) + i % 2 of its warpgroup's 64 x 128.
  const int64_t row0 = m0 + wg * 64 + warp * 16 + lane / 4;
  const int64_t col0 = n0 + 2 * (lane % 4);
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    const int64_t m = row0 + ((i % 4) >= 2 ? 8 : 0), n = col0 + 8 * (i / 4) + (i % 2);
    if (m < g.M && n < g.N) store_c(g, m, n, acc[i]);
  }
#else
  __trap();  // never launched: the host picks this kernel only where sm_90a code was built
#endif
}

}  // namespace

bool wgmma_available() {
#ifdef TE_CUDA_SM90A
  return arch() == 90;
#else
  return false;
#endif
}

void launch_wgmma_f16(const Args& g) {
  const dim3 grid(static_cast<unsigned>((g.N + BN - 1) / BN), static_cast<unsigned>((g.M + BM - 1) / BM));
  gemm_wgmma<__half><<<grid, THREADS, 0, stream()>>>(g);
}

void launch_wgmma_bf16(const Args& g) {
  const dim3 grid(static_cast<unsigned>((g.N + BN - 1) / BN), static_cast<unsigned>((g.M + BM - 1) / BM));
  gemm_wgmma<__nv_bfloat16><<<grid, THREADS, 0, stream()>>>(g);
}

}  // namespace te::cuda::gemm_detail

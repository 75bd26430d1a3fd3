// What the GEMM kernels share: one argument block, the element loads with
// the training prologue, the epilogue store, and the launchers the dispatch
// in gemm.cu picks among. The contract is native/cpu/gemm.cpp's:
// C[m,n] = act((alpha * sum_k A'(m,k) B(n,k) + beta * C[m,n]) * col_scale[n] + col_shift[n]),
// A'(m,k) = dropout(act_p(A(m,k) * scale[k] + shift[k])).
#pragma once

#include <cstring>

#include "common.cuh"
#include "../cpu/dropout.h"

namespace te::cuda::gemm_detail {

struct Args {
  int64_t M, N, K;
  const float* a;
  int64_t lda;
  bool a_trans;
  const void* b;
  int64_t ldb;
  bool b_trans;
  float* c;
  int64_t ldc;
  float alpha, beta;
  const float* col_scale;
  const float* col_shift;
  int act;
  // prologue
  const float* p_scale;
  const float* p_shift;
  int p_act;
  float p_drop;
  uint64_t p_seed;
  bool has_prologue;
};

// The prologue of one A element already loaded (row m, column k).
__device__ __forceinline__ float prologue(const Args& g, float v, int64_t m, int64_t k) {
  if (g.p_scale) v *= g.p_scale[k];
  if (g.p_shift) v += g.p_shift[k];
  v = activate(v, g.p_act);
  if (g.p_drop > 0.0f) v *= cpu::dropout_factor(g.p_seed, uint64_t(m) * uint64_t(g.K) + uint64_t(k), g.p_drop);
  return v;
}

// The prologue of A(m, k..k+3), loaded as one float4.
__device__ __forceinline__ float4 prologue4(const Args& g, float4 v, int64_t m, int64_t k) {
  return make_float4(prologue(g, v.x, m, k), prologue(g, v.y, m, k + 1), prologue(g, v.z, m, k + 2),
                     prologue(g, v.w, m, k + 3));
}

__device__ __forceinline__ float load_a(const Args& g, int64_t m, int64_t k) {
  const float v = g.a_trans ? g.a[k * g.lda + m] : g.a[m * g.lda + k];
  return g.has_prologue ? prologue(g, v, m, k) : v;
}

template <class TB>
__device__ __forceinline__ float load_b(const Args& g, int64_t n, int64_t k) {
  const TB* b = static_cast<const TB*>(g.b);
  return to_f32<TB>(g.b_trans ? b[k * g.ldb + n] : b[n * g.ldb + k]);
}

__device__ __forceinline__ void store_c(const Args& g, int64_t m, int64_t n, float acc) {
  float* c = g.c + m * g.ldc + n;
  float v = g.alpha * acc;
  if (g.beta != 0.0f) v += g.beta * *c;  // beta == 0 never reads C
  if (g.col_scale) v *= g.col_scale[n];
  if (g.col_shift) v += g.col_shift[n];
  *c = activate(v, g.act);
}

// Two floats rounded to T and packed into one 32-bit register, the lower
// index in the low half (the order the tensor cores read pairs in).
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &h, 4);
  return r;
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &h, 4);
  return r;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
// 16 bytes global -> shared without registers; `valid` false writes zeros
// and reads nothing (src-size 0).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// The operand slices of the tensor-core kernels: ROWS x BK of A (f32, row-major)
// through registers, given the prologue and rounded to T, and ROWS x BK of B
// (T, [N, K] rows) by cp.async; `at(r, k)` places element (r, k) of a slice in
// the kernel's shared-memory layout. Consecutive threads take consecutive k of
// a row; K % 8 == 0, so a float4 of A or a 16-byte chunk of B lies wholly
// inside K or wholly past it (then zeros).
template <class T, int ROWS, int BK, int THREADS>
struct Slices {
  static constexpr int A_LOADS = ROWS * BK / 4 / THREADS;  // float4s of A a thread
  static constexpr int B_LOADS = ROWS * BK / 8 / THREADS;  // 16-byte chunks of B a thread
  float4 a[A_LOADS];

  __device__ __forceinline__ void fetch_a(const Args& g, int64_t m0, int64_t k0) {
#pragma unroll
    for (int i = 0; i < A_LOADS; ++i) {
      const int idx = threadIdx.x + i * THREADS, r = idx / (BK / 4), kq = (idx % (BK / 4)) * 4;
      const int64_t m = m0 + r, k = k0 + kq;
      float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (m < g.M && k < g.K) {
        v = *reinterpret_cast<const float4*>(g.a + m * g.lda + k);
        if (g.has_prologue) v = prologue4(g, v, m, k);
      }
      a[i] = v;
    }
  }

  template <class At>
  __device__ __forceinline__ void store_a(T* As, At at) const {
#pragma unroll
    for (int i = 0; i < A_LOADS; ++i) {
      const int idx = threadIdx.x + i * THREADS, r = idx / (BK / 4), kq = (idx % (BK / 4)) * 4;
      *reinterpret_cast<uint2*>(As + at(r, kq)) = make_uint2(pack2<T>(a[i].x, a[i].y), pack2<T>(a[i].z, a[i].w));
    }
  }

  template <class At>
  __device__ __forceinline__ static void fetch_b(const Args& g, int64_t n0, int64_t k0, T* Bs, At at) {
    const T* B = static_cast<const T*>(g.b);
#pragma unroll
    for (int i = 0; i < B_LOADS; ++i) {
      const int idx = threadIdx.x + i * THREADS, r = idx / (BK / 8), kc = (idx % (BK / 8)) * 8;
      const int64_t n = n0 + r, k = k0 + kc;
      const bool valid = n < g.N && k < g.K;
      cp_async16(Bs + at(r, kc), valid ? B + n * g.ldb + k : B, valid);
    }
    cp_async_commit();
  }
};
#endif

// mma.sync kernel for 16-bit B (gemm_mma_sync.cu): whether its layout
// conditions hold for these arguments, and its launch (sm_80 and later).
bool mma_sync_applies(const Args& g);
void launch_mma_sync_f16(const Args& g);
void launch_mma_sync_bf16(const Args& g);

// wgmma kernel for 16-bit B (gemm_wgmma.cu): on a Hopper GPU in a build with
// sm_90a code; the same layout conditions as mma.sync.
bool wgmma_available();
void launch_wgmma_f16(const Args& g);
void launch_wgmma_bf16(const Args& g);

}  // namespace te::cuda::gemm_detail

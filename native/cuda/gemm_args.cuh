// What the GEMM kernels share: one argument block, the element loads with
// the training prologue, the epilogue store, and the launchers the dispatch
// in gemm.cu picks among. The contract is native/cpu/gemm.cpp's:
// C[m,n] = act((alpha * sum_k A'(m,k) B(n,k) + beta * C[m,n]) * col_scale[n] + col_shift[n]),
// A'(m,k) = dropout(act_p(A(m,k) * scale[k] + shift[k])).
#pragma once

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

// mma.sync kernel for 16-bit B (gemm_mma_sync.cu): whether its layout
// conditions hold for these arguments, and its launch (sm_80 and later).
bool mma_sync_applies(const Args& g);
void launch_mma_sync_f16(const Args& g);
void launch_mma_sync_bf16(const Args& g);

}  // namespace te::cuda::gemm_detail

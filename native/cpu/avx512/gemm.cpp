#include <immintrin.h>

#include "kernels.h"

namespace te::cpu::avx512 {

namespace {

// Row i of the tile, two ZMM accumulators: C[i, 0:16] and C[i, 16:32].
template <int I>
inline void fma_row(const float* ap, __m512 b0, __m512 b1, __m512& lo, __m512& hi) {
  const __m512 a = _mm512_set1_ps(ap[I]);  // folds into an embedded {1to16} broadcast
  lo = _mm512_fmadd_ps(a, b0, lo);
  hi = _mm512_fmadd_ps(a, b1, hi);
}

inline void store_row(float* c, __m512 lo, __m512 hi, int nr_eff, __m512 va, __m512 vb, bool read_c) {
  const __mmask16 m0 = nr_eff >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << nr_eff) - 1);
  const __mmask16 m1 = nr_eff >= 32 ? 0xFFFF : nr_eff <= 16 ? 0 : static_cast<__mmask16>((1u << (nr_eff - 16)) - 1);
  __m512 v0 = _mm512_mul_ps(va, lo), v1 = _mm512_mul_ps(va, hi);
  if (read_c) {
    v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), v0);
    v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), v1);
  }
  _mm512_mask_storeu_ps(c, m0, v0);
  _mm512_mask_storeu_ps(c + 16, m1, v1);
}

}  // namespace

// 12 x 32 outer-product tile: 24 ZMM accumulators, 2 ZMM of B, A broadcast
// straight from memory; 24 FMAs for 2 loads and 12 broadcasts per k step.
// Partial tiles use masked loads and stores, no scratch tile.
void gemm_tile(int64_t k, const float* ap, const float* bp, float* c, int64_t ldc, int mr_eff, int nr_eff,
               float alpha, float beta) {
  __m512 c0l = _mm512_setzero_ps(), c0h = c0l, c1l = c0l, c1h = c0l, c2l = c0l, c2h = c0l, c3l = c0l, c3h = c0l;
  __m512 c4l = c0l, c4h = c0l, c5l = c0l, c5h = c0l, c6l = c0l, c6h = c0l, c7l = c0l, c7h = c0l;
  __m512 c8l = c0l, c8h = c0l, c9l = c0l, c9h = c0l, cal = c0l, cah = c0l, cbl = c0l, cbh = c0l;
  for (int64_t p = 0; p < k; ++p) {
    const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
    fma_row<0>(ap, b0, b1, c0l, c0h);
    fma_row<1>(ap, b0, b1, c1l, c1h);
    fma_row<2>(ap, b0, b1, c2l, c2h);
    fma_row<3>(ap, b0, b1, c3l, c3h);
    fma_row<4>(ap, b0, b1, c4l, c4h);
    fma_row<5>(ap, b0, b1, c5l, c5h);
    fma_row<6>(ap, b0, b1, c6l, c6h);
    fma_row<7>(ap, b0, b1, c7l, c7h);
    fma_row<8>(ap, b0, b1, c8l, c8h);
    fma_row<9>(ap, b0, b1, c9l, c9h);
    fma_row<10>(ap, b0, b1, cal, cah);
    fma_row<11>(ap, b0, b1, cbl, cbh);
    ap += kMR;
    bp += kNR;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const bool read_c = beta != 0.0f;
  const __m512 lo[kMR] = {c0l, c1l, c2l, c3l, c4l, c5l, c6l, c7l, c8l, c9l, cal, cbl};
  const __m512 hi[kMR] = {c0h, c1h, c2h, c3h, c4h, c5h, c6h, c7h, c8h, c9h, cah, cbh};
  for (int i = 0; i < mr_eff; ++i) store_row(c + i * ldc, lo[i], hi[i], nr_eff, va, vb, read_c);
}

float fma_probe(int64_t iters) {
  // As the AVX2 probe, with ZMM registers: twelve chains cover both FMA ports.
  float out[16];
  const float m = 0.999999f, c = 1e-6f;
#if defined(__GNUC__)
  __asm__ volatile(
      "vbroadcastss %[m], %%zmm0\n"
      "vbroadcastss %[c], %%zmm1\n"
      "vmovaps %%zmm1, %%zmm4\n vmovaps %%zmm1, %%zmm5\n vmovaps %%zmm1, %%zmm6\n vmovaps %%zmm1, %%zmm7\n"
      "vmovaps %%zmm1, %%zmm8\n vmovaps %%zmm1, %%zmm9\n vmovaps %%zmm1, %%zmm10\n vmovaps %%zmm1, %%zmm11\n"
      "vmovaps %%zmm1, %%zmm12\n vmovaps %%zmm1, %%zmm13\n vmovaps %%zmm1, %%zmm14\n vmovaps %%zmm1, %%zmm15\n"
      "test %[n], %[n]\n"
      "jle 2f\n"
      "1:\n"
      "vfmadd213ps %%zmm1, %%zmm0, %%zmm4\n vfmadd213ps %%zmm1, %%zmm0, %%zmm5\n"
      "vfmadd213ps %%zmm1, %%zmm0, %%zmm6\n vfmadd213ps %%zmm1, %%zmm0, %%zmm7\n"
      "vfmadd213ps %%zmm1, %%zmm0, %%zmm8\n vfmadd213ps %%zmm1, %%zmm0, %%zmm9\n"
      "vfmadd213ps %%zmm1, %%zmm0, %%zmm10\n vfmadd213ps %%zmm1, %%zmm0, %%zmm11\n"
      "vfmadd213ps %%zmm1, %%zmm0, %%zmm12\n vfmadd213ps %%zmm1, %%zmm0, %%zmm13\n"
      "vfmadd213ps %%zmm1, %%zmm0, %%zmm14\n vfmadd213ps %%zmm1, %%zmm0, %%zmm15\n"
      "dec %[n]\n"
      "jnz 1b\n"
      "2:\n"
      "vaddps %%zmm4, %%zmm5, %%zmm4\n vaddps %%zmm6, %%zmm7, %%zmm6\n vaddps %%zmm8, %%zmm9, %%zmm8\n"
      "vaddps %%zmm10, %%zmm11, %%zmm10\n vaddps %%zmm12, %%zmm13, %%zmm12\n vaddps %%zmm14, %%zmm15, %%zmm14\n"
      "vaddps %%zmm4, %%zmm6, %%zmm4\n vaddps %%zmm8, %%zmm10, %%zmm8\n vaddps %%zmm12, %%zmm14, %%zmm12\n"
      "vaddps %%zmm4, %%zmm8, %%zmm4\n vaddps %%zmm4, %%zmm12, %%zmm4\n"
      "vmovups %%zmm4, %[out]\n"
      : [n] "+r"(iters), [out] "=m"(out)
      : [m] "m"(m), [c] "m"(c)
      : "xmm0", "xmm1", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
        "xmm15", "cc");
#else
  for (int i = 0; i < 16; ++i) out[i] = m * static_cast<float>(iters) + c;
#endif
  return out[0];
}

}  // namespace te::cpu::avx512

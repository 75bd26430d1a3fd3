// Writing back one row of a 32-wide GEMM tile held in two ZMM sums, shared by
// the f32 and bf16 tiles (both compiled with AVX-512 flags).
#pragma once

#include <immintrin.h>

namespace te::cpu::avx512 {

// C[0:nr_eff] = va * (lo, hi) (+ vb * C when read_c); partial rows masked, no scratch tile.
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

}  // namespace te::cpu::avx512

// The bf16 GEMM tile in portable C++: what vdpbf16ps computes, one lane at a
// time. Each 32-bit word of a packed operand holds two bf16 values, k even in
// the low half and k odd in the high half. A product of two bf16 values is
// exact in f32, so each lane adds the odd product, then the even one, to its
// f32 sum, as the instruction does. A template over the tile size, because
// the generic and AVX2 tables pack panels of different widths.
#pragma once

#include <cstdint>

#include "../../core/half.h"

namespace te::cpu::generic {

template <int MR, int NR>
void gemm_tile_bf16(int64_t kp, const uint32_t* a, int64_t lda, const uint32_t* bp, float* c, int64_t ldc, int mr_eff,
                    int nr_eff, float alpha, float beta, const void* pf, int64_t pf_lines) {
  (void)pf, (void)pf_lines;  // a hint the portable tile, far from the memory bound, does without
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kp; ++p) {
    const uint32_t* b = bp + p * NR;
    for (int i = 0; i < mr_eff; ++i) {
      const uint32_t w = a[i * lda + p];
      const float a_even = bf16_to_f32(static_cast<uint16_t>(w)), a_odd = bf16_to_f32(static_cast<uint16_t>(w >> 16));
      for (int j = 0; j < NR; ++j) {
        acc[i][j] += a_odd * bf16_to_f32(static_cast<uint16_t>(b[j] >> 16));
        acc[i][j] += a_even * bf16_to_f32(static_cast<uint16_t>(b[j]));
      }
    }
  }
  for (int i = 0; i < mr_eff; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < nr_eff; ++j) ci[j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * ci[j];
  }
}

}  // namespace te::cpu::generic

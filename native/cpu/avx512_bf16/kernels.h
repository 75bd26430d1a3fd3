// AVX512_BF16 micro-kernels (vdpbf16ps), compiled with that flag as a target
// of their own and reached only when the CPU reports it (CPUID leaf 7,
// sub-leaf 1). The tile has the AVX-512 f32 tile's shape, so packed panels
// are as wide as under the avx512 table.
#pragma once

#include <cstdint>

namespace te::cpu::avx512_bf16 {

void gemm_tile_bf16(int64_t kp, const uint32_t* a, int64_t lda, const uint32_t* bp, float* c, int64_t ldc, int mr_eff,
                    int nr_eff, float alpha, float beta, const void* pf, int64_t pf_lines);

}  // namespace te::cpu::avx512_bf16

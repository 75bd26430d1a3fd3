// Products in bf16 against weights packed once: the towers' optional reduced
// precision. B's panels hold bf16 pairs, A is rounded to bf16 (to nearest
// even) once per product into rows of pair words the tile reads in place,
// and the products are summed in f32 by the table's bf16 tile (vdpbf16ps
// where the CPU has AVX512_BF16). Reductions over K never split across
// threads, so results do not depend on the thread count.
#pragma once

#include <cstdint>

#include "gemm.h"

namespace te::cpu {

// B [N, K] (f32, f16 or bf16; nn.Linear's layout) packed as ceil(N / width)
// panels of ceil(K / 2) steps of `width` 32-bit words: word j of step p holds
// B(n, 2p) in its low half and B(n, 2p + 1) in its high half (n the panel's
// row j), rounded to bf16, zero past N and K. width is gemm_pack_width().
void gemm_pack_b_bf16(int64_t N, int64_t K, const void* b, int32_t dtype, int64_t ldb, uint32_t* out);

// C = act((alpha * A.B^T + beta * C) * col_scale + col_shift) with B packed
// by gemm_pack_b_bf16 in panels `width` wide (repacked, slowly, when that is
// not the width of the instruction set in use).
void gemm_bf16(int64_t M, int64_t N, int64_t K, const GemmA& a, const uint32_t* packed, int64_t width, float* c,
               int64_t ldc, const GemmEpilogue& ep);

}  // namespace te::cpu

// The cache blocking of the packed GEMMs (f32 and bf16), from the cache sizes
// this CPU reports (cpu_caches), so one build is tuned on a 32 KB-L1 Xeon and
// a 48 KB-L1 Zen 5 alike.
#pragma once

#include <cstdint>

namespace te::cpu {

struct GemmBlocking {
  int64_t kc;  // k steps of one B panel (nr 4-byte values each) kept in L1 while the tiles of A pass by
  int64_t mc;  // rows of A in one block kept in L2, a multiple of mr
};

// For an mr x nr micro-tile whose k step reads 4 bytes per panel value: one
// f32, or one word of two bf16 (the bf16 products' steps are pairs).
GemmBlocking gemm_blocking(int mr, int nr);

}  // namespace te::cpu

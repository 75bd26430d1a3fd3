// The cache blocking of the packed GEMMs (f32 and bf16), from the cache sizes
// this CPU reports, so one build is tuned on a 32 KB-L1 Xeon and a 48 KB-L1
// Zen 5 alike.
#pragma once

#include <cstdint>

namespace te::cpu {

struct CacheSizes {
  int64_t l1d, l2;  // bytes per core; defaults where the OS does not say
  bool reported;    // false: the defaults are in use
};

// Asked once.
const CacheSizes& cache_sizes();

struct GemmBlocking {
  int64_t kc;  // k steps of one B panel (step_bytes * nr each) kept in L1 while the tiles of A pass by
  int64_t mc;  // rows of A in one block kept in L2, a multiple of mr
};

// For a micro-tile of mr x nr whose k step reads `step_bytes` per value of a
// panel (4: one f32, or one word of two bf16).
GemmBlocking gemm_blocking(int mr, int nr, int64_t step_bytes);

}  // namespace te::cpu

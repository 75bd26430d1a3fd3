// A tile's share of the next B panel, asked for a line at a time spread
// evenly over its k steps (gemm_grid.h's line_slice says which lines): asked
// for in one burst before the tile, the prefetches stalled on the core's miss
// buffers. Shared by the SIMD tiles (x86 only; the portable tile ignores the
// hint).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace te::cpu {

class SpreadPrefetch {
 public:
  SpreadPrefetch(const void* p, int64_t lines, int64_t steps)
      : p_(static_cast<const char*>(p)), lines_(lines), steps_(steps) {}

  // Once per k step: the lines whose turn has come (Bresenham over steps).
  inline void step() {
    for (due_ += lines_; due_ >= steps_; due_ -= steps_, p_ += 64) _mm_prefetch(p_, _MM_HINT_T0);
  }

 private:
  const char* p_;
  int64_t lines_, steps_, due_ = 0;
};

}  // namespace te::cpu

#include <immintrin.h>

#include "../avx512/kernels.h"
#include "../avx512/tile_store.h"
#include "../spread_prefetch.h"
#include "kernels.h"

namespace te::cpu::avx512_bf16 {

namespace {

// Row i of the tile: its pair of A values broadcast to every lane, then
// C[i, j] += a_odd b_odd(j) + a_even b_even(j) for the 32 columns.
inline void dp_row(const uint32_t* row, __m512bh b0, __m512bh b1, __m512& lo, __m512& hi) {
  const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(*row));
  lo = _mm512_dpbf16_ps(lo, a, b0);
  hi = _mm512_dpbf16_ps(hi, a, b1);
}

}  // namespace

// The f32 tile's 12 x 32 outer product, each step taking a pair of k values:
// the same 24 accumulators, loads and broadcasts per step, twice the
// multiply-adds (the instruction's two products per lane). A's rows are
// read in place (twelve streams the prefetchers follow), so A is never
// packed: rows past mr_eff repeat row 0 and their sums are not stored.
void gemm_tile_bf16(int64_t kp, const uint32_t* a, int64_t lda, const uint32_t* bp, float* c, int64_t ldc, int mr_eff,
                    int nr_eff, float alpha, float beta, const void* pf, int64_t pf_lines) {
  SpreadPrefetch next(pf, pf_lines, kp);
  using avx512::kMR;
  using avx512::kNR;
  const uint32_t* r[kMR];
  for (int i = 0; i < kMR; ++i) r[i] = a + (i < mr_eff ? i * lda : 0);
  __m512 c0l = _mm512_setzero_ps(), c0h = c0l, c1l = c0l, c1h = c0l, c2l = c0l, c2h = c0l, c3l = c0l, c3h = c0l;
  __m512 c4l = c0l, c4h = c0l, c5l = c0l, c5h = c0l, c6l = c0l, c6h = c0l, c7l = c0l, c7h = c0l;
  __m512 c8l = c0l, c8h = c0l, c9l = c0l, c9h = c0l, cal = c0l, cah = c0l, cbl = c0l, cbh = c0l;
  for (int64_t p = 0; p < kp; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(bp), b1 = (__m512bh)_mm512_load_si512(bp + 16);
    next.step();
    dp_row(r[0] + p, b0, b1, c0l, c0h);
    dp_row(r[1] + p, b0, b1, c1l, c1h);
    dp_row(r[2] + p, b0, b1, c2l, c2h);
    dp_row(r[3] + p, b0, b1, c3l, c3h);
    dp_row(r[4] + p, b0, b1, c4l, c4h);
    dp_row(r[5] + p, b0, b1, c5l, c5h);
    dp_row(r[6] + p, b0, b1, c6l, c6h);
    dp_row(r[7] + p, b0, b1, c7l, c7h);
    dp_row(r[8] + p, b0, b1, c8l, c8h);
    dp_row(r[9] + p, b0, b1, c9l, c9h);
    dp_row(r[10] + p, b0, b1, cal, cah);
    dp_row(r[11] + p, b0, b1, cbl, cbh);
    bp += kNR;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const bool read_c = beta != 0.0f;
  const __m512 lo[kMR] = {c0l, c1l, c2l, c3l, c4l, c5l, c6l, c7l, c8l, c9l, cal, cbl};
  const __m512 hi[kMR] = {c0h, c1h, c2h, c3h, c4h, c5h, c6h, c7h, c8h, c9h, cah, cbh};
  for (int i = 0; i < mr_eff; ++i) avx512::store_row(c + i * ldc, lo[i], hi[i], nr_eff, va, vb, read_c);
}

}  // namespace te::cpu::avx512_bf16

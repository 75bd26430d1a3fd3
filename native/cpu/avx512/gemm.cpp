#include <immintrin.h>

#include <algorithm>

#include "../spread_prefetch.h"
#include "kernels.h"
#include "tile_store.h"

namespace te::cpu::avx512 {

namespace {

// Row i of the tile, two ZMM accumulators: C[i, 0:16] and C[i, 16:32].
template <int I>
inline void fma_row(const float* ap, __m512 b0, __m512 b1, __m512& lo, __m512& hi) {
  const __m512 a = _mm512_set1_ps(ap[I]);  // folds into an embedded {1to16} broadcast
  lo = _mm512_fmadd_ps(a, b0, lo);
  hi = _mm512_fmadd_ps(a, b1, hi);
}

}  // namespace

// 12 x 32 outer-product tile: 24 ZMM accumulators, 2 ZMM of B, A broadcast
// straight from memory; 24 FMAs for 2 loads and 12 broadcasts per k step.
// Partial tiles use masked loads and stores, no scratch tile. The pf lines
// are asked for spread evenly over the k steps, between the FMAs.
void gemm_tile(int64_t k, const float* ap, const float* bp, float* c, int64_t ldc, int mr_eff, int nr_eff, float alpha,
               float beta, const void* pf, int64_t pf_lines) {
  SpreadPrefetch next(pf, pf_lines, k);
  __m512 c0l = _mm512_setzero_ps(), c0h = c0l, c1l = c0l, c1h = c0l, c2l = c0l, c2h = c0l, c3l = c0l, c3h = c0l;
  __m512 c4l = c0l, c4h = c0l, c5l = c0l, c5h = c0l, c6l = c0l, c6h = c0l, c7l = c0l, c7h = c0l;
  __m512 c8l = c0l, c8h = c0l, c9l = c0l, c9h = c0l, cal = c0l, cah = c0l, cbl = c0l, cbh = c0l;
  for (int64_t p = 0; p < k; ++p) {
    const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
    next.step();
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

namespace te::cpu::avx512 {

namespace {

// Sixteen vectors in, one out whose lane 4j + i holds the sum of v[4i + j]
// (so lane 4(s % 4) + s / 4 holds the sum of v[s]):
// halves, quarters, pairs and singles folded together in 45 shuffles and
// adds, instead of sixteen separate horizontal sums.
inline __m512 reduce16(const __m512 v[16]) {
  __m512 u[8], w[4];
  for (int a = 0; a < 8; ++a)
    u[a] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * a], v[2 * a + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * a], v[2 * a + 1], 0xEE));
  for (int b = 0; b < 4; ++b)
    w[b] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * b], u[2 * b + 1], 0x88),
                         _mm512_shuffle_f32x4(u[2 * b], u[2 * b + 1], 0xDD));
  const __m512 y0 = _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x44), _mm512_shuffle_ps(w[0], w[1], 0xEE));
  const __m512 y1 = _mm512_add_ps(_mm512_shuffle_ps(w[2], w[3], 0x44), _mm512_shuffle_ps(w[2], w[3], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(y0, y1, 0x88), _mm512_shuffle_ps(y0, y1, 0xDD));
}

}  // namespace

// 4 rows of x against 4 rows of w, both read along k in place: 16 ZMM
// accumulators, 8 loads per 16 FMAs, one reduction at the end.
void dot_tile(int64_t k, const float* x, int64_t ldx, int mr_eff, const float* w, int64_t ldw, int nr_eff, float* c,
              int64_t ldc, float alpha, float beta) {
  // Rows past the edge repeat row 0 (valid memory); their sums are dropped.
  const float* x0 = x;
  const float* x1 = x + (mr_eff > 1 ? ldx : 0);
  const float* x2 = x + (mr_eff > 2 ? 2 * ldx : 0);
  const float* x3 = x + (mr_eff > 3 ? 3 * ldx : 0);
  const float* w0 = w;
  const float* w1 = w + (nr_eff > 1 ? ldw : 0);
  const float* w2 = w + (nr_eff > 2 ? 2 * ldw : 0);
  const float* w3 = w + (nr_eff > 3 ? 3 * ldw : 0);
  __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  __m512 a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  auto step = [&](__m512 wv0, __m512 wv1, __m512 wv2, __m512 wv3, __m512 xv0, __m512 xv1, __m512 xv2, __m512 xv3) {
    a00 = _mm512_fmadd_ps(xv0, wv0, a00);
    a01 = _mm512_fmadd_ps(xv0, wv1, a01);
    a02 = _mm512_fmadd_ps(xv0, wv2, a02);
    a03 = _mm512_fmadd_ps(xv0, wv3, a03);
    a10 = _mm512_fmadd_ps(xv1, wv0, a10);
    a11 = _mm512_fmadd_ps(xv1, wv1, a11);
    a12 = _mm512_fmadd_ps(xv1, wv2, a12);
    a13 = _mm512_fmadd_ps(xv1, wv3, a13);
    a20 = _mm512_fmadd_ps(xv2, wv0, a20);
    a21 = _mm512_fmadd_ps(xv2, wv1, a21);
    a22 = _mm512_fmadd_ps(xv2, wv2, a22);
    a23 = _mm512_fmadd_ps(xv2, wv3, a23);
    a30 = _mm512_fmadd_ps(xv3, wv0, a30);
    a31 = _mm512_fmadd_ps(xv3, wv1, a31);
    a32 = _mm512_fmadd_ps(xv3, wv2, a32);
    a33 = _mm512_fmadd_ps(xv3, wv3, a33);
  };
  int64_t p = 0;
  for (; p + 16 <= k; p += 16)
    step(_mm512_loadu_ps(w0 + p), _mm512_loadu_ps(w1 + p), _mm512_loadu_ps(w2 + p), _mm512_loadu_ps(w3 + p),
         _mm512_loadu_ps(x0 + p), _mm512_loadu_ps(x1 + p), _mm512_loadu_ps(x2 + p), _mm512_loadu_ps(x3 + p));
  if (p < k) {
    const __mmask16 m = static_cast<__mmask16>((1u << (k - p)) - 1);
    step(_mm512_maskz_loadu_ps(m, w0 + p), _mm512_maskz_loadu_ps(m, w1 + p), _mm512_maskz_loadu_ps(m, w2 + p),
         _mm512_maskz_loadu_ps(m, w3 + p), _mm512_maskz_loadu_ps(m, x0 + p), _mm512_maskz_loadu_ps(m, x1 + p),
         _mm512_maskz_loadu_ps(m, x2 + p), _mm512_maskz_loadu_ps(m, x3 + p));
  }
  // Fed column by column, the reduction leaves C[i, j] in lane 4i + j: each
  // row of the tile is one 128-bit lane.
  const __m512 v[16] = {a00, a10, a20, a30, a01, a11, a21, a31, a02, a12, a22, a32, a03, a13, a23, a33};
  const __m512 sums = _mm512_mul_ps(_mm512_set1_ps(alpha), reduce16(v));
  const __mmask8 m = static_cast<__mmask8>((1u << nr_eff) - 1);
  const __m128 vb = _mm_set1_ps(beta);
  auto store = [&](float* ci, __m128 row) {
    if (beta != 0.0f) row = _mm_fmadd_ps(vb, _mm_maskz_loadu_ps(m, ci), row);
    _mm_mask_storeu_ps(ci, m, row);
  };
  store(c, _mm512_extractf32x4_ps(sums, 0));
  if (mr_eff > 1) store(c + ldc, _mm512_extractf32x4_ps(sums, 1));
  if (mr_eff > 2) store(c + 2 * ldc, _mm512_extractf32x4_ps(sums, 2));
  if (mr_eff > 3) store(c + 3 * ldc, _mm512_extractf32x4_ps(sums, 3));
}

}  // namespace te::cpu::avx512

namespace te::cpu::avx512 {

namespace {

// The number of rows is a template argument so the 4 x ROWS accumulators
// live in registers (a runtime count would put them on the stack).
template <int ROWS>
void weighted_rows_n(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t n, int64_t d, float* y,
                     int64_t ldy) {
  for (int64_t e0 = 0; e0 < d; e0 += 64) {
    const int64_t w = std::min<int64_t>(64, d - e0);
    __mmask16 m[4];
    for (int q = 0; q < 4; ++q) {
      const int64_t left = w - 16 * q;
      m[q] = left >= 16 ? 0xFFFF : left <= 0 ? 0 : static_cast<__mmask16>((1u << left) - 1);
    }
    __m512 acc[ROWS][4];
    for (int r = 0; r < ROWS; ++r)
      for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const float* vj = v + j * ldv + e0;
      __m512 vq[4];
      for (int q = 0; q < 4; ++q) vq[q] = _mm512_maskz_loadu_ps(m[q], vj + 16 * q);
      for (int r = 0; r < ROWS; ++r) {
        const __m512 pr = _mm512_set1_ps(p[r * ldp + j]);
        for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_fmadd_ps(pr, vq[q], acc[r][q]);
      }
    }
    for (int r = 0; r < ROWS; ++r)
      for (int q = 0; q < 4; ++q) _mm512_mask_storeu_ps(y + r * ldy + e0 + 16 * q, m[q], acc[r][q]);
  }
}

}  // namespace

// 64 columns at a time for up to 4 rows: 16 ZMM accumulators; each row of v
// is loaded once per column block and used for every weight row.
void weighted_rows(const float* p, int64_t ldp, int rows, const float* v, int64_t ldv, int64_t n, int64_t d, float* y,
                   int64_t ldy) {
  switch (rows) {
    case 1:
      return weighted_rows_n<1>(p, ldp, v, ldv, n, d, y, ldy);
    case 2:
      return weighted_rows_n<2>(p, ldp, v, ldv, n, d, y, ldy);
    case 3:
      return weighted_rows_n<3>(p, ldp, v, ldv, n, d, y, ldy);
    default:
      return weighted_rows_n<4>(p, ldp, v, ldv, n, d, y, ldy);
  }
}

}  // namespace te::cpu::avx512

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../../core/half.h"
#include "../spread_prefetch.h"
#include "kernels.h"
#include "simd.h"
#include "tinyemo.h"

namespace te::cpu::avx2 {

// 6 x 16 outer-product tile: 12 accumulators, 2 B vectors and 1 broadcast
// of A fill 15 of the 16 ymm registers; each k step is 12 FMAs for 2 loads
// and 6 broadcasts, so the two FMA ports stay busy.
void gemm_tile(int64_t k, const float* ap, const float* bp, float* c, int64_t ldc, int mr_eff, int nr_eff, float alpha,
               float beta, const void* pf, int64_t pf_lines) {
  SpreadPrefetch next(pf, pf_lines, k);
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int i = 0; i < mr_eff; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
    next.step();
    __m256 a = _mm256_broadcast_ss(ap + 0);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(ap + 1);
    c10 = _mm256_fmadd_ps(a, b0, c10);
    c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(ap + 2);
    c20 = _mm256_fmadd_ps(a, b0, c20);
    c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(ap + 3);
    c30 = _mm256_fmadd_ps(a, b0, c30);
    c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(ap + 4);
    c40 = _mm256_fmadd_ps(a, b0, c40);
    c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(ap + 5);
    c50 = _mm256_fmadd_ps(a, b0, c50);
    c51 = _mm256_fmadd_ps(a, b1, c51);
    ap += kMR;
    bp += kNR;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const __m256 acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr_eff == kMR && nr_eff == kNR) {
    for (int i = 0; i < kMR; ++i) {
      float* ci = c + i * ldc;
      for (int h = 0; h < 2; ++h) {
        __m256 v = _mm256_mul_ps(va, acc[i][h]);
        if (beta != 0.0f) v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8 * h), v);
        _mm256_storeu_ps(ci + 8 * h, v);
      }
    }
    return;
  }
  alignas(32) float tile[kMR][kNR];
  for (int i = 0; i < kMR; ++i) {
    _mm256_store_ps(tile[i], acc[i][0]);
    _mm256_store_ps(tile[i] + 8, acc[i][1]);
  }
  for (int i = 0; i < mr_eff; ++i) {
    float* ci = c + i * ldc;
    if (beta == 0.0f) {
      for (int j = 0; j < nr_eff; ++j) ci[j] = alpha * tile[i][j];
    } else {
      for (int j = 0; j < nr_eff; ++j) ci[j] = alpha * tile[i][j] + beta * ci[j];
    }
  }
}

// 4 rows of x against 3 rows of w, both read along k in place: 12 YMM
// accumulators, 3 + 4 loads per 12 FMAs, horizontal sums at the end.
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
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
  __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
  auto step = [&](__m256 wv0, __m256 wv1, __m256 wv2, auto load_x) {
    __m256 xv = load_x(x0);
    a00 = _mm256_fmadd_ps(xv, wv0, a00);
    a01 = _mm256_fmadd_ps(xv, wv1, a01);
    a02 = _mm256_fmadd_ps(xv, wv2, a02);
    xv = load_x(x1);
    a10 = _mm256_fmadd_ps(xv, wv0, a10);
    a11 = _mm256_fmadd_ps(xv, wv1, a11);
    a12 = _mm256_fmadd_ps(xv, wv2, a12);
    xv = load_x(x2);
    a20 = _mm256_fmadd_ps(xv, wv0, a20);
    a21 = _mm256_fmadd_ps(xv, wv1, a21);
    a22 = _mm256_fmadd_ps(xv, wv2, a22);
    xv = load_x(x3);
    a30 = _mm256_fmadd_ps(xv, wv0, a30);
    a31 = _mm256_fmadd_ps(xv, wv1, a31);
    a32 = _mm256_fmadd_ps(xv, wv2, a32);
  };
  int64_t p = 0;
  for (; p + 8 <= k; p += 8)
    step(_mm256_loadu_ps(w0 + p), _mm256_loadu_ps(w1 + p), _mm256_loadu_ps(w2 + p),
         [p](const float* r) { return _mm256_loadu_ps(r + p); });
  if (p < k) {
    const __m256i m = tail_mask(k - p);
    step(_mm256_maskload_ps(w0 + p, m), _mm256_maskload_ps(w1 + p, m), _mm256_maskload_ps(w2 + p, m),
         [p, m](const float* r) { return _mm256_maskload_ps(r + p, m); });
  }
  const __m256 acc[4][3] = {{a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};
  for (int i = 0; i < mr_eff; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < nr_eff; ++j) ci[j] = alpha * hsum(acc[i][j]) + (beta != 0.0f ? beta * ci[j] : 0.0f);
  }
}

namespace {

inline __m256 load8(const void* base, int32_t dtype, int64_t i) {
  if (dtype == TE_F16) return load_f16(static_cast<const uint16_t*>(base) + i);
  if (dtype == TE_BF16) return load_bf16(static_cast<const uint16_t*>(base) + i);
  return _mm256_loadu_ps(static_cast<const float*>(base) + i);
}

// r[0..7] hold 8 rows of 8 values; afterwards r[j] holds column j.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// r[0..3] hold 4 rows of 8 values; stores column j's 4 values at o + j * stride.
inline void transpose4x8_store(const __m256 r[4], float* o, int64_t stride) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 u[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                       _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
  for (int j = 0; j < 4; ++j) {
    _mm_storeu_ps(o + j * stride, _mm256_castps256_ps128(u[j]));
    _mm_storeu_ps(o + (j + 4) * stride, _mm256_extractf128_ps(u[j], 1));
  }
}

inline float load1(const void* base, int32_t dtype, int64_t i) {
  if (dtype == TE_F16) return te::f16_to_f32(static_cast<const uint16_t*>(base)[i]);
  if (dtype == TE_BF16) return te::bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  return static_cast<const float*>(base)[i];
}

}  // namespace

void pack_rows(const void* w, int32_t dtype, int64_t ldw, int64_t rows, int64_t k, int width, float* out) {
  // Groups of up to 8 rows go through 8x8 register transposes, each k step
  // stored as that group's lanes of the panel (masked when the group is
  // narrower than 8, as for the 6-row panels of A); rows past the end are
  // zero; the k tail is done one value at a time.
  const char* bytes = static_cast<const char*>(w);
  const int64_t es = dtype == TE_F32 ? 4 : 2;
  for (int64_t r0 = 0; r0 < rows; r0 += width) {
    for (int g = 0; g < width; g += 8) {
      const int lanes = std::min(8, width - g);
      const int64_t first = r0 + g;
      const int64_t n_rows = std::max<int64_t>(0, std::min<int64_t>(lanes, rows - first));
      const __m256i mask = tail_mask(lanes);
      float* o = out + g;
      int64_t kk = 0;
      // A 4-row group (the last of AVX-512's 12-row panels of A) needs half
      // the shuffles and no masked stores, which are slow on AMD cores.
      for (; lanes == 4 && kk + 8 <= k; kk += 8) {
        __m256 r[4];
        for (int j = 0; j < 4; ++j) r[j] = j < n_rows ? load8(w, dtype, (first + j) * ldw + kk) : _mm256_setzero_ps();
        transpose4x8_store(r, o + kk * width, width);
      }
      // The same rows of the next panel, a line per row every 64 bytes of
      // these: a block of a weight's rows is a few hundred short segments
      // (1 KB each in a 256-step K block) that no hardware prefetcher follows.
      const int64_t ahead = std::max<int64_t>(0, std::min<int64_t>(lanes, rows - first - width));
      const int64_t line = 64 / es;
      for (; kk + 8 <= k; kk += 8) {
        if (kk % line == 0)
          for (int j = 0; j < ahead; ++j) _mm_prefetch(bytes + ((first + width + j) * ldw + kk) * es, _MM_HINT_T0);
        __m256 r[8];
        for (int j = 0; j < 8; ++j) r[j] = j < n_rows ? load8(w, dtype, (first + j) * ldw + kk) : _mm256_setzero_ps();
        transpose8(r);
        if (lanes == 8) {
          for (int j = 0; j < 8; ++j) _mm256_storeu_ps(o + (kk + j) * width, r[j]);
        } else {
          for (int j = 0; j < 8; ++j) _mm256_maskstore_ps(o + (kk + j) * width, mask, r[j]);
        }
      }
      for (; kk < k; ++kk) {
        float* ok = o + kk * width;
        for (int j = 0; j < lanes; ++j) ok[j] = j < n_rows ? load1(w, dtype, (first + j) * ldw + kk) : 0.0f;
      }
    }
    out += k * width;
  }
}

namespace {

// Four rows at a time share each load of x; two accumulators per row keep
// eight FMA chains in flight. Weights stream from memory once; the next four
// rows are prefetched as these are read, because short rows (a few KB, less
// with 16-bit weights) are too short for the hardware prefetcher to ramp up.
template <class Load>
void gemv_rows(Load load, int64_t ldw, const float* x, int64_t k, int64_t n, float* y) {
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const int64_t o0 = r * ldw, o1 = o0 + ldw, o2 = o1 + ldw, o3 = o2 + ldw;
    const bool ahead = Load::kPrefetch && r + 8 <= n;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
      if (ahead) {
        const int64_t n0 = o0 + 4 * ldw + i;
        _mm_prefetch(static_cast<const char*>(load.at(n0)), _MM_HINT_T0);
        _mm_prefetch(static_cast<const char*>(load.at(n0 + ldw)), _MM_HINT_T0);
        _mm_prefetch(static_cast<const char*>(load.at(n0 + 2 * ldw)), _MM_HINT_T0);
        _mm_prefetch(static_cast<const char*>(load.at(n0 + 3 * ldw)), _MM_HINT_T0);
      }
      const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
      a0 = _mm256_fmadd_ps(load(o0 + i), x0, a0);
      a1 = _mm256_fmadd_ps(load(o1 + i), x0, a1);
      a2 = _mm256_fmadd_ps(load(o2 + i), x0, a2);
      a3 = _mm256_fmadd_ps(load(o3 + i), x0, a3);
      b0 = _mm256_fmadd_ps(load(o0 + i + 8), x1, b0);
      b1 = _mm256_fmadd_ps(load(o1 + i + 8), x1, b1);
      b2 = _mm256_fmadd_ps(load(o2 + i + 8), x1, b2);
      b3 = _mm256_fmadd_ps(load(o3 + i + 8), x1, b3);
    }
    for (; i + 8 <= k; i += 8) {
      const __m256 x0 = _mm256_loadu_ps(x + i);
      a0 = _mm256_fmadd_ps(load(o0 + i), x0, a0);
      a1 = _mm256_fmadd_ps(load(o1 + i), x0, a1);
      a2 = _mm256_fmadd_ps(load(o2 + i), x0, a2);
      a3 = _mm256_fmadd_ps(load(o3 + i), x0, a3);
    }
    float s0 = hsum(_mm256_add_ps(a0, b0)), s1 = hsum(_mm256_add_ps(a1, b1));
    float s2 = hsum(_mm256_add_ps(a2, b2)), s3 = hsum(_mm256_add_ps(a3, b3));
    // The k tail by explicit fma, here and for single rows: left as a * b + s, the compiler contracted it in
    // one place and not the other, and a row's bits depended on which rows it was computed with.
    for (; i < k; ++i) {
      s0 = std::fma(load.one(o0 + i), x[i], s0);
      s1 = std::fma(load.one(o1 + i), x[i], s1);
      s2 = std::fma(load.one(o2 + i), x[i], s2);
      s3 = std::fma(load.one(o3 + i), x[i], s3);
    }
    y[r] = s0;
    y[r + 1] = s1;
    y[r + 2] = s2;
    y[r + 3] = s3;
  }
  for (; r < n; ++r) {
    const int64_t o = r * ldw;
    __m256 a = _mm256_setzero_ps(), b = a;
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
      a = _mm256_fmadd_ps(load(o + i), _mm256_loadu_ps(x + i), a);
      b = _mm256_fmadd_ps(load(o + i + 8), _mm256_loadu_ps(x + i + 8), b);
    }
    for (; i + 8 <= k; i += 8) a = _mm256_fmadd_ps(load(o + i), _mm256_loadu_ps(x + i), a);
    float s = hsum(_mm256_add_ps(a, b));
    for (; i < k; ++i) s = std::fma(load.one(o + i), x[i], s);
    y[r] = s;
  }
}

struct LoadF32 {
  const float* p;
  __m256 operator()(int64_t i) const { return _mm256_loadu_ps(p + i); }
  const void* at(int64_t i) const { return p + i; }
  // Prefetched too: on a Zen 5 under AVX2, a 164 MB f32 stream went from 50-54 to 60-70 GB/s with it, and an
  // OpenELM-270M-shaped f32 decode step from 25.5-26 to 22.9-24.4 ms (it had been measured as only competing
  // for bandwidth on an earlier machine; the AVX-512 kernel, at 64-80 GB/s without it, is left as it is).
  static constexpr bool kPrefetch = true;
  float one(int64_t i) const { return p[i]; }
};
struct LoadF16 {
  const uint16_t* p;
  __m256 operator()(int64_t i) const { return load_f16(p + i); }
  const void* at(int64_t i) const { return p + i; }
  static constexpr bool kPrefetch = true;
  float one(int64_t i) const { return te::f16_to_f32(p[i]); }
};
struct LoadBF16 {
  const uint16_t* p;
  __m256 operator()(int64_t i) const { return load_bf16(p + i); }
  const void* at(int64_t i) const { return p + i; }
  static constexpr bool kPrefetch = true;
  float one(int64_t i) const { return te::bf16_to_f32(p[i]); }
};

}  // namespace

void gemv_f32(const float* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y) {
  gemv_rows(LoadF32{w}, ldw, x, k, n, y);
}
void gemv_f16(const uint16_t* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y) {
  gemv_rows(LoadF16{w}, ldw, x, k, n, y);
}
void gemv_bf16(const uint16_t* w, int64_t ldw, const float* x, int64_t k, int64_t n, float* y) {
  gemv_rows(LoadBF16{w}, ldw, x, k, n, y);
}

// One contiguous stream of k steps of 16 values per panel, two FMAs a step against x[kk] broadcast; four
// steps into four pairs of accumulators (eight chains in flight), summed in a fixed order at the end. Each
// step asks for the line 1 KB ahead, as gemv_rows does for its rows: 1280x1280 and 1280x5120 from memory on a
// Zen 5 read 44-46 and 49-50 GB/s without, 51 and 50-54 with (2 and 4 KB ahead did no better).
void gemv_packed(const float* w, const float* x, int64_t k, int64_t panels, float* y) {
  for (int64_t p = 0; p < panels; ++p, w += k * kNR, y += kNR) {
    __m256 a[4][2];
    for (auto& r : a) r[0] = r[1] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= k; i += 4) {
      for (int u = 0; u < 4; ++u) {
        const __m256 xb = _mm256_broadcast_ss(x + i + u);
        const float* row = w + (i + u) * kNR;
        _mm_prefetch(reinterpret_cast<const char*>(row + 256), _MM_HINT_T0);
        a[u][0] = _mm256_fmadd_ps(_mm256_loadu_ps(row), xb, a[u][0]);
        a[u][1] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8), xb, a[u][1]);
      }
    }
    for (; i < k; ++i) {
      const __m256 xb = _mm256_broadcast_ss(x + i);
      a[0][0] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i * kNR), xb, a[0][0]);
      a[0][1] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i * kNR + 8), xb, a[0][1]);
    }
    for (int h = 0; h < 2; ++h)
      _mm256_storeu_ps(y + 8 * h, _mm256_add_ps(_mm256_add_ps(a[0][h], a[1][h]), _mm256_add_ps(a[2][h], a[3][h])));
  }
}

}  // namespace te::cpu::avx2

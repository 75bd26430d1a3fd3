// Matrix-vector products y[r] = sum_k W[r, k] x[k] with ZMM registers: the
// one-row GEMM (decode steps, one image's projection) and attention's
// scores. Bound by how fast W streams, so the aim is many loads in flight:
// several rows at a time share each load of x, two accumulators per row, 32
// values of a row per step. f32 takes four rows (eight did no better). 16-bit
// rows are short in bytes, too short for the hardware prefetcher to ramp up:
// they go eight at a time, one cache line of each per step (on Zen 5 a
// standalone stream ran 10% faster than with four rows on one core, 7-10% on
// two; a decode step's f16 products about 5%), and the next eight rows are
// prefetched as these are read. f32 rows are not prefetched (it only competed
// for bandwidth; the AVX2 kernel, slower at streaming, does prefetch them).
#include <immintrin.h>

#include "kernels.h"
#include "simd.h"

namespace te::cpu::avx512 {

namespace {

// The row loops fully unrolled, so the accumulator arrays live in registers, not on the stack; each group
// inlined into the row loop (called per group, f32 streamed 4% slower than the hand-written loop it replaced).
#if defined(__GNUC__)
#define TE_UNROLL_ROWS _Pragma("GCC unroll 16")
#define TE_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define TE_UNROLL_ROWS
#define TE_ALWAYS_INLINE inline
#endif

struct LoadF32 {
  const float* p;
  __m512 operator()(int64_t i) const { return _mm512_loadu_ps(p + i); }
  __m512 masked(int64_t i, __mmask16 m) const { return _mm512_maskz_loadu_ps(m, p + i); }
  const void* at(int64_t i) const { return p + i; }
  static constexpr bool kPrefetch = false;
  static constexpr int kBytes = 4;
  static constexpr int kRows = 4;
};

struct LoadF16 {
  const uint16_t* p;
  __m512 operator()(int64_t i) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
  }
  __m512 masked(int64_t i, __mmask16 m) const { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p + i)); }
  const void* at(int64_t i) const { return p + i; }
  static constexpr bool kPrefetch = true;
  static constexpr int kBytes = 2;
  static constexpr int kRows = 8;
};

// bf16 is the top half of an f32: widen and shift into place.
struct LoadBF16 {
  const uint16_t* p;
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  __m512 operator()(int64_t i) const { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i))); }
  __m512 masked(int64_t i, __mmask16 m) const { return widen(_mm256_maskz_loadu_epi16(m, p + i)); }
  const void* at(int64_t i) const { return p + i; }
  static constexpr bool kPrefetch = true;
  static constexpr int kBytes = 2;
  static constexpr int kRows = 8;
};

// Rows rows of W against x from offset o: two accumulators per row (even and
// odd 16-value pieces), the k tail into the first. Every row sums in this
// order whatever Rows is, so a row's result does not depend on which group
// it fell in (nor on how rows were split among threads).
template <int Rows, class Load>
TE_ALWAYS_INLINE void dot_rows(const Load& load, int64_t o, int64_t ldw, const float* x, int64_t k, float* y,
                               bool ahead) {
  // One cache line of the next Rows rows per 64 bytes of these.
  constexpr int64_t kLine = 64 / Load::kBytes;
  __m512 a[Rows], b[Rows];
  TE_UNROLL_ROWS
  for (int j = 0; j < Rows; ++j) a[j] = b[j] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    if (ahead && i % kLine == 0) {
      TE_UNROLL_ROWS
      for (int j = 0; j < Rows; ++j)
        _mm_prefetch(static_cast<const char*>(load.at(o + (Rows + j) * ldw + i)), _MM_HINT_T0);
    }
    const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
    TE_UNROLL_ROWS
    for (int j = 0; j < Rows; ++j) a[j] = _mm512_fmadd_ps(load(o + j * ldw + i), x0, a[j]);
    TE_UNROLL_ROWS
    for (int j = 0; j < Rows; ++j) b[j] = _mm512_fmadd_ps(load(o + j * ldw + i + 16), x1, b[j]);
  }
  for (; i < k; i += 16) {
    const __mmask16 m = tail_mask16(k - i);
    const __m512 x0 = _mm512_maskz_loadu_ps(m, x + i);
    TE_UNROLL_ROWS
    for (int j = 0; j < Rows; ++j) a[j] = _mm512_fmadd_ps(load.masked(o + j * ldw + i, m), x0, a[j]);
  }
  TE_UNROLL_ROWS
  for (int j = 0; j < Rows; ++j) y[j] = _mm512_reduce_add_ps(_mm512_add_ps(a[j], b[j]));
}

template <class Load>
void gemv_rows(Load load, int64_t ldw, const float* x, int64_t k, int64_t n, float* y) {
  constexpr int R = Load::kRows;
  int64_t r = 0;
  for (; r + R <= n; r += R) dot_rows<R>(load, r * ldw, ldw, x, k, y + r, Load::kPrefetch && r + 2 * R <= n);
  for (; r < n; ++r) dot_rows<1>(load, r * ldw, ldw, x, k, y + r, false);
}

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

// A packed panel is one contiguous stream of k steps of 32 values: each step is two FMAs against x[kk]
// broadcast, with no horizontal sums. Four steps go into four pairs of accumulators so that eight FMA
// chains are in flight, summed in a fixed order at the end (the same whatever the threads). Not prefetched, as the
// f32 rows: asking for the lines 1 or 2 KB ahead read 1280x5120 from memory at 50-54 GB/s against 61 without.
void gemv_packed(const float* w, const float* x, int64_t k, int64_t panels, float* y) {
  for (int64_t p = 0; p < panels; ++p, w += k * kNR, y += kNR) {
    __m512 a[4][2];
    for (auto& r : a) r[0] = r[1] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= k; i += 4) {
      for (int u = 0; u < 4; ++u) {
        const __m512 xb = _mm512_set1_ps(x[i + u]);
        const float* row = w + (i + u) * kNR;
        a[u][0] = _mm512_fmadd_ps(_mm512_loadu_ps(row), xb, a[u][0]);
        a[u][1] = _mm512_fmadd_ps(_mm512_loadu_ps(row + 16), xb, a[u][1]);
      }
    }
    for (; i < k; ++i) {
      const __m512 xb = _mm512_set1_ps(x[i]);
      a[0][0] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i * kNR), xb, a[0][0]);
      a[0][1] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i * kNR + 16), xb, a[0][1]);
    }
    for (int h = 0; h < 2; ++h)
      _mm512_storeu_ps(y + 16 * h, _mm512_add_ps(_mm512_add_ps(a[0][h], a[1][h]), _mm512_add_ps(a[2][h], a[3][h])));
  }
}

}  // namespace te::cpu::avx512

// Matrix-vector products y[r] = sum_k W[r, k] x[k] with ZMM registers: the
// one-row GEMM (decode steps, one image's projection) and attention's
// scores. Bound by how fast W streams, so the aim is many loads in flight:
// four rows at a time share each load of x, two accumulators per row (eight
// FMA chains), 32 values of a row per step. 16-bit rows are short in bytes,
// too short for the hardware prefetcher to ramp up, so the next four rows
// are prefetched as these are read; f32 rows are not (it only competed for
// bandwidth, as on AVX2).
#include <immintrin.h>

#include "kernels.h"
#include "simd.h"

namespace te::cpu::avx512 {

namespace {

struct LoadF32 {
  const float* p;
  __m512 operator()(int64_t i) const { return _mm512_loadu_ps(p + i); }
  __m512 masked(int64_t i, __mmask16 m) const { return _mm512_maskz_loadu_ps(m, p + i); }
  const void* at(int64_t i) const { return p + i; }
  static constexpr bool kPrefetch = false;
  static constexpr int kBytes = 4;
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
};

template <class Load>
inline void prefetch_rows(const Load& load, int64_t o, int64_t ldw) {
  for (int j = 0; j < 4; ++j) _mm_prefetch(static_cast<const char*>(load.at(o + j * ldw)), _MM_HINT_T0);
}

template <class Load>
void gemv_rows(Load load, int64_t ldw, const float* x, int64_t k, int64_t n, float* y) {
  // One cache line of the next rows per 64 bytes of these.
  constexpr int64_t kLine = 64 / Load::kBytes;
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const int64_t o0 = r * ldw, o1 = o0 + ldw, o2 = o1 + ldw, o3 = o2 + ldw;
    const bool ahead = Load::kPrefetch && r + 8 <= n;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
      if (ahead && i % kLine == 0) prefetch_rows(load, o0 + 4 * ldw + i, ldw);
      const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
      a0 = _mm512_fmadd_ps(load(o0 + i), x0, a0);
      a1 = _mm512_fmadd_ps(load(o1 + i), x0, a1);
      a2 = _mm512_fmadd_ps(load(o2 + i), x0, a2);
      a3 = _mm512_fmadd_ps(load(o3 + i), x0, a3);
      b0 = _mm512_fmadd_ps(load(o0 + i + 16), x1, b0);
      b1 = _mm512_fmadd_ps(load(o1 + i + 16), x1, b1);
      b2 = _mm512_fmadd_ps(load(o2 + i + 16), x1, b2);
      b3 = _mm512_fmadd_ps(load(o3 + i + 16), x1, b3);
    }
    for (; i < k; i += 16) {
      const __mmask16 m = tail_mask16(k - i);
      const __m512 x0 = _mm512_maskz_loadu_ps(m, x + i);
      a0 = _mm512_fmadd_ps(load.masked(o0 + i, m), x0, a0);
      a1 = _mm512_fmadd_ps(load.masked(o1 + i, m), x0, a1);
      a2 = _mm512_fmadd_ps(load.masked(o2 + i, m), x0, a2);
      a3 = _mm512_fmadd_ps(load.masked(o3 + i, m), x0, a3);
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0));
    y[r + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    y[r + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
    y[r + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
  }
  for (; r < n; ++r) {
    const int64_t o = r * ldw;
    __m512 a = _mm512_setzero_ps(), b = a;
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
      a = _mm512_fmadd_ps(load(o + i), _mm512_loadu_ps(x + i), a);
      b = _mm512_fmadd_ps(load(o + i + 16), _mm512_loadu_ps(x + i + 16), b);
    }
    for (; i < k; i += 16) {
      const __mmask16 m = tail_mask16(k - i);
      a = _mm512_fmadd_ps(load.masked(o + i, m), _mm512_maskz_loadu_ps(m, x + i), a);
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
  }
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

}  // namespace te::cpu::avx512

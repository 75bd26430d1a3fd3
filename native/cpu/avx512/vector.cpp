#include "../dropout.h"
#include "../isa.h"
#include "kernels.h"
#include "simd.h"

namespace te::cpu::avx512 {

namespace {

template <int32_t A>
inline __m512 activate(__m512 x) {
  if constexpr (A == kActGeluErf) {
    return _mm512_mul_ps(x, phi(x));
  } else if constexpr (A == kActGeluTanh) {
    const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    const __m512 u =
        _mm512_mul_ps(_mm512_set1_ps(0.79788456080286536f), _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
    return _mm512_mul_ps(x, sigmoid(_mm512_add_ps(u, u)));
  } else if constexpr (A == kActQuickGelu) {
    return _mm512_mul_ps(x, sigmoid(_mm512_mul_ps(_mm512_set1_ps(1.702f), x)));
  } else if constexpr (A == kActSilu) {
    return _mm512_mul_ps(x, sigmoid(x));
  } else if constexpr (A == kActRelu) {
    return _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps());
  } else {
    return x;
  }
}

template <int32_t A>
void affine_act_impl(const float* x, const float* scale, const float* shift, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    if (scale) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, scale + i));
    if (shift) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, shift + i));
    _mm512_mask_storeu_ps(y + i, m, activate<A>(v));
  }
}

}  // namespace

void affine_act(const float* x, const float* scale, const float* shift, int32_t act, float* y, int64_t n) {
  switch (act) {
    case kActGeluErf:
      return affine_act_impl<kActGeluErf>(x, scale, shift, y, n);
    case kActGeluTanh:
      return affine_act_impl<kActGeluTanh>(x, scale, shift, y, n);
    case kActQuickGelu:
      return affine_act_impl<kActQuickGelu>(x, scale, shift, y, n);
    case kActSilu:
      return affine_act_impl<kActSilu>(x, scale, shift, y, n);
    case kActRelu:
      return affine_act_impl<kActRelu>(x, scale, shift, y, n);
    default:
      return affine_act_impl<kActNone>(x, scale, shift, y, n);
  }
}

void dropout(const float* x, uint64_t index0, int64_t n, float p, uint64_t seed, bool accumulate, float* y) {
  dropout_run(x, index0, n, p, seed, accumulate, y);
}

float exp_sum(const float* x, float shift, float* y, int64_t n) {
  // As the AVX2 version: x - shift <= 0, flush below ln FLT_MIN to 0.
  if (shift != shift) {
    for (int64_t i = 0; i < n; ++i) y[i] = shift;
    return shift;
  }
  const __m512 s = _mm512_set1_ps(shift), lo = _mm512_set1_ps(-87.33654f), hi = _mm512_set1_ps(88.72283f);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s);
    const __mmask16 keep = m & ~_mm512_cmp_ps_mask(d, lo, _CMP_LT_OQ);
    const __m512 e = _mm512_maskz_mov_ps(keep, exp_in_range(_mm512_min_ps(_mm512_max_ps(d, lo), hi)));
    _mm512_mask_storeu_ps(y + i, m, e);
    acc = _mm512_add_ps(acc, e);
  }
  return _mm512_reduce_add_ps(acc);
}

}  // namespace te::cpu::avx512

#include <algorithm>
#include <cmath>
#include <limits>

#include "../generic/kernels.h"
#include "../dropout.h"
#include "../isa.h"
#include "kernels.h"
#include "simd.h"

namespace te::cpu::avx2 {

namespace {

template <int32_t A>
inline __m256 activate(__m256 x) {
  if constexpr (A == kActGeluErf) {
    return _mm256_mul_ps(x, phi(x));
  } else if constexpr (A == kActGeluTanh) {
    // 0.5 x (1 + tanh(u)) == x * sigmoid(2u).
    const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    const __m256 u =
        _mm256_mul_ps(_mm256_set1_ps(0.79788456080286536f), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
    return _mm256_mul_ps(x, sigmoid(_mm256_add_ps(u, u)));
  } else if constexpr (A == kActQuickGelu) {
    return _mm256_mul_ps(x, sigmoid(_mm256_mul_ps(_mm256_set1_ps(1.702f), x)));
  } else if constexpr (A == kActSilu) {
    return _mm256_mul_ps(x, sigmoid(x));
  } else if constexpr (A == kActRelu) {
    // max(x, 0) with x second would drop NaN; blend keeps it like PyTorch.
    return _mm256_blendv_ps(x, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  } else {
    return x;
  }
}

template <int32_t A>
void affine_act_impl(const float* x, const float* scale, const float* shift, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    if (scale) v = _mm256_mul_ps(v, _mm256_loadu_ps(scale + i));
    if (shift) v = _mm256_add_ps(v, _mm256_loadu_ps(shift + i));
    _mm256_storeu_ps(y + i, activate<A>(v));
  }
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    __m256 v = _mm256_maskload_ps(x + i, m);
    if (scale) v = _mm256_mul_ps(v, _mm256_maskload_ps(scale + i, m));
    if (shift) v = _mm256_add_ps(v, _mm256_maskload_ps(shift + i, m));
    _mm256_maskstore_ps(y + i, m, activate<A>(v));
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

void gelu_erf_backward(const float* a, const float* dy, float* dx, int64_t n) {
  const __m256 inv_sqrt_2pi = _mm256_set1_ps(0.39894228040143268f), mhalf = _mm256_set1_ps(-0.5f);
  auto grad = [&](__m256 x, __m256 g) {
    const __m256 pdf = _mm256_mul_ps(inv_sqrt_2pi, exp(_mm256_mul_ps(mhalf, _mm256_mul_ps(x, x))));
    return _mm256_mul_ps(g, _mm256_fmadd_ps(x, pdf, phi(x)));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dx + i, grad(_mm256_loadu_ps(a + i), _mm256_loadu_ps(dy + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(dx + i, m, grad(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(dy + i, m)));
  }
}

float exp_sum(const float* x, float shift, float* y, int64_t n) {
  // Softmax's exponentials: x - shift <= 0 when shift is the row maximum,
  // so the range checks of exp() reduce to flushing below ln FLT_MIN to 0
  // (masked logits of -inf give exactly 0). A NaN shift poisons the row.
  if (shift != shift) {
    for (int64_t i = 0; i < n; ++i) y[i] = shift;
    return shift;
  }
  const __m256 s = _mm256_set1_ps(shift), lo = _mm256_set1_ps(-87.33654f), hi = _mm256_set1_ps(88.72283f);
  auto e = [&](__m256 v) {
    const __m256 d = _mm256_sub_ps(v, s);
    const __m256 y = exp_in_range(_mm256_min_ps(_mm256_max_ps(d, lo), hi));
    return _mm256_andnot_ps(_mm256_cmp_ps(d, lo, _CMP_LT_OQ), y);
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 e0 = e(_mm256_loadu_ps(x + i)), e1 = e(_mm256_loadu_ps(x + i + 8));
    _mm256_storeu_ps(y + i, e0);
    _mm256_storeu_ps(y + i + 8, e1);
    acc0 = _mm256_add_ps(acc0, e0);
    acc1 = _mm256_add_ps(acc1, e1);
  }
  for (; i < n; i += 8) {
    const __m256i m = tail_mask(n - i);
    // Masked-off lanes load 0 and would add exp(-shift): zero them again.
    const __m256 e0 = _mm256_and_ps(e(_mm256_maskload_ps(x + i, m)), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(y + i, m, e0);
    acc0 = _mm256_add_ps(acc0, e0);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

float sum_sq(const float* x, int64_t n) { return dot(x, x, n); }

float max(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 nan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    m = _mm256_max_ps(m, v);
  }
  float r = hmax(m);
  for (; i < n; ++i) {
    if (x[i] != x[i]) return x[i];
    r = x[i] > r ? x[i] : r;
  }
  if (_mm256_movemask_ps(nan)) return std::numeric_limits<float>::quiet_NaN();
  return r;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

void scale(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = a * x[i];
}

void dropout(const float* x, uint64_t index0, int64_t n, float p, uint64_t seed, bool accumulate, float* y) {
  dropout_run(x, index0, n, p, seed, accumulate, y);
}
}  // namespace te::cpu::avx2

namespace te::cpu::avx2 {

float fma_probe(int64_t iters) {
  // Twelve independent FMA chains in registers: enough to cover the FMA
  // latency on both ports. Written in assembly so the compiler can neither
  // fold nor spill the chains (both happen with intrinsics).
  float out[8];
  const float m = 0.999999f, c = 1e-6f;
#if defined(__GNUC__)
  __asm__ volatile(
      "vbroadcastss %[m], %%ymm0\n"
      "vbroadcastss %[c], %%ymm1\n"
      "vmovaps %%ymm1, %%ymm4\n vmovaps %%ymm1, %%ymm5\n vmovaps %%ymm1, %%ymm6\n vmovaps %%ymm1, %%ymm7\n"
      "vmovaps %%ymm1, %%ymm8\n vmovaps %%ymm1, %%ymm9\n vmovaps %%ymm1, %%ymm10\n vmovaps %%ymm1, %%ymm11\n"
      "vmovaps %%ymm1, %%ymm12\n vmovaps %%ymm1, %%ymm13\n vmovaps %%ymm1, %%ymm14\n vmovaps %%ymm1, %%ymm15\n"
      "test %[n], %[n]\n"
      "jle 2f\n"
      "1:\n"
      "vfmadd213ps %%ymm1, %%ymm0, %%ymm4\n vfmadd213ps %%ymm1, %%ymm0, %%ymm5\n"
      "vfmadd213ps %%ymm1, %%ymm0, %%ymm6\n vfmadd213ps %%ymm1, %%ymm0, %%ymm7\n"
      "vfmadd213ps %%ymm1, %%ymm0, %%ymm8\n vfmadd213ps %%ymm1, %%ymm0, %%ymm9\n"
      "vfmadd213ps %%ymm1, %%ymm0, %%ymm10\n vfmadd213ps %%ymm1, %%ymm0, %%ymm11\n"
      "vfmadd213ps %%ymm1, %%ymm0, %%ymm12\n vfmadd213ps %%ymm1, %%ymm0, %%ymm13\n"
      "vfmadd213ps %%ymm1, %%ymm0, %%ymm14\n vfmadd213ps %%ymm1, %%ymm0, %%ymm15\n"
      "dec %[n]\n"
      "jnz 1b\n"
      "2:\n"
      "vaddps %%ymm4, %%ymm5, %%ymm4\n vaddps %%ymm6, %%ymm7, %%ymm6\n vaddps %%ymm8, %%ymm9, %%ymm8\n"
      "vaddps %%ymm10, %%ymm11, %%ymm10\n vaddps %%ymm12, %%ymm13, %%ymm12\n vaddps %%ymm14, %%ymm15, %%ymm14\n"
      "vaddps %%ymm4, %%ymm6, %%ymm4\n vaddps %%ymm8, %%ymm10, %%ymm8\n vaddps %%ymm12, %%ymm14, %%ymm12\n"
      "vaddps %%ymm4, %%ymm8, %%ymm4\n vaddps %%ymm4, %%ymm12, %%ymm4\n"
      "vmovups %%ymm4, %[out]\n"
      : [n] "+r"(iters), [out] "=m"(out)
      : [m] "m"(m), [c] "m"(c)
      : "ymm0", "ymm1", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9", "ymm10", "ymm11", "ymm12", "ymm13", "ymm14",
        "ymm15", "cc");
#else
  for (int i = 0; i < 8; ++i) out[i] = m * static_cast<float>(iters) + c;
#endif
  return out[0];
}

}  // namespace te::cpu::avx2

namespace te::cpu::avx2 {

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamwConsts& c) {
  const __m256 b1 = _mm256_set1_ps(c.beta1), b2 = _mm256_set1_ps(c.beta2);
  const __m256 c1 = _mm256_set1_ps(c.one_minus_beta1), c2 = _mm256_set1_ps(c.one_minus_beta2);
  const __m256 decay = _mm256_set1_ps(c.decay), step = _mm256_set1_ps(c.step_size);
  const __m256 inv_bc2 = _mm256_set1_ps(1.0f / c.bc2_sqrt), eps = _mm256_set1_ps(c.eps);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gi = _mm256_loadu_ps(g + i);
    const __m256 mi = _mm256_fmadd_ps(b1, _mm256_loadu_ps(m + i), _mm256_mul_ps(c1, gi));
    const __m256 vi = _mm256_fmadd_ps(b2, _mm256_loadu_ps(v + i), _mm256_mul_ps(c2, _mm256_mul_ps(gi, gi)));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 denom = _mm256_fmadd_ps(_mm256_sqrt_ps(vi), inv_bc2, eps);
    const __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay);
    _mm256_storeu_ps(p + i, _mm256_fnmadd_ps(step, _mm256_div_ps(mi, denom), pi));
  }
  if (i < n) generic::adamw(p + i, g + i, m + i, v + i, n - i, c);
}

}  // namespace te::cpu::avx2

namespace te::cpu::avx2 {

namespace {

// The number of rows is a template argument so the accumulators live in
// registers.
template <int ROWS>
void weighted_rows_n(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t n, int64_t d, float* y,
                     int64_t ldy) {
  for (int64_t e0 = 0; e0 < d; e0 += 16) {
    const int64_t w = std::min<int64_t>(16, d - e0);
    const __m256i m0 = tail_mask(std::min<int64_t>(w, 8)), m1 = tail_mask(std::max<int64_t>(0, w - 8));
    __m256 acc[ROWS][2];
    for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const float* vj = v + j * ldv + e0;
      const __m256 v0 = _mm256_maskload_ps(vj, m0), v1 = _mm256_maskload_ps(vj + 8, m1);
      for (int r = 0; r < ROWS; ++r) {
        const __m256 pr = _mm256_broadcast_ss(p + r * ldp + j);
        acc[r][0] = _mm256_fmadd_ps(pr, v0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(pr, v1, acc[r][1]);
      }
    }
    for (int r = 0; r < ROWS; ++r) {
      _mm256_maskstore_ps(y + r * ldy + e0, m0, acc[r][0]);
      _mm256_maskstore_ps(y + r * ldy + e0 + 8, m1, acc[r][1]);
    }
  }
}

}  // namespace

// 16 columns at a time for up to 4 rows: 8 accumulators; each row of v is
// loaded once per column block and used for every weight row.
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

}  // namespace te::cpu::avx2

#include <cmath>
#include <limits>

#include "../dropout.h"
#include "../isa.h"
#include "kernels.h"

namespace te::cpu::generic {

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;

// Phi(x) through erfc so that the negative tail keeps its relative accuracy.
inline float phi(float x) { return 0.5f * std::erfc(-x * kInvSqrt2); }

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

inline float activate(int32_t act, float x) {
  switch (act) {
    case kActGeluErf:
      return x * phi(x);
    case kActGeluTanh: {
      // 0.5 x (1 + tanh(u)) == x * sigmoid(2u): no cancellation near u = 0.
      const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
      return x * sigmoid(2.0f * u);
    }
    case kActQuickGelu:
      return x * sigmoid(1.702f * x);
    case kActSilu:
      return x * sigmoid(x);
    case kActRelu:
      return x < 0.0f ? 0.0f : x;  // NaN passes through, as in PyTorch
    default:
      return x;
  }
}

}  // namespace

void affine_act(const float* x, const float* scale, const float* shift, int32_t act, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i];
    if (scale) v *= scale[i];
    if (shift) v += shift[i];
    y[i] = activate(act, v);
  }
}

void gelu_erf_backward(const float* a, const float* dy, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = a[i];
    const float pdf = kInvSqrt2Pi * std::exp(-0.5f * x * x);
    dx[i] = dy[i] * (phi(x) + x * pdf);
  }
}

float exp_sum(const float* x, float shift, float* y, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - shift);
    s += y[i];
  }
  return s;
}

float dot(const float* a, const float* b, int64_t n) {
  float s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) s[l] += a[i + l] * b[i + l];
  float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i) t += a[i] * b[i];
  return t;
}

float sum_sq(const float* x, int64_t n) { return dot(x, x, n); }

float max(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] != x[i]) return x[i];  // NaN wins, so softmax of NaN stays NaN
    m = x[i] > m ? x[i] : m;
  }
  return m;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void scale(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i];
}

void dropout(const float* x, uint64_t index0, int64_t n, float p, uint64_t seed, bool accumulate, float* y) {
  dropout_run(x, index0, n, p, seed, accumulate, y);
}
}  // namespace te::cpu::generic

namespace te::cpu::generic {

float fma_probe(int64_t iters) {
  // Twelve independent 4-wide multiply-add chains: as much as the baseline
  // vector unit (SSE2) can keep in flight, which is what these kernels use.
  float a[12][4];
  for (int i = 0; i < 12; ++i)
    for (int l = 0; l < 4; ++l) a[i][l] = 0.001f * static_cast<float>(i + l);
  const float m = 0.999999f, c = 1e-6f;
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i)
      for (int l = 0; l < 4; ++l) a[i][l] = a[i][l] * m + c;
  float s = 0.0f;
  for (int i = 0; i < 12; ++i)
    for (int l = 0; l < 4; ++l) s += a[i][l];
  return s;
}

}  // namespace te::cpu::generic

namespace te::cpu::generic {

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamwConsts& c) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = c.beta1 * m[i] + c.one_minus_beta1 * gi;
    const float vi = c.beta2 * v[i] + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * c.decay - c.step_size * (mi / (std::sqrt(vi) / c.bc2_sqrt + c.eps));
  }
}

}  // namespace te::cpu::generic

namespace te::cpu::generic {

void weighted_rows(const float* p, int64_t ldp, int rows, const float* v, int64_t ldv, int64_t n, int64_t d, float* y,
                   int64_t ldy) {
  for (int r = 0; r < rows; ++r) {
    float* yr = y + r * ldy;
    for (int64_t e = 0; e < d; ++e) yr[e] = 0.0f;
    for (int64_t j = 0; j < n; ++j) axpy(p[r * ldp + j], v + j * ldv, yr, d);
  }
}

}  // namespace te::cpu::generic

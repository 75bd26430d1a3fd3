#include "norm.h"

#include <cmath>

#include "isa.h"
#include "rows.h"

namespace te::cpu {

namespace {

// Mean of a row in double: rows of a few thousand f32 values, summed once.
double row_mean(const float* x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return n ? s / static_cast<double>(n) : 0.0;
}

}  // namespace

void layer_norm(const Rows& x, const float* weight, const float* bias, float eps, const Rows& y) {
  const Isa& is = isa();
  const int64_t n = x.cols;
  for_rows(x.rows, n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = x.row<float>(r);
      float* out = y.row<float>(r);
      // Two passes (mean, then the centred sum of squares): no cancellation
      // when the mean is large against the spread.
      const float mean = static_cast<float>(row_mean(in, n));
      for (int64_t i = 0; i < n; ++i) out[i] = in[i] - mean;
      const float var = n ? is.sum_sq(out, n) / static_cast<float>(n) : 0.0f;
      is.scale(1.0f / std::sqrt(var + eps), out, out, n);
      if (weight || bias) is.affine_act(out, weight, bias, kActNone, out, n);
    }
  });
}

void rms_norm(const Rows& x, const float* weight, float eps, const Rows& y) {
  const Isa& is = isa();
  const int64_t n = x.cols;
  for_rows(x.rows, n, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = x.row<float>(r);
      float* out = y.row<float>(r);
      const float ms = n ? is.sum_sq(in, n) / static_cast<float>(n) : 0.0f;
      is.scale(1.0f / std::sqrt(ms + eps), in, out, n);
      if (weight) is.affine_act(out, weight, nullptr, kActNone, out, n);
    }
  });
}

}  // namespace te::cpu

#include "activation.h"

#include "isa.h"
#include "rows.h"

namespace te::cpu {

void activation(const Rows& x, int32_t act, const Rows& y) {
  const Isa& is = isa();
  for_rows(x.rows, x.cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) is.affine_act(x.row<float>(r), nullptr, nullptr, act, y.row<float>(r), x.cols);
  });
}

void swiglu(const Rows& gate, const Rows& up, const Rows& y) {
  const Isa& is = isa();
  for_rows(gate.rows, gate.cols, [&](int64_t r0, int64_t r1) {
    // Through a small buffer, so y may be the very view of gate or of up.
    float tmp[256];
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = gate.row<float>(r);
      const float* u = up.row<float>(r);
      float* out = y.row<float>(r);
      for (int64_t i0 = 0; i0 < gate.cols; i0 += 256) {
        const int64_t n = std::min<int64_t>(256, gate.cols - i0);
        is.affine_act(g + i0, nullptr, nullptr, kActSilu, tmp, n);
        for (int64_t i = 0; i < n; ++i) out[i0 + i] = tmp[i] * u[i0 + i];
      }
    }
  });
}

void softmax(const Rows& x, float scale, const Rows& y) {
  const Isa& is = isa();
  for_rows(x.rows, x.cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* out = y.row<float>(r);
      is.scale(scale, x.row<float>(r), out, x.cols);
      // Shift by the row's maximum so no exponent overflows.
      const float m = is.max(out, x.cols);
      const float s = is.exp_sum(out, m, out, x.cols);
      is.scale(1.0f / s, out, out, x.cols);
    }
  });
}

void add(const float* a, const float* b, int64_t n, int64_t b_len, float alpha, float* y) {
  const Isa& is = isa();
  const int64_t reps = b_len ? n / b_len : 0;
  for_rows(reps, b_len, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* ar = a + r * b_len;
      float* yr = y + r * b_len;
      if (yr != ar) std::copy(ar, ar + b_len, yr);
      is.axpy(alpha, b, yr, b_len);
    }
  });
}

void scale(const float* x, int64_t n, float alpha, float* y) {
  const Isa& is = isa();
  const int64_t chunk = int64_t{1} << 15;
  for_rows((n + chunk - 1) / chunk, chunk, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i = c * chunk;
      is.scale(alpha, x + i, y + i, std::min(chunk, n - i));
    }
  });
}

}  // namespace te::cpu

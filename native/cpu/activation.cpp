#include "activation.h"

#include <cmath>

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

void dropout_apply(const float* x, int64_t n, float p, uint64_t seed, bool accumulate, float* y) {
  const Isa& is = isa();
  const int64_t chunk = int64_t{1} << 14;
  for_rows((n + chunk - 1) / chunk, chunk, [&](int64_t c0, int64_t c1) {
    const int64_t i = c0 * chunk;
    is.dropout(x + i, static_cast<uint64_t>(i), std::min(n, c1 * chunk) - i, p, seed, accumulate, y + i);
  });
}

}  // namespace te::cpu

namespace te::cpu {

namespace {

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// d/dv of each activation, in double (the backward of a training step, not its hot path).
double act_grad(int32_t act, double v) {
  switch (act) {
    case kActGeluTanh: {
      const double k = 0.7978845608028654;  // sqrt(2/pi)
      const double t = std::tanh(k * (v + 0.044715 * v * v * v));
      return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * v * v);
    }
    case kActQuickGelu: {
      const double s = sigmoid(1.702 * v);
      return s + 1.702 * v * s * (1.0 - s);
    }
    case kActSilu: {
      const double s = sigmoid(v);
      return s * (1.0 + v * (1.0 - s));
    }
    case kActRelu:
      return v > 0.0 ? 1.0 : 0.0;
    default:
      return 1.0;
  }
}

}  // namespace

void activation_backward(const Rows& x, const Rows& dy, int32_t act, const Rows& dx) {
  const Isa& is = isa();
  for_rows(x.rows, x.cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* a = x.row<float>(r);
      const float* g = dy.row<float>(r);
      float* out = dx.row<float>(r);
      if (act == kActGeluErf) {
        is.gelu_erf_backward(a, g, out, x.cols);
        continue;
      }
      for (int64_t i = 0; i < x.cols; ++i) out[i] = static_cast<float>(g[i] * act_grad(act, a[i]));
    }
  });
}

// y = silu(g) u:  dg = dy u silu'(g),  du = dy silu(g), with s = sigmoid(g) = 1 / (1 + exp(-g)) from the ISA's
// exponential (in float: this runs over every FFN activation of a training step).
void swiglu_backward(const Rows& gate, const Rows& up, const Rows& dy, const Rows& dgate, const Rows& dup) {
  const Isa& is = isa();
  for_rows(gate.rows, gate.cols, [&](int64_t r0, int64_t r1) {
    float e[256];
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = gate.row<float>(r);
      const float* u = up.row<float>(r);
      const float* d = dy.row<float>(r);
      float* dg = dgate.row<float>(r);
      float* du = dup.row<float>(r);
      for (int64_t i0 = 0; i0 < gate.cols; i0 += 256) {
        const int64_t n = std::min<int64_t>(256, gate.cols - i0);
        is.scale(-1.0f, g + i0, e, n);
        is.exp_sum(e, 0.0f, e, n);
        for (int64_t i = 0; i < n; ++i) {
          const float gi = g[i0 + i], s = 1.0f / (1.0f + e[i]);
          dg[i0 + i] = d[i0 + i] * u[i0 + i] * s * (1.0f + gi * (1.0f - s));
          du[i0 + i] = d[i0 + i] * gi * s;
        }
      }
    }
  });
}

}  // namespace te::cpu

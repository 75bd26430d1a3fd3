// Image resizing that reproduces PIL's Image.resize(size, BICUBIC | BILINEAR)
// on 8-bit RGB, bit for bit, because the released projectors were trained on
// features of images PIL resized. A separable convolution: the horizontal
// pass first, over the rows the vertical pass will read, each pass rounded
// back to 8 bits; weights in 22-bit fixed point, computed in double exactly
// as the algorithm's description gives them (lib's JavaScript reference in
// test/helpers/resample_reference.ts follows the same steps). Fused
// multiply-adds would change the weights' last bits, so they are off here.
#include "resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/threadpool.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#define TE_NO_CONTRACT
#elif defined(__GNUC__)
#define TE_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define TE_NO_CONTRACT
#endif

namespace te::cpu {

namespace {

constexpr int kPrecisionBits = 22;  // 32 - 8 (pixel) - 2 (headroom)
constexpr double kOne = static_cast<double>(int64_t{1} << kPrecisionBits);
constexpr int64_t kHalf = int64_t{1} << (kPrecisionBits - 1);

// Keys' cubic with a = -0.5 (support 2), as PIL's BICUBIC.
TE_NO_CONTRACT double bicubic(double x) {
  const double a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

double triangle(double x) {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

struct Coefficients {
  int64_t taps = 0;
  std::vector<int64_t> start, count;
  std::vector<int32_t> weights;  // taps per output sample
};

// Output sample i is centred on input coordinate (i + 0.5) * scale; when shrinking, the kernel widens by the
// scale so every input pixel contributes (antialiasing).
TE_NO_CONTRACT Coefficients coefficients(int64_t in_size, int64_t out_size, int32_t filter) {
  const double base = filter == kBicubic ? 2.0 : 1.0;
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double stretch = std::max(scale, 1.0);
  const double support = base * stretch;
  Coefficients c;
  c.taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  c.start.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(out_size * c.taps, 0);
  std::vector<double> w(c.taps);
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = (static_cast<double>(i) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(std::trunc(center - support + 0.5)), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(std::trunc(center + support + 0.5)), in_size);
    const int64_t n = hi - lo;
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) {
      const double x = (static_cast<double>(k + lo) - center + 0.5) / stretch;
      w[k] = filter == kBicubic ? bicubic(x) : triangle(x);
      sum += w[k];
    }
    for (int64_t k = 0; k < n; ++k) {
      const double v = sum != 0 ? w[k] / sum : w[k];
      // Round half away from zero, as a C cast of v * 2^22 +- 0.5 does.
      c.weights[i * c.taps + k] =
          static_cast<int32_t>(v < 0 ? std::trunc(-0.5 + v * kOne) : std::trunc(0.5 + v * kOne));
    }
    c.start[i] = lo;
    c.count[i] = n;
  }
  return c;
}

// A fixed-point sum back to 8 bits (sums are exact: |sum| < 255 * sum|w| * 2^22 < 2^31).
inline uint8_t clip8(int64_t acc) {
  if (acc <= 0) return 0;
  if (acc >= (int64_t{256} << kPrecisionBits)) return 255;
  return static_cast<uint8_t>(acc >> kPrecisionBits);
}

// Rows [y0, y1) of src (width w) resized along x into out (width out_w).
void horizontal(const uint8_t* src, int64_t w, int64_t y0, int64_t y1, const Coefficients& c, int64_t out_w,
                uint8_t* out) {
  parallel_for(y1 - y0, [&](int64_t t, int) {
    const uint8_t* row = src + (y0 + t) * w * 3;
    uint8_t* o = out + t * out_w * 3;
    for (int64_t x = 0; x < out_w; ++x) {
      const int32_t* wk = &c.weights[x * c.taps];
      const uint8_t* p = row + c.start[x] * 3;
      int64_t r = kHalf, g = kHalf, b = kHalf;
      for (int64_t k = 0; k < c.count[x]; ++k, p += 3) {
        r += static_cast<int64_t>(p[0]) * wk[k];
        g += static_cast<int64_t>(p[1]) * wk[k];
        b += static_cast<int64_t>(p[2]) * wk[k];
      }
      o[x * 3] = clip8(r);
      o[x * 3 + 1] = clip8(g);
      o[x * 3 + 2] = clip8(b);
    }
  });
}

// src (width w, whose first row is input row `offset`) resized along y into out_h rows.
void vertical(const uint8_t* src, int64_t w, int64_t offset, const Coefficients& c, int64_t out_h, uint8_t* out) {
  const int64_t stride = w * 3;
  parallel_for(out_h, [&](int64_t y, int) {
    std::vector<int64_t> acc(stride, kHalf);
    const int32_t* wk = &c.weights[y * c.taps];
    for (int64_t k = 0; k < c.count[y]; ++k) {
      const uint8_t* row = src + (c.start[y] - offset + k) * stride;
      for (int64_t x = 0; x < stride; ++x) acc[x] += static_cast<int64_t>(row[x]) * wk[k];
    }
    uint8_t* o = out + y * stride;
    for (int64_t x = 0; x < stride; ++x) o[x] = clip8(acc[x]);
  });
}

}  // namespace

void resample(const te_tensor& src, int32_t filter, const te_tensor& dst) {
  const int64_t h = src.shape[0], w = src.shape[1];
  const int64_t out_h = dst.shape[0], out_w = dst.shape[1];
  const auto* in = static_cast<const uint8_t*>(src.data);
  auto* out = static_cast<uint8_t*>(dst.data);
  const bool need_x = out_w != w, need_y = out_h != h;
  if (!need_x && !need_y) {
    std::memcpy(out, in, static_cast<size_t>(h * w * 3));
    return;
  }
  const Coefficients cy = coefficients(h, out_h, filter);
  if (!need_x) {
    vertical(in, w, 0, cy, out_h, out);
    return;
  }
  const Coefficients cx = coefficients(w, out_w, filter);
  if (!need_y) {
    horizontal(in, w, 0, h, cx, out_w, out);
    return;
  }
  // Only the rows the vertical pass will read go through the horizontal one.
  const int64_t y0 = cy.start[0];
  const int64_t y1 = cy.start[out_h - 1] + cy.count[out_h - 1];
  std::vector<uint8_t> tmp(static_cast<size_t>((y1 - y0) * out_w * 3));
  horizontal(in, w, y0, y1, cx, out_w, tmp.data());
  vertical(tmp.data(), out_w, y0, cy, out_h, out);
}

}  // namespace te::cpu

#include "rope.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "../core/threadpool.h"

namespace te::cpu {

void rope(const te_tensor& x, const te_tensor* positions, int64_t offset, int32_t rotary_dim, float theta,
          const te_tensor& y) {
  const int64_t B = x.shape[0], S = x.shape[1], H = x.shape[2], D = x.shape[3];
  const int half = rotary_dim / 2;
  // Frequencies and angles in f32, as Hugging Face forms them (the models
  // were trained with those roundings); cos and sin of each angle exact.
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i)
    inv_freq[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(rotary_dim));
  auto position = [&](int64_t b, int64_t s) -> int64_t {
    if (!positions) return offset + s;
    const int64_t idx =
        positions->ndim == 2 ? b * positions->strides[0] + s * positions->strides[1] : s * positions->strides[0];
    return positions->dtype == TE_I64 ? static_cast<const int64_t*>(positions->data)[idx]
                                      : static_cast<const int32_t*>(positions->data)[idx];
  };
  const size_t es = sizeof(float);
  parallel_for(B * S, [&](int64_t t, int) {
    const int64_t b = t / S, s = t % S;
    const float p = static_cast<float>(position(b, s));
    std::vector<float> c(half), sn(half);
    for (int i = 0; i < half; ++i) {
      const double angle = static_cast<double>(p * inv_freq[i]);
      c[i] = static_cast<float>(std::cos(angle));
      sn[i] = static_cast<float>(std::sin(angle));
    }
    for (int64_t h = 0; h < H; ++h) {
      const float* in = static_cast<const float*>(x.data) + b * x.strides[0] + s * x.strides[1] + h * x.strides[2];
      float* out = static_cast<float*>(y.data) + b * y.strides[0] + s * y.strides[1] + h * y.strides[2];
      // rotate_half: pairs (i, i + half); read both before writing (in place).
      for (int i = 0; i < half; ++i) {
        const float x1 = in[i], x2 = in[i + half];
        out[i] = x1 * c[i] - x2 * sn[i];
        out[i + half] = x2 * c[i] + x1 * sn[i];
      }
      if (out != in && D > rotary_dim) std::memcpy(out + rotary_dim, in + rotary_dim, (D - rotary_dim) * es);
    }
  });
}

}  // namespace te::cpu

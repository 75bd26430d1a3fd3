#include "rope.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "../core/threadpool.h"

namespace te::cpu {

namespace {

// The cos and sin of positions offset..offset+S-1 times each frequency, half values per position. Frequencies
// and angles in f32, as Hugging Face forms them (the models were trained with those roundings); cos and sin of
// each angle exact.
struct RopeTable {
  int64_t offset, S;
  int32_t rotary_dim;
  float theta;
  std::vector<float> cos, sin;

  bool fits(int64_t o, int64_t s, int32_t rd, float th) const {
    return offset == o && S == s && rotary_dim == rd && theta == th;
  }
};

std::vector<float> inv_freqs(int32_t rotary_dim, float theta) {
  std::vector<float> f(rotary_dim / 2);
  for (size_t i = 0; i < f.size(); ++i)
    f[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(rotary_dim));
  return f;
}

void cos_sin(int64_t position, const std::vector<float>& inv_freq, float* c, float* sn) {
  const float p = static_cast<float>(position);
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const double angle = static_cast<double>(p * inv_freq[i]);
    c[i] = static_cast<float>(std::cos(angle));
    sn[i] = static_cast<float>(std::sin(angle));
  }
}

std::shared_ptr<const RopeTable> make_table(int64_t offset, int64_t S, int32_t rotary_dim, float theta) {
  const int half = rotary_dim / 2;
  const std::vector<float> inv_freq = inv_freqs(rotary_dim, theta);
  auto t = std::make_shared<RopeTable>(RopeTable{offset, S, rotary_dim, theta, {}, {}});
  t->cos.resize(static_cast<size_t>(S * half));
  t->sin.resize(static_cast<size_t>(S * half));
  parallel_for(
      S, [&](int64_t s, int) { cos_sin(offset + s, inv_freq, t->cos.data() + s * half, t->sin.data() + s * half); });
  return t;
}

// A decoder's forward rotates q and k in every layer at the same positions: the table of its first call serves
// the other 2 x layers - 1 (in a 512-token prefill of 16 layers, 32 calls each took about 0.3 ms of sin and cos).
std::shared_ptr<const RopeTable> table_for(int64_t offset, int64_t S, int32_t rotary_dim, float theta) {
  static std::mutex mu;
  static std::shared_ptr<const RopeTable> last;
  {
    std::lock_guard<std::mutex> lk(mu);
    if (last && last->fits(offset, S, rotary_dim, theta)) return last;
  }
  auto t = make_table(offset, S, rotary_dim, theta);
  // Kept only while small (8192 positions of head dim 128): a one-off very long input's table is not held.
  constexpr int64_t kKeepValues = int64_t{1} << 19;
  if (S * (rotary_dim / 2) > kKeepValues) return t;
  std::lock_guard<std::mutex> lk(mu);
  last = t;
  return t;
}

// Rotates pairs (i, i + half) of one head's row by the position's angles; reads both before writing (in place).
void rotate(const float* in, const float* c, const float* sn, int half, int64_t D, int32_t rotary_dim, float* out) {
  for (int i = 0; i < half; ++i) {
    const float x1 = in[i], x2 = in[i + half];
    out[i] = x1 * c[i] - x2 * sn[i];
    out[i + half] = x2 * c[i] + x1 * sn[i];
  }
  if (out != in && D > rotary_dim) std::memcpy(out + rotary_dim, in + rotary_dim, (D - rotary_dim) * sizeof(float));
}

}  // namespace

void rope(const te_tensor& x, const te_tensor* positions, int64_t offset, int32_t rotary_dim, float theta,
          const te_tensor& y) {
  const int64_t B = x.shape[0], S = x.shape[1], H = x.shape[2], D = x.shape[3];
  const int half = rotary_dim / 2;
  auto head = [&](int64_t b, int64_t s, int64_t h) {
    const float* in = static_cast<const float*>(x.data) + b * x.strides[0] + s * x.strides[1] + h * x.strides[2];
    float* out = static_cast<float*>(y.data) + b * y.strides[0] + s * y.strides[1] + h * y.strides[2];
    return std::pair<const float*, float*>(in, out);
  };
  if (!positions) {
    const auto t = table_for(offset, S, rotary_dim, theta);
    parallel_for(B * S, [&](int64_t task, int) {
      const int64_t b = task / S, s = task % S;
      for (int64_t h = 0; h < H; ++h) {
        const auto [in, out] = head(b, s, h);
        rotate(in, t->cos.data() + s * half, t->sin.data() + s * half, half, D, rotary_dim, out);
      }
    });
    return;
  }
  // Explicit positions (any order, per batch row): each position's angles on its own.
  const std::vector<float> inv_freq = inv_freqs(rotary_dim, theta);
  parallel_for(B * S, [&](int64_t task, int) {
    const int64_t b = task / S, s = task % S;
    const int64_t idx =
        positions->ndim == 2 ? b * positions->strides[0] + s * positions->strides[1] : s * positions->strides[0];
    const int64_t pos = positions->dtype == TE_I64 ? static_cast<const int64_t*>(positions->data)[idx]
                                                   : static_cast<const int32_t*>(positions->data)[idx];
    std::vector<float> c(half), sn(half);
    cos_sin(pos, inv_freq, c.data(), sn.data());
    for (int64_t h = 0; h < H; ++h) {
      const auto [in, out] = head(b, s, h);
      rotate(in, c.data(), sn.data(), half, D, rotary_dim, out);
    }
  });
}

}  // namespace te::cpu

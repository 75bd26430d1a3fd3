#include "optim.h"

#include <algorithm>
#include <cmath>

#include "../core/threadpool.h"

namespace te::cpu {

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamW& o) {
  // As torch.optim.AdamW (1.13, single-tensor path): decay first, then the
  // moments, then p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps).
  const double bc1 = 1.0 - std::pow(static_cast<double>(o.beta1), static_cast<double>(o.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(o.beta2), static_cast<double>(o.step));
  const float step_size = static_cast<float>(o.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay = 1.0f - o.lr * o.weight_decay;
  const float b1 = o.beta1, b2 = o.beta2, c1 = 1.0f - o.beta1, c2 = 1.0f - o.beta2, eps = o.eps;
  const int64_t chunk = int64_t{1} << 15;
  parallel_for((n + chunk - 1) / chunk, [&](int64_t t, int) {
    const int64_t i0 = t * chunk, i1 = std::min(n, i0 + chunk);
    for (int64_t i = i0; i < i1; ++i) {
      const float gi = g[i];
      const float mi = b1 * m[i] + c1 * gi;
      const float vi = b2 * v[i] + c2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - step_size * (mi / (std::sqrt(vi) / bc2_sqrt + eps));
    }
  });
}

}  // namespace te::cpu

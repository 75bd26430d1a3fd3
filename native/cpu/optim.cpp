#include "optim.h"

#include <algorithm>
#include <cmath>

#include "../core/threadpool.h"
#include "isa.h"

namespace te::cpu {

void adamw(float* p, const float* g, float* m, float* v, int64_t n, const AdamW& o) {
  // As torch.optim.AdamW (1.13, single-tensor path): decay first, then the
  // moments, then p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps).
  const double bc1 = 1.0 - std::pow(static_cast<double>(o.beta1), static_cast<double>(o.step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(o.beta2), static_cast<double>(o.step));
  const AdamwConsts c{1.0f - o.lr * o.weight_decay,
                      o.beta1,
                      o.beta2,
                      1.0f - o.beta1,
                      1.0f - o.beta2,
                      static_cast<float>(o.lr / bc1),
                      static_cast<float>(std::sqrt(bc2)),
                      o.eps};
  const Isa& is = isa();
  const int64_t chunk = int64_t{1} << 15;
  parallel_for((n + chunk - 1) / chunk, [&](int64_t t, int) {
    const int64_t i0 = t * chunk, i1 = std::min(n, i0 + chunk);
    is.adamw(p + i0, g + i0, m + i0, v + i0, i1 - i0, c);
  });
}

}  // namespace te::cpu

#include "gemm_blocking.h"

#include <algorithm>

#include "../core/cpu_features.h"

namespace te::cpu {

GemmBlocking gemm_blocking(int mr, int nr) {
  const CpuCaches& cs = cpu_caches();
  constexpr int64_t kStepBytes = 4;
  // Two thirds of L1 for the B panel that every tile of a block reuses; the
  // rest for the A micro-panel streaming past and the C tile. Measured on Zen
  // 5 (48 KB): 256 steps of a 32-wide panel, 32 KB.
  int64_t kc = cs.l1d * 2 / 3 / (nr * kStepBytes);
  kc = std::clamp<int64_t>(kc / 16 * 16, 64, 512);
  // About 30% of L2 for the A block, re-read from there for every B panel;
  // the rest for the B panels on their way to L1. On Zen 5 (1 MB) 300 rows
  // beat 144 by a few percent on ViT-sized products.
  int64_t mc = cs.l2 * 3 / 10 / (kc * kStepBytes);
  mc = std::max<int64_t>(mc / mr, 4) * mr;
  return {kc, mc};
}

}  // namespace te::cpu

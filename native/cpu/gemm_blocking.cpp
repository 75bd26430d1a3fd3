#include "gemm_blocking.h"

#include <algorithm>

#include "tinyemo.h"

#if defined(__linux__)
#include <unistd.h>
#endif

namespace te::cpu {

namespace {

// Conservative guesses (Skylake-X's L1, Zen 3's L2) where the OS does not say.
constexpr int64_t kDefaultL1 = 32 * 1024, kDefaultL2 = 512 * 1024;

CacheSizes ask_os() {
  CacheSizes s{kDefaultL1, kDefaultL2, false};
#if defined(__linux__) && defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  // A VM may report nothing, or nonsense: keep what is plausible for one core.
  if (l1 >= 16 * 1024 && l1 <= 256 * 1024 && l2 >= 128 * 1024 && l2 <= 8 * 1024 * 1024) {
    s = {l1, l2, true};
  }
#endif
  return s;
}

}  // namespace

const CacheSizes& cache_sizes() {
  static const CacheSizes s = ask_os();
  return s;
}

GemmBlocking gemm_blocking(int mr, int nr, int64_t step_bytes) {
  const CacheSizes& cs = cache_sizes();
  // Two thirds of L1 for the B panel that every tile of a block reuses; the
  // rest for the A micro-panel streaming past and the C tile. Measured on Zen
  // 5 (48 KB): 256 steps of a 32-wide panel, 32 KB.
  int64_t kc = cs.l1d * 2 / 3 / (nr * step_bytes);
  kc = std::clamp<int64_t>(kc / 16 * 16, 64, 512);
  // About 30% of L2 for the A block, re-read from there for every B panel;
  // the rest for the B panels on their way to L1. On Zen 5 (1 MB) 300 rows
  // beat 144 by a few percent on ViT-sized products.
  int64_t mc = cs.l2 * 3 / 10 / (kc * step_bytes);
  mc = std::max<int64_t>(mc / mr, 4) * mr;
  return {kc, mc};
}

}  // namespace te::cpu

extern "C" TE_API int32_t te_cpu_cache_sizes(int64_t* l1d, int64_t* l2) {
  const te::cpu::CacheSizes& s = te::cpu::cache_sizes();
  if (l1d) *l1d = s.l1d;
  if (l2) *l2 = s.l2;
  return s.reported ? 1 : 0;
}

// What the CPU can run, asked once (cpuid + the OS's saved vector state),
// and its cache sizes (the OS's report).
#pragma once

#include <cstdint>
#include <string>

namespace te {

struct CpuFeatures {
  bool sse2 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false;
  bool avx512bf16 = false;  // vdpbf16ps: bf16 pairs multiplied and summed into f32 lanes
  bool neon = false;
};

const CpuFeatures& cpu_features();

// Per-core cache sizes in bytes, which the GEMMs size their blocks from.
struct CpuCaches {
  int64_t l1d, l2;
  bool reported;  // false: the OS said nothing plausible, and these are defaults (32 KB, 512 KB)
};

const CpuCaches& cpu_caches();
std::string cpu_features_string();

}  // namespace te

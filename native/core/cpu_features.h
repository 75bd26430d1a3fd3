// What the CPU can run, asked once (cpuid + the OS's saved vector state).
#pragma once

#include <string>

namespace te {

struct CpuFeatures {
  bool sse2 = false, avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false;
  bool avx512bf16 = false;  // vdpbf16ps: bf16 pairs multiplied and summed into f32 lanes
  bool neon = false;
};

const CpuFeatures& cpu_features();
std::string cpu_features_string();

}  // namespace te

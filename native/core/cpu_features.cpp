#include "cpu_features.h"

#include <cstdint>

#include "tinyemo.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define TE_X86_GNU 1
#elif defined(_M_X64)
#include <intrin.h>
#define TE_X86_MSVC 1
#endif

#if defined(__linux__)
#include <unistd.h>
#endif

namespace te {

namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(TE_X86_GNU) || defined(TE_X86_MSVC)
  unsigned a = 0, b = 0, c = 0, d = 0;
  unsigned b7 = 0;
  unsigned a7_1 = 0;  // leaf 7, sub-leaf 1: EAX
  unsigned max_leaf = 0;
#if defined(TE_X86_GNU)
  max_leaf = __get_cpuid_max(0, nullptr);
  __cpuid(1, a, b, c, d);
  if (max_leaf >= 7) {
    unsigned a7, c7, d7;
    __cpuid_count(7, 0, a7, b7, c7, d7);
    if (a7 >= 1) {
      unsigned b71, c71, d71;
      __cpuid_count(7, 1, a7_1, b71, c71, d71);
    }
  }
#else
  int r[4];
  __cpuid(r, 0);
  max_leaf = r[0];
  __cpuid(r, 1);
  c = r[2];
  d = r[3];
  if (max_leaf >= 7) {
    __cpuidex(r, 7, 0);
    b7 = r[1];
    if (r[0] >= 1) {
      __cpuidex(r, 7, 1);
      a7_1 = r[0];
    }
  }
#endif
  f.sse2 = (d >> 26) & 1;
  const bool osxsave = (c >> 27) & 1;
  uint64_t xcr0 = 0;
  if (osxsave) {
#if defined(TE_X86_GNU)
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<uint64_t>(hi) << 32) | lo;
#else
    xcr0 = _xgetbv(0);
#endif
  }
  // The OS must save the YMM (bits 1,2) / ZMM (bits 5,6,7) state, or the
  // instructions exist but their registers get clobbered on context switch.
  const bool ymm_os = (xcr0 & 0x6) == 0x6;
  const bool zmm_os = (xcr0 & 0xE6) == 0xE6;
  f.avx = ymm_os && ((c >> 28) & 1);
  f.fma = f.avx && ((c >> 12) & 1);
  f.f16c = f.avx && ((c >> 29) & 1);
  f.avx2 = f.avx && ((b7 >> 5) & 1);
  f.avx512f = zmm_os && ((b7 >> 16) & 1);
  f.avx512dq = f.avx512f && ((b7 >> 17) & 1);
  f.avx512bw = f.avx512f && ((b7 >> 30) & 1);
  f.avx512vl = f.avx512f && ((b7 >> 31) & 1);
  f.avx512bf16 = f.avx512f && ((a7_1 >> 5) & 1);
#elif defined(__aarch64__)
  f.neon = true;
#endif
  return f;
}

// Conservative guesses (Skylake-X's L1, Zen 3's L2) where the OS does not say.
CpuCaches ask_caches() {
  CpuCaches s{32 * 1024, 512 * 1024, false};
#if defined(__linux__) && defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  // A VM may report nothing, or nonsense: keep what is plausible for one core.
  if (l1 >= 16 * 1024 && l1 <= 256 * 1024 && l2 >= 128 * 1024 && l2 <= 8 * 1024 * 1024) s = {l1, l2, true};
#endif
  return s;
}

}  // namespace

const CpuCaches& cpu_caches() {
  static const CpuCaches s = ask_caches();
  return s;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::string cpu_features_string() {
  const CpuFeatures& f = cpu_features();
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(f.sse2, "sse2");
  add(f.avx, "avx");
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512dq, "avx512dq");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512bf16, "avx512_bf16");
  add(f.neon, "neon");
  return s;
}

}  // namespace te

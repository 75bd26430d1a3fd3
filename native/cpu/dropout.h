// Dropout masks as a pure function of (seed, element index): the training
// forward and the backward regenerate the same mask instead of storing it,
// and the result does not depend on thread count or task order.
#pragma once

#include <cstdint>

// Also compiled into the CUDA kernels, which must draw the same masks.
#if defined(__CUDACC__)
#define TE_HOST_DEVICE __host__ __device__
#else
#define TE_HOST_DEVICE
#endif

namespace te::cpu {

// A 64-bit finaliser (xorshift-multiply rounds) applied to seed and index.
TE_HOST_DEVICE inline uint64_t mix64(uint64_t z) {
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ULL;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return z;
}

// Uniform in [0, 1) with 24 random bits, from (seed, index).
TE_HOST_DEVICE inline float uniform01(uint64_t seed, uint64_t index) {
  const uint64_t h = mix64(seed ^ mix64(index + 0x9e3779b97f4a7c15ULL));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

// Keep factor for element `index`: 0 when dropped, 1/(1-p) when kept.
TE_HOST_DEVICE inline float dropout_factor(uint64_t seed, uint64_t index, float p) {
  if (p <= 0.0f) return 1.0f;
  return uniform01(seed, index) < p ? 0.0f : 1.0f / (1.0f - p);
}

}  // namespace te::cpu

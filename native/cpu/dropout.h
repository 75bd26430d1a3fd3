// Dropout masks as a pure function of (seed, element index): the training
// forward and the backward regenerate the same mask instead of storing it,
// and the result does not depend on thread count or task order.
//
// Element i's 32 random bits are h = mix32(mix32(lo(i) + k1) ^ k2), the keys
// (k1, k2) drawn by a 64-bit finaliser from the seed and hi(i). The keys are
// fixed over 2^32 elements, so the element loop is 32-bit multiplies that
// vectorise on every instruction set; the second round keeps two seeds'
// masks from being shifts of each other.
//
// Everything here is static: each instruction set's translation unit gets
// its own copies, compiled with its flags, and the linker cannot swap in
// another unit's (an AVX-512 copy would fault on an AVX2 machine).
#pragma once

#include <cstdint>

// Also compiled into the CUDA kernels, which must draw the same masks.
#if defined(__CUDACC__)
#define TE_HOST_DEVICE __host__ __device__
#else
#define TE_HOST_DEVICE
#endif

namespace te::cpu {

// A 64-bit finaliser (xorshift-multiply rounds).
TE_HOST_DEVICE static inline uint64_t mix64(uint64_t z) {
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ULL;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return z;
}

// A 32-bit finaliser (two multiply rounds; a bijection of the 32-bit words).
TE_HOST_DEVICE static inline uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x7feb352dU;
  h ^= h >> 15;
  h *= 0x846ca68bU;
  h ^= h >> 16;
  return h;
}

struct DropoutKeys {
  uint32_t k1, k2;
};

TE_HOST_DEVICE static inline DropoutKeys dropout_keys(uint64_t seed, uint64_t block) {
  const uint64_t h = mix64(seed ^ mix64(block + 0x9e3779b97f4a7c15ULL));
  return {static_cast<uint32_t>(h), static_cast<uint32_t>(h >> 32)};
}

TE_HOST_DEVICE static inline uint32_t dropout_bits(DropoutKeys k, uint32_t lo) {
  return mix32(mix32(lo + k.k1) ^ k.k2);
}

// Element i is dropped when the top 24 of its bits fall under p * 2^24.
TE_HOST_DEVICE static inline uint32_t dropout_threshold(float p) { return static_cast<uint32_t>(p * 16777216.0f); }

// Keep factor for element `index`: 0 when dropped, 1/(1-p) when kept.
TE_HOST_DEVICE static inline float dropout_factor(uint64_t seed, uint64_t index, float p) {
  if (p <= 0.0f) return 1.0f;
  const uint32_t bits = dropout_bits(dropout_keys(seed, index >> 32), static_cast<uint32_t>(index));
  return (bits >> 8) < dropout_threshold(p) ? 0.0f : 1.0f / (1.0f - p);
}

// y[j] = x[j] * factor(index0 + j), or y[j] += that (a dropped NaN stays
// NaN, as x * 0 in PyTorch); the loop each
// instruction set's vector.cpp compiles with its own flags.
static inline void dropout_run(const float* x, uint64_t index0, int64_t n, float p, uint64_t seed, bool accumulate,
                               float* y) {
  const uint32_t threshold = dropout_threshold(p);
  const float kept = 1.0f / (1.0f - p);
  int64_t j = 0;
  while (j < n) {
    const uint64_t index = index0 + static_cast<uint64_t>(j);
    // One key pair per 2^32-element block.
    const uint64_t to_block_end = (uint64_t{1} << 32) - (index & 0xffffffffULL);
    const int64_t len = static_cast<int64_t>(to_block_end < static_cast<uint64_t>(n - j) ? to_block_end : n - j);
    const DropoutKeys k = dropout_keys(seed, index >> 32);
    const uint32_t lo = static_cast<uint32_t>(index);
    const float* xs = x + j;
    float* ys = y + j;
    if (accumulate) {
      for (int64_t t = 0; t < len; ++t)
        ys[t] += xs[t] * ((dropout_bits(k, lo + static_cast<uint32_t>(t)) >> 8) < threshold ? 0.0f : kept);
    } else {
      for (int64_t t = 0; t < len; ++t)
        ys[t] = xs[t] * ((dropout_bits(k, lo + static_cast<uint32_t>(t)) >> 8) < threshold ? 0.0f : kept);
    }
    j += len;
  }
}

}  // namespace te::cpu

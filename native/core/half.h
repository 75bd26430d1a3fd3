// Scalar f16 / bf16 <-> f32, round to nearest even, NaN kept quiet. The
// portable kernels use these; the AVX2 ones use F16C and must agree.
#pragma once

#include <cstdint>
#include <cstring>

namespace te {

static inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

static inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 0) {  // zero or subnormal: m * 2^-24
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (e == 31) return f32_from_bits(sign | 0x7F800000u | (m << 13));
  return f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
}

static inline uint16_t f32_to_f16(float f) {
  uint32_t x = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  x &= 0x7FFFFFFFu;
  if (x >= 0x7F800000u)  // Inf stays Inf; NaN becomes a quiet NaN keeping its top payload bits
    return sign | 0x7C00 | (x > 0x7F800000u ? static_cast<uint16_t>(0x200 | ((x >> 13) & 0x3FF)) : 0);
  if (x >= 0x477FF000u) return sign | 0x7C00;  // >= 65520 rounds past the largest half
  if (x < 0x38800000u) {
    // Below half's smallest normal: adding 0.5f puts the value's bits in
    // units of 2^-24 (half's smallest subnormal), rounded by the FPU (RNE).
    const float v = f32_from_bits(x) + 0.5f;
    return sign | static_cast<uint16_t>(f32_bits(v) - 0x3F000000u);
  }
  const uint32_t odd = (x >> 13) & 1;
  x += 0xC8000FFFu + odd;  // rebias 127 -> 15 and round to nearest even at bit 13
  return sign | static_cast<uint16_t>(x >> 13);
}

static inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

static inline uint16_t f32_to_bf16(float f) {
  const uint32_t x = f32_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40);
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1)) >> 16);
}

}  // namespace te

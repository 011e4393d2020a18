// IEEE half (f16) and bfloat16 conversions, portable (no F16C needed).
#ifndef LLMFLASH_UTIL_HALF_H_
#define LLMFLASH_UTIL_HALF_H_

#include <cstdint>
#include <cstring>

namespace llmflash {

inline float Bf16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

inline float F16ToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((man & 0x400) == 0) { man <<= 1; --exp; }
      man &= 0x3FF;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000 | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, with overflow to infinity and subnormals.
inline uint16_t FloatToF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t absx = x & 0x7FFFFFFF;
  if (absx > 0x7F800000) return static_cast<uint16_t>(sign | 0x7E00);  // NaN
  if (absx >= 0x477FF000) return static_cast<uint16_t>(sign | 0x7C00);  // overflow: inf
  if (absx < 0x38800000) {  // subnormal or zero in f16
    if (absx < 0x33000000) return static_cast<uint16_t>(sign);
    uint32_t man = (absx & 0x7FFFFF) | 0x800000;
    int shift = 113 - static_cast<int>(absx >> 23) + 13;
    uint32_t half = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t bits = absx - (112u << 23);  // rebias exponent
  uint32_t half = bits >> 13, rem = bits & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;
  return static_cast<uint16_t>(sign | half);
}

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_HALF_H_

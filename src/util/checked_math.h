// Overflow-checked size arithmetic for sizes and offsets read from files.
#ifndef LLMFLASH_UTIL_CHECKED_MATH_H_
#define LLMFLASH_UTIL_CHECKED_MATH_H_

#include <cstdint>

namespace llmflash {

// Each returns false (leaving *out unspecified) on overflow.
inline bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool CheckedAdd(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}
inline bool CheckedMul3(uint64_t a, uint64_t b, uint64_t c, uint64_t* out) {
  uint64_t ab;
  return CheckedMul(a, b, &ab) && CheckedMul(ab, c, out);
}

inline uint64_t RoundUp(uint64_t x, uint64_t align) {
  return (x + align - 1) / align * align;
}

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_CHECKED_MATH_H_

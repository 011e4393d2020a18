// Storage types of weights: the one table every layer above asks how a type
// is laid out (docs/format.md, "Storage types"). A type stores rows of
// elements in blocks: f32/f16/bf16 one element per block; q8_0 and q4_0 32
// elements per block with an f16 scale, bit-compatible with GGUF's blocks.
//
// Every switch over DType in the library lists all of them without a
// default, so adding a type fails to compile wherever it lacks a case (a
// kernel, a quantizer, a size) instead of running as another type.
#ifndef LLMFLASH_UTIL_DTYPE_H_
#define LLMFLASH_UTIL_DTYPE_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace llmflash {

enum class DType { kF32, kF16, kBF16, kQ8_0, kQ4_0 };

// Every type, in declaration order (for tests and tools that go over all).
inline constexpr DType kAllDTypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0};

struct DTypeTraits {
  const char* name;
  int block_elements;  // a row's length must be a multiple of this
  int block_bytes;     // bytes of one block
  bool quantized;      // blocks carry a scale (q8_0, q4_0)
};

// Elements per quantized block of q8_0 and q4_0 (GGUF's QK8_0 and QK4_0).
inline constexpr int kQuantBlock = 32;

// q8_0: x[j] = d * q[j], q int8.
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t q[kQuantBlock];
};
// q4_0: element j in the low nibble of q[j], element j + 16 in the high
// nibble; x = d * (nibble - 8).
struct BlockQ4_0 {
  uint16_t d;  // f16 scale
  uint8_t q[kQuantBlock / 2];
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18, "GGUF block sizes");

constexpr DTypeTraits Traits(DType t) {
  switch (t) {
    case DType::kF32: return {"f32", 1, 4, false};
    case DType::kF16: return {"f16", 1, 2, false};
    case DType::kBF16: return {"bf16", 1, 2, false};
    case DType::kQ8_0: return {"q8_0", kQuantBlock, sizeof(BlockQ8_0), true};
    case DType::kQ4_0: return {"q4_0", kQuantBlock, sizeof(BlockQ4_0), true};
  }
  return {"?", 1, 0, false};  // unreachable: every enumerator is handled above
}

inline const char* DTypeName(DType t) { return Traits(t).name; }

// Whether a row of n elements is whole blocks of t.
constexpr bool FitsBlocks(DType t, uint64_t n) { return n % Traits(t).block_elements == 0; }

// Bytes of n elements of t; n must be whole blocks (FitsBlocks).
constexpr uint64_t RowBytes(DType t, uint64_t n) {
  return n / Traits(t).block_elements * Traits(t).block_bytes;
}

// Mean bytes per element (4.25 bits for q4_0), for pricing reads and DRAM.
constexpr double BytesPerElement(DType t) {
  return static_cast<double>(Traits(t).block_bytes) / Traits(t).block_elements;
}

inline std::optional<DType> ParseDType(std::string_view s) {
  for (DType t : kAllDTypes) {
    if (s == Traits(t).name) return t;
  }
  return std::nullopt;
}

// "f32, f16, bf16, q8_0 or q4_0", for error messages.
inline const char* DTypeChoices() { return "f32, f16, bf16, q8_0 or q4_0"; }

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_DTYPE_H_

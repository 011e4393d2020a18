// Storage data types of weights in a model directory.
#ifndef LLMFLASH_FORMAT_DTYPE_H_
#define LLMFLASH_FORMAT_DTYPE_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace llmflash {

enum class DType { kF32, kF16, kBF16 };

inline uint64_t DTypeSize(DType t) { return t == DType::kF32 ? 4 : 2; }

inline const char* DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
  }
  return "?";
}

inline std::optional<DType> ParseDType(std::string_view s) {
  if (s == "f32") return DType::kF32;
  if (s == "f16") return DType::kF16;
  if (s == "bf16") return DType::kBF16;
  return std::nullopt;
}

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_DTYPE_H_

// ggml's tensor types as GGUF files number them, their block sizes, and the
// dequantizers of the ones llmflash imports (docs/gguf.md, "Tensor types").
//
// Block layouts follow the GGUF specification and ggml's block structs:
//   Q4_0  {f16 d; u8 qs[16]}             x = d * (q - 8)
//   Q4_1  {f16 d, m; u8 qs[16]}          x = d * q + m
//   Q5_0  {f16 d; u8 qh[4]; u8 qs[16]}   x = d * (q - 16), bit 4 of q in qh
//   Q5_1  {f16 d, m; u8 qh[4]; u8 qs[16]} x = d * q + m
//   Q8_0  {f16 d; i8 qs[32]}             x = d * q
//   Q4_K  {f16 d, dmin; u8 scales[12]; u8 qs[128]}   8 sub-blocks of 32, 6-bit scales/mins
//   Q5_K  {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}
//   Q6_K  {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}  16 sub-blocks of 16
// In the 32-element types element j sits in the low nibble of byte j and
// element j + 16 in its high nibble.
//
// Thread-safety: pure functions.
#ifndef LLMFLASH_FORMAT_GGUF_TYPES_H_
#define LLMFLASH_FORMAT_GGUF_TYPES_H_

#include <cstdint>
#include <optional>

#include "util/dtype.h"

namespace llmflash {

enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15,
  kIQ4_NL = 20, kIQ4_XS = 23, kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28, kBF16 = 30,
  kUnknown = 0xffffffff,  // any other id: named in errors by its number
};

struct GgmlTypeTraits {
  const char* name;
  uint32_t block_elements;  // 0: size unknown here
  uint32_t block_bytes;
  bool dequantizable;       // DequantizeGgmlRow handles it
};

GgmlTypeTraits GgmlTraits(GgmlType t);
// The enumerator of a stored id (kUnknown for ids not listed above).
GgmlType GgmlTypeFromId(uint32_t id);
// "Q4_K", or "type 17" for an id without a name here.
const char* GgmlTypeName(GgmlType t);

// The llmflash storage type whose blocks are byte-identical (F32, F16,
// BF16, Q8_0, Q4_0), so rows can be carried without requantizing.
std::optional<DType> SameBlocksAs(GgmlType t);
// The ggml type with the same blocks as a llmflash storage type.
GgmlType GgmlTypeOf(DType t);
// Bytes of a row of n elements of t (n whole blocks; t of known size).
inline uint64_t GgmlRowBytes(GgmlType t, uint64_t n) {
  const GgmlTypeTraits tr = GgmlTraits(t);
  return tr.block_elements == 0 ? 0 : n / tr.block_elements * tr.block_bytes;
}
// The llmflash type an import picks for a tensor of this type when the user
// does not ask for one: the same blocks where they exist; q4_0 for the
// 4-bit types (Q4_1, Q4_K); q8_0 for the 5- and 6-bit ones (Q5_0, Q5_1,
// Q5_K, Q6_K), which q4_0 would cost 10% relative error (measured on the
// shared Q4_K_M file; docs/gguf.md).
DType ClosestDType(GgmlType t);

// Writes n floats of a row of type t (n whole blocks; t dequantizable).
void DequantizeGgmlRow(GgmlType t, const void* in, uint64_t n, float* out);

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_GGUF_TYPES_H_

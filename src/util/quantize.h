// Storing f32 rows in a storage type (util/dtype.h). q8_0 and q4_0 follow
// llama.cpp's reference quantizers (quantize_row_q8_0_ref and
// quantize_row_q4_0_ref in ggml-quants.c), so the same floats give the same
// bytes as a GGUF file written by llama.cpp without an importance matrix
// (checked against tests/reference/quant_reference.py):
//   q8_0: d = max|x| / 127, q = round(x / d) (half away from zero).
//   q4_0: m = the element of largest magnitude (first one on ties), d = m / -8,
//         q = min(15, trunc(x / d + 8.5)).
// The reciprocal 1/d is taken of the f32 scale, before d is rounded to f16.
//
// Thread-safety: pure functions.
#ifndef LLMFLASH_UTIL_QUANTIZE_H_
#define LLMFLASH_UTIL_QUANTIZE_H_

#include <cstdint>

#include "util/dtype.h"

namespace llmflash {

// Writes RowBytes(t, n) bytes to out; n must be whole blocks of t.
void QuantizeRow(DType t, const float* in, int64_t n, void* out);

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_QUANTIZE_H_

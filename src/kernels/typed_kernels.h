// Kernels over weights stored as f32, f16 or bf16: products read the stored
// type directly (no f32 copy of the model), with an AVX2+F16C+FMA path
// selected at run time when the CPU has it and a portable path otherwise.
//
// Thread-safety: pure functions.
#ifndef LLMFLASH_KERNELS_TYPED_KERNELS_H_
#define LLMFLASH_KERNELS_TYPED_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "format/dtype.h"

namespace llmflash {

// A row-major matrix (or vector) in its storage type.
struct WeightRef {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  explicit operator bool() const { return data != nullptr; }
  // The element at flat index i, as a pointer.
  const void* At(size_t i) const {
    return static_cast<const char*>(data) + i * DTypeSize(dtype);
  }
};

// out[rows] = W[rows x cols] * x
void MatVec(WeightRef w, const float* x, int rows, int cols, float* out);
// dot(row[0..n), x)
float DotTyped(const void* row, DType t, const float* x, int n);
// y += a * row[0..n)
void AxpyTyped(float a, const void* row, DType t, int n, float* y);
// Four rows at once, each result exactly as DotTyped / four AxpyTyped calls
// in order would give (the rows' loads overlap; the arithmetic is the same).
void Dot4Typed(const void* const rows[4], DType t, const float* x, int n, float* out);
void Axpy4Typed(const float a[4], const void* const rows[4], DType t, int n, float* y);
// out[0..n) = row as f32
void ToFloat(const void* row, DType t, int n, float* out);

// Which implementation runs: "avx2+f16c" or "portable".
const char* TypedKernelPath();

}  // namespace llmflash

#endif  // LLMFLASH_KERNELS_TYPED_KERNELS_H_

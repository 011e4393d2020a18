// The code paths behind typed_kernels.h: one table of row kernels over 16-bit
// weights (f16 or bf16) per instruction set. Internal to src/kernels.
//
// Every path keeps two promises the callers rely on: DotRows gives each row
// exactly what Dot gives it (same accumulators, same order), and AxpyRows
// adds to each element exactly what kRowGroup Axpy calls in order would
// (one fused multiply-add per row). Different paths may differ in the last
// bits, never one path with itself.
#ifndef LLMFLASH_KERNELS_TYPED_KERNELS_IMPL_H_
#define LLMFLASH_KERNELS_TYPED_KERNELS_IMPL_H_

#include <cstdint>

#include "kernels/typed_kernels.h"

namespace llmflash::internal {

struct HalfKernels {
  float (*dot)(const uint16_t* row, const float* x, int n, bool f16);
  void (*dot_rows)(const uint16_t* const rows[kRowGroup], const float* x, int n, bool f16, float* out);
  void (*axpy)(float a, const uint16_t* row, int n, float* y, bool f16);
  void (*axpy_rows)(const float a[kRowGroup], const uint16_t* const rows[kRowGroup], int n, float* y,
                    bool f16);
};

// nullptr when the CPU (or the OS, for the register state) lacks the path.
const HalfKernels* Avx2Kernels();
const HalfKernels* Avx512Kernels();

}  // namespace llmflash::internal

#endif  // LLMFLASH_KERNELS_TYPED_KERNELS_IMPL_H_

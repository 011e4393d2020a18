// The code paths behind typed_kernels.h: per instruction set, one table of
// row kernels for each stored type that has SIMD code (f16, bf16, q8_0,
// q4_0; f32 goes through Eigen on every path). Internal to src/kernels.
//
// Every path keeps two promises the callers rely on: DotRows gives each row
// exactly what Dot gives it (same accumulators, same order), and AxpyRows
// adds to each element exactly what kRowGroup Axpy calls in order would
// (one fused multiply-add per row). Different paths may differ in the last
// bits, never one path with itself.
#ifndef LLMFLASH_KERNELS_TYPED_KERNELS_IMPL_H_
#define LLMFLASH_KERNELS_TYPED_KERNELS_IMPL_H_

#include <cstdint>
#include <limits>

#include "kernels/tile_kernels.h"
#include "kernels/typed_kernels.h"

namespace llmflash::internal {

// Kernels over rows of one stored type. n is a multiple of the type's block.
// x is what KernelInput prepares for the type: `const float*` for f32, f16
// and bf16; `const InputBlock*` (x quantized to int8 blocks) for q8_0 and
// q4_0, whose products are integer dot products per block.
struct RowKernels {
  float (*dot)(const void* row, const void* x, int n);
  void (*dot_rows)(const void* const rows[kRowGroup], const void* x, int n, float* out);
  void (*axpy)(float a, const void* row, int n, float* y);
  void (*axpy_rows)(const float a[kRowGroup], const void* const rows[kRowGroup], int n, float* y);
  // nr (1..kTileRows) rows times ni (1..kTileInputs) inputs:
  // out[b * stride + r] = dot(rows[r], xs[b], n), bit for bit. Paths with a
  // tile for the type decode each weight block once for all ni inputs.
  void (*dot_tile)(const void* const rows[], int nr, const void* const xs[], int ni, int n, float* out,
                   int stride);
  // ys[b] += sum_k a[b * a_stride + k] * rows[k] for ni (1..kTileInputs)
  // outputs: each element exactly as axpy(a[b, k], rows[k], n, ys[b]) for
  // every k with a nonzero coefficient, in order, gives it (a zero adds
  // nothing, up to the sign of a zero sum).
  void (*axpy_tile)(const float* a, int a_stride, const void* const rows[], int count, int n, float* const ys[],
                    int ni);
};

struct PathKernels {
  RowKernels f16, bf16, q8_0, q4_0;
};

// The portable loops: the reference every other path is tested against.
const PathKernels& PortableKernels();
// nullptr when the CPU (or the OS, for the register state) lacks the path,
// or the build targets another architecture.
const PathKernels* Avx2Kernels();
const PathKernels* Avx512Kernels();
const PathKernels* NeonKernels();
// f16 (or bf16) to f32 with AVX-512 (exact, as the scalar conversion);
// false, doing nothing, when the CPU lacks it.
bool WidenHalfAvx512(const uint16_t* p, int n, float* out, bool f16);
// f16, bf16, q8_0 or q4_0 to f32 with AVX2 (the scalar conversion's bits:
// d * q is one rounding either way); false, doing nothing, for f32 or when
// the CPU lacks AVX2.
bool WidenAvx2(const void* row, DType t, int n, float* out);
// KernelInput's int8 blocks of x with AVX2, the scalar loop's bits; false,
// doing nothing, when the CPU lacks AVX2.
bool QuantizeInputAvx2(const float* x, int n, InputBlock* out);

// One-row entry points built on the grouped code, so that a row is summed
// the same way alone or in a group.
template <void (*Rows)(const void* const*, const void*, int, float*)>
float DotOne(const void* row, const void* x, int n) {
  const void* r[1] = {row};
  float out;
  Rows(r, x, n, &out);
  return out;
}

template <void (*Rows)(const float*, const void* const*, int, float*)>
void AxpyOne(float a, const void* row, int n, float* y) {
  const void* r[1] = {row};
  Rows(&a, r, n, y);
}

// 1 / d for x's int8 blocks, 0 when d is 0 or so small (a subnormal
// block) that 1 / d overflows: such a block's levels are all 0, on every
// path, instead of whatever rounding infinity gives.
inline float InputScaleInverse(float d) {
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  return id <= std::numeric_limits<float>::max() ? id : 0.0f;
}

// A tile made of one-row products, for types and paths without a tile of
// their own.
template <float (*Dot)(const void*, const void*, int)>
void DotTileOfRows(const void* const rows[], int nr, const void* const xs[], int ni, int n, float* out,
                   int stride) {
  for (int b = 0; b < ni; ++b) {
    for (int r = 0; r < nr; ++r) out[b * stride + r] = Dot(rows[r], xs[b], n);
  }
}

template <void (*Axpy)(float, const void*, int, float*)>
void AxpyTileOfRows(const float* a, int a_stride, const void* const rows[], int count, int n, float* const ys[],
                    int ni) {
  for (int b = 0; b < ni; ++b) {
    for (int k = 0; k < count; ++k) {
      if (a[b * a_stride + k] != 0.0f) Axpy(a[b * a_stride + k], rows[k], n, ys[b]);
    }
  }
}

}  // namespace llmflash::internal

#endif  // LLMFLASH_KERNELS_TYPED_KERNELS_IMPL_H_

// Kernels over weights in their storage type (util/dtype.h: f32, f16, bf16,
// q8_0, q4_0): products read the stored rows directly (no f32 copy of the
// model). All but f32 (Eigen) run on the best path the CPU has, chosen at run
// time: AVX-512 (F, BW, VL), AVX2+F16C+FMA, NEON (aarch64), or portable
// loops. Quantized rows are expanded to f32 in registers and multiplied with
// f32 activations (docs/architecture.md, "Kernels"); a row's length must be
// whole blocks of its type.
//
// Thread-safety: pure functions; UseKernelPath may be called at any time (an
// atomic switch) but is meant for tests and tools comparing paths.
#ifndef LLMFLASH_KERNELS_TYPED_KERNELS_H_
#define LLMFLASH_KERNELS_TYPED_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "util/dtype.h"

namespace llmflash {

// A row-major matrix (or vector) in its storage type.
struct WeightRef {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  explicit operator bool() const { return data != nullptr; }
  // Where flat element i starts; i must fall on a block boundary (a row).
  const void* At(uint64_t i) const { return static_cast<const char*>(data) + RowBytes(dtype, i); }
};

// out[rows] = W[rows x cols] * x
void MatVec(WeightRef w, const float* x, int rows, int cols, float* out);
// dot(row[0..n), x)
float DotTyped(const void* row, DType t, const float* x, int n);
// y += a * row[0..n)
void AxpyTyped(float a, const void* row, DType t, int n, float* y);
// Rows taken together by DotRowsTyped / AxpyRowsTyped (and MatVec): eight
// weight streams in flight per pass.
inline constexpr int kRowGroup = 8;
// kRowGroup rows at once, each result exactly as DotTyped / kRowGroup
// AxpyTyped calls in order would give (the loads overlap; the arithmetic is
// the same), so results never depend on how rows are grouped.
void DotRowsTyped(const void* const rows[kRowGroup], DType t, const float* x, int n, float* out);
void AxpyRowsTyped(const float a[kRowGroup], const void* const rows[kRowGroup], DType t, int n, float* y);
// out[0..n) = row as f32
void ToFloat(const void* row, DType t, int n, float* out);

// The code paths. Each is exact with itself; two paths may differ in the
// last bits (different accumulator widths and orders).
enum class KernelPath { kPortable, kAvx2, kAvx512, kNeon };
// The fastest path this CPU and OS support (the default).
KernelPath BestKernelPath();
bool KernelPathAvailable(KernelPath path);
// Switches the process to `path`; false (nothing changes) when unavailable.
bool UseKernelPath(KernelPath path);
KernelPath CurrentKernelPath();
// "avx512", "avx2+f16c", "neon" or "portable".
const char* KernelPathName(KernelPath path);
// KernelPathName(CurrentKernelPath()).
const char* TypedKernelPath();

}  // namespace llmflash

#endif  // LLMFLASH_KERNELS_TYPED_KERNELS_H_

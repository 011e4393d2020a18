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
#include <vector>

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

// Rows taken together by DotRowsTyped / AxpyRowsTyped (and MatVec): eight
// weight streams in flight per pass.
inline constexpr int kRowGroup = 8;

// x as the kernels take it for rows of a type. For q8_0 and q4_0 rows, x is
// quantized once to int8 blocks of 32 (per block d = max|x| / 127 in f32,
// q = round(x * (1 / d)), half to even; levels 0 when d is 0 or 1 / d
// overflows) and each product is a sum of integer dot products per block
// times d_row * d_x, as llama.cpp computes them; for other types it is x
// itself. The blocks are the same bits on every path (AVX2 quantizes with
// SIMD). Every product below goes through it (DotTyped prepares its own),
// so a row gives the same bits alone, in a group or in a MatVec.
struct InputBlock {
  float d;
  int8_t q[32];
};

class KernelInput {
 public:
  // Keeps x (which must outlive the products) or quantizes it.
  void Prepare(DType t, const float* x, int n);
  // What the row kernels take: x, or the blocks.
  const void* data() const { return quantized_ ? static_cast<const void*>(blocks_.data()) : x_; }

 private:
  const float* x_ = nullptr;
  bool quantized_ = false;
  std::vector<InputBlock> blocks_;
};

// The same products with x prepared once for many rows (as MatVec and
// FfnRows do): `in` must have been prepared for type t and length n.
float DotPrepared(const void* row, DType t, const KernelInput& in, int n);
void DotRowsPrepared(const void* const rows[kRowGroup], DType t, const KernelInput& in, int n, float* out);
// nr (1..kTileRows) rows times ni (1..kTileInputs) prepared inputs:
// out[b * out_stride + r] = DotPrepared(rows[r], t, *inputs[b], n), bit for
// bit. Where the path has a tile for the type (q8_0 and q4_0 on AVX2 and
// AVX-512) each weight block is decoded once for every input of the tile:
// a batch's quantized products at the integer units' rate.
void DotTilePrepared(const void* const rows[], int nr, DType t, const KernelInput* const inputs[], int ni, int n,
                     float* out, int out_stride);
// ys[b] += sum_k a[b * a_stride + k] * rows[k] for n_outputs (1..kTileInputs)
// outputs and `count` rows of n elements: each element exactly as AxpyTyped
// over the rows with a nonzero coefficient, in order, gives it (up to the
// sign of a zero). Where the path has a tile for the type (q8_0 and q4_0 on
// AVX2 and AVX-512) each block is decoded once for every output.
void AxpyTileTyped(const float* a, int a_stride, const void* const rows[], int count, DType t, int n,
                   float* const ys[], int n_outputs);

// out[rows] = W[rows x cols] * x
void MatVec(WeightRef w, const float* x, int rows, int cols, float* out);
// The same for n inputs at once, x_b = x + b * cols (row-major n x cols):
// out[b * out_stride + r] = W[r] . x_b. Each weight row is read once for all
// n inputs (a prompt's batch). q8_0 and q4_0 products are exactly what
// MatVec gives for that input (int8 inputs, as decoding uses). f32, f16 and
// bf16 batches of kPanelMinBatch or more go through tiles of rows x inputs
// (kernels/tile_kernels.h), smaller f32 ones through Eigen: the same sums as
// MatVec's in another order (f32 rounding).
inline constexpr int kPanelRows = 64;  // neurons FfnRowsBatch takes together
inline constexpr int kPanelMinBatch = 8;
void MatMul(WeightRef w, const float* x, int n, int rows, int cols, float* out, int out_stride);
// dot(row[0..n), x)
float DotTyped(const void* row, DType t, const float* x, int n);
// y += a * row[0..n)
void AxpyTyped(float a, const void* row, DType t, int n, float* y);
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

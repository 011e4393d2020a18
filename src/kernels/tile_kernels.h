// Tiles of a matrix product over f32, f16 or bf16 rows, for batches (a
// prompt's micro-batch): each loaded stretch of a weight row is used by up to
// kTileInputs inputs before the next is loaded, so a batch computes at the
// FMA units' rate instead of the rate a row streams through them.
//
//   DotTile:  out[b * out_stride + r] += rows[r] . xs[b]
//   AxpyTile: ys[b] += sum_k a[b * a_stride + k] * rows[k]
//
// Sums are in another order than the row kernels' (f32 rounding apart).
// AVX-512 machines run 512-bit code; other paths a portable loop over
// 8-lane accumulators, which compilers vectorize.
//
// Thread-safety: pure functions.
#ifndef LLMFLASH_KERNELS_TILE_KERNELS_H_
#define LLMFLASH_KERNELS_TILE_KERNELS_H_

#include "util/dtype.h"

namespace llmflash {

inline constexpr int kTileRows = 6;
inline constexpr int kTileInputs = 4;
// Callers take the products kTileDepth elements at a time (each input's
// stretch stays in L2 while every row tile passes over it).
inline constexpr int kTileDepth = 1024;

// Whether rows of `t` have tile kernels (f32, f16, bf16; not quantized).
constexpr bool HasTiles(DType t) { return !Traits(t).quantized; }

// rows: `n_rows` (1..kTileRows) rows of n elements; xs: `n_inputs`
// (1..kTileInputs) f32 vectors of n.
void DotTile(DType t, const void* const rows[], int n_rows, const float* const xs[], int n_inputs, int n,
             float* out, int out_stride);

// rows: `count` rows of n elements; ys: `n_outputs` (1..kTileInputs) f32
// vectors of n.
void AxpyTile(DType t, const float* a, int a_stride, const void* const rows[], int count, int n,
              float* const ys[], int n_outputs);

// out[b * out_stride + r] = rows[r] . x_b for `nrows` rows of `cols`
// elements and n inputs x_b = x + b * cols: a whole matrix product, by
// DotTile over stretches of kTileDepth.
void GemmRows(DType t, const void* const rows[], int nrows, const float* x, int n, int cols, float* out,
              int out_stride);

}  // namespace llmflash

#endif  // LLMFLASH_KERNELS_TILE_KERNELS_H_

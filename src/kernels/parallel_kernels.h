// The large products of a forward pass split over a ThreadPool: matrix rows
// (bit-identical to the serial kernel) and FFN neuron rows (each chunk sums
// into its own buffer, then the buffers are added in chunk order, so the
// result depends only on the pool size, not on which thread ran a chunk).
// Work below kMinParallelWork elements runs serially: tiny models give
// exactly the serial results.
//
// Thread-safety: a call uses the pool; one caller per pool at a time.
#ifndef LLMFLASH_KERNELS_PARALLEL_KERNELS_H_
#define LLMFLASH_KERNELS_PARALLEL_KERNELS_H_

#include <span>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/typed_kernels.h"
#include "util/thread_pool.h"

namespace llmflash {

inline constexpr int64_t kMinParallelWork = 1 << 18;

// out[rows] = W * x; `pool` may be null.
void MatVec(ThreadPool* pool, WeightRef w, const float* x, int rows, int cols, float* out);

// out[b * rows + r] = W[r] . x_b for n inputs (MatMul), rows split over
// `pool`; n = 1 is MatVec.
void MatMul(ThreadPool* pool, WeightRef w, const float* x, int n, int rows, int cols, float* out);

// FfnRowsBatch over `pool` (n = 1: FfnRows, h not reported), chunks summed
// as FfnRows does.
void FfnRowsBatch(ThreadPool* pool, const RecordLayout& layout, const char* base, uint64_t row_bytes,
                  std::span<const int32_t> slots, std::span<const int32_t> ids, const float* x, int n,
                  float* out, const uint8_t* mask, int mask_stride, const float* up_bias,
                  std::vector<float>* scratch);

// FfnRows over `pool`. `scratch` holds the per-chunk partial sums.
void FfnRows(ThreadPool* pool, const RecordLayout& layout, const char* base, uint64_t row_bytes,
             std::span<const int32_t> slots, const float* x, float* out, float* h_out,
             const float* up_bias, std::vector<float>* scratch);

}  // namespace llmflash

#endif  // LLMFLASH_KERNELS_PARALLEL_KERNELS_H_

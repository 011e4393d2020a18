// CPU kernels for the forward pass: matrix-vector products, norms, softmax
// and the per-neuron FFN step over neuron-matrix rows (records in f32, f16 or
// bf16, q8_0 or q4_0; see typed_kernels.h).
//
// Thread-safety: pure functions.
#ifndef LLMFLASH_KERNELS_KERNELS_H_
#define LLMFLASH_KERNELS_KERNELS_H_

#include "util/activation.h"
#include <cstdint>
#include <span>

#include "util/dtype.h"

namespace llmflash {

// out[rows] = W[rows x cols] (row-major) * x[cols]
void MatVec(const float* w, const float* x, int rows, int cols, float* out);
// out = x * weight / sqrt(mean(x^2) + eps)
void RmsNorm(const float* x, const float* weight, int n, float eps, float* out);
// out = (x - mean) / sqrt(var + eps) * weight + bias
void LayerNorm(const float* x, const float* weight, const float* bias, int n, float eps, float* out);
void Softmax(float* x, int n);
float Dot(const float* a, const float* b, int n);
// y += a * x
void Axpy(float a, const float* x, int n, float* y);

// Layout of a neuron record in a row: byte offsets of its parts, each `dim`
// elements of `dtype`.
struct RecordLayout {
  int dim = 0;
  int64_t gate_offset = -1;  // -1: ungated FFN
  int64_t up_offset = 0;
  int64_t down_offset = 0;
  Activation act;
  DType dtype = DType::kF32;
};

// For each row: h = act(gate . x) * (up . x) (or act(up . x) ungated), then
// out += h * down, for the rows `slots` of the matrix at `base`. up_bias
// (optional) holds the up-projection bias of slots[i] at [i]. When h_out is
// not null, h of slots[i] is written to h_out[i].
void FfnRows(const RecordLayout& layout, const char* base, uint64_t row_bytes,
             std::span<const int32_t> slots, const float* x, float* out,
             float* h_out = nullptr, const float* up_bias = nullptr);

// FfnRows for n inputs at once (a prompt's batch): x_b = x + b * dim adds
// into out_b = out + b * dim, each row read once for all of them. `ids[k]` is
// the neuron of slots[k] (may be empty without a mask). With `mask`, input b computes neuron ids[k] only
// when mask[b * mask_stride + ids[k]] is nonzero (its own active neurons);
// without, every input computes every row. Batches below kPanelMinBatch
// give each out_b exactly what FfnRows gives over the slots input b
// computes. Larger ones go through tile kernels on panels of kPanelRows
// neurons: for q8_0/q4_0 records every out_b is still FfnRows' bits (the
// tiles take the row kernels' steps; int8 inputs would turn any rounding
// difference into a different level); for float records every sum is
// formed in another order (f32 rounding). A masked neuron adds nothing.
// Each thread keeps n x kPanelRows products.
void FfnRowsBatch(const RecordLayout& layout, const char* base, uint64_t row_bytes,
                  std::span<const int32_t> slots, std::span<const int32_t> ids, const float* x,
                  int n, float* out, const uint8_t* mask, int mask_stride,
                  const float* up_bias = nullptr);

}  // namespace llmflash

#endif  // LLMFLASH_KERNELS_KERNELS_H_

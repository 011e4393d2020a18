// Parallel MatVec and FfnRows.
#include "kernels/parallel_kernels.h"

#include <algorithm>

#include "kernels/tile_kernels.h"

namespace llmflash {

void MatVec(ThreadPool* pool, WeightRef w, const float* x, int rows, int cols, float* out) {
  if (pool == nullptr || pool->size() == 1 || static_cast<int64_t>(rows) * cols < kMinParallelWork) {
    MatVec(w, x, rows, cols, out);
    return;
  }
  pool->ParallelFor(rows, [&](int, int begin, int end) {
    if (end > begin) {
      MatVec(WeightRef{w.At(static_cast<size_t>(begin) * cols), w.dtype}, x, end - begin, cols,
             out + begin);
    }
  });
}

void FfnRows(ThreadPool* pool, const RecordLayout& layout, const char* base, uint64_t row_bytes,
             std::span<const int32_t> slots, const float* x, float* out, float* h_out,
             const float* up_bias, std::vector<float>* scratch) {
  const int n = static_cast<int>(slots.size());
  if (pool == nullptr || pool->size() == 1 ||
      static_cast<int64_t>(n) * layout.dim * 2 < kMinParallelWork) {
    FfnRows(layout, base, row_bytes, slots, x, out, h_out, up_bias);
    return;
  }
  const int d = layout.dim, parts = pool->chunks();
  scratch->assign(static_cast<size_t>(parts - 1) * d, 0.0f);
  pool->ParallelFor(n, [&](int chunk, int begin, int end) {
    if (end <= begin) return;
    float* acc = chunk == 0 ? out : scratch->data() + static_cast<size_t>(chunk - 1) * d;
    FfnRows(layout, base, row_bytes, slots.subspan(begin, end - begin), x, acc,
            h_out != nullptr ? h_out + begin : nullptr,
            up_bias != nullptr ? up_bias + begin : nullptr);
  });
  for (int c = 1; c < parts; ++c) Axpy(1.0f, scratch->data() + static_cast<size_t>(c - 1) * d, d, out);
}

void MatMul(ThreadPool* pool, WeightRef w, const float* x, int n, int rows, int cols, float* out) {
  if (n == 1) {
    MatVec(pool, w, x, rows, cols, out);
    return;
  }
  if (pool == nullptr || pool->size() == 1 || static_cast<int64_t>(rows) * cols < kMinParallelWork) {
    MatMul(w, x, n, rows, cols, out, rows);
    return;
  }
  pool->ParallelFor(rows, [&](int, int begin, int end) {
    if (end > begin) {
      MatMul(WeightRef{w.At(static_cast<size_t>(begin) * cols), w.dtype}, x, n, end - begin, cols,
             out + begin, rows);
    }
  });
}

void FfnRowsBatch(ThreadPool* pool, const RecordLayout& layout, const char* base, uint64_t row_bytes,
                  std::span<const int32_t> slots, std::span<const int32_t> ids, const float* x, int n,
                  float* out, const uint8_t* mask, int mask_stride, const float* up_bias,
                  std::vector<float>* scratch) {
  const int count = static_cast<int>(slots.size());
  const size_t d = layout.dim;
  if (pool == nullptr || pool->size() == 1 ||
      static_cast<int64_t>(count) * layout.dim * 2 < kMinParallelWork) {
    FfnRowsBatch(layout, base, row_bytes, slots, ids, x, n, out, mask, mask_stride, up_bias);
    return;
  }
  // Enough inputs for each thread's part to run tiles: one part of the
  // inputs per thread (not the pool's finer chunks, which would each stream
  // every weight row again: 25% slower at 512 neurons, n = 128). Each part
  // owns its outputs, so nothing is cleared or added afterwards, and each
  // output is summed exactly as one thread sums it. About as fast as
  // splitting the neurons (BM_FfnBatch, 64-512 neurons at n = 128, 2 threads).
  const int parts = pool->size();
  const int groups = (n + kTileInputs - 1) / kTileInputs;
  if (n / parts >= kPanelMinBatch) {
    pool->ParallelFor(parts, [&](int, int first, int last) {
      for (int p = first; p < last; ++p) {
        const int b0 = groups * p / parts * kTileInputs;
        const int b1 = std::min(n, groups * (p + 1) / parts * kTileInputs);
        if (b1 <= b0) continue;
        FfnRowsBatch(layout, base, row_bytes, slots, ids, x + static_cast<size_t>(b0) * d, b1 - b0,
                     out + static_cast<size_t>(b0) * d,
                     mask != nullptr ? mask + static_cast<size_t>(b0) * mask_stride : nullptr,
                     mask_stride, up_bias);
      }
    });
    return;
  }
  // One part per thread (not the pool's finer chunks): each part keeps an
  // n x dim partial sum, which costs as much to clear and add as a few
  // neurons cost to compute. Part p always takes the same neurons, so the
  // result does not depend on which thread ran it.
  const size_t part = static_cast<size_t>(n) * d;
  scratch->assign(static_cast<size_t>(parts - 1) * part, 0.0f);
  pool->ParallelFor(parts, [&](int, int first, int last) {
    for (int p = first; p < last; ++p) {
      const int begin = static_cast<int>(static_cast<int64_t>(count) * p / parts);
      const int end = static_cast<int>(static_cast<int64_t>(count) * (p + 1) / parts);
      if (end <= begin) continue;
      float* acc = p == 0 ? out : scratch->data() + static_cast<size_t>(p - 1) * part;
      // ids may be empty (no mask, no bias: nothing asks which neuron a slot holds).
      FfnRowsBatch(layout, base, row_bytes, slots.subspan(begin, end - begin),
                   ids.empty() ? ids : ids.subspan(begin, end - begin), x, n, acc, mask, mask_stride,
                   up_bias != nullptr ? up_bias + begin : nullptr);
    }
  });
  for (int c = 1; c < parts; ++c) {
    for (int b = 0; b < n; ++b) {
      Axpy(1.0f, scratch->data() + static_cast<size_t>(c - 1) * part + b * d, layout.dim, out + b * d);
    }
  }
}

}  // namespace llmflash

// Row-column bundling: where each FFN neuron's record lives in the bundle file.
//
// Neuron i of a layer is one contiguous record: [gate row i] [up row i]
// [down column i], each `dim` elements of the FFN's storage type, whole
// blocks of it (no gate row for ungated FFNs). Records are padded to `record_stride`; each layer's region
// starts on a 4096-byte boundary so the file can be read with O_DIRECT.
#ifndef LLMFLASH_FORMAT_BUNDLE_LAYOUT_H_
#define LLMFLASH_FORMAT_BUNDLE_LAYOUT_H_

#include <cstdint>
#include <vector>

#include "util/dtype.h"

namespace llmflash {

inline constexpr uint64_t kLayerAlignment = 4096;

struct BundleLayout {
  uint64_t record_bytes = 0;
  uint64_t record_stride = 0;
  // Byte offsets of each section inside a record (-1: absent).
  int64_t gate_offset = -1;
  int64_t up_offset = 0;
  int64_t down_offset = 0;
  std::vector<uint64_t> layer_offsets;
  uint64_t file_bytes = 0;
};

// Records of at least 4 KiB are padded to a multiple of 4096 so that runs of
// records can be read by O_DIRECT straight into the neuron matrix; smaller
// ones only to 64 bytes (a cache line), since padding them to 4 KiB would
// multiply the bytes read.
inline uint64_t RecordStrideFor(uint64_t record_bytes) {
  uint64_t align = record_bytes >= 4096 ? 4096 : 64;
  return (record_bytes + align - 1) / align * align;
}

inline BundleLayout ComputeBundleLayout(int dim, int ffn_dim, int n_layers,
                                        bool gated, DType dtype) {
  BundleLayout b;
  const uint64_t row = RowBytes(dtype, static_cast<uint64_t>(dim));
  b.record_bytes = row * (gated ? 3 : 2);
  b.record_stride = RecordStrideFor(b.record_bytes);
  b.gate_offset = gated ? 0 : -1;
  b.up_offset = gated ? static_cast<int64_t>(row) : 0;
  b.down_offset = b.up_offset + static_cast<int64_t>(row);
  uint64_t layer_bytes = b.record_stride * static_cast<uint64_t>(ffn_dim);
  uint64_t layer_span = (layer_bytes + kLayerAlignment - 1) / kLayerAlignment * kLayerAlignment;
  for (int l = 0; l < n_layers; ++l) b.layer_offsets.push_back(layer_span * l);
  b.file_bytes = layer_span * static_cast<uint64_t>(n_layers);
  return b;
}

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_BUNDLE_LAYOUT_H_

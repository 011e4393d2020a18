// TensorSource: where an importer gets a checkpoint's tensors by their
// Hugging Face names, as f32: a safetensors checkpoint on disk, or the
// synthesizer generating them on demand (so `synth --format llmflash` writes
// a converted model without the Hugging Face files ever existing).
//
// Thread-safety: implementations are immutable once built; Read may be
// called from any thread.
#ifndef LLMFLASH_FORMAT_TENSOR_SOURCE_H_
#define LLMFLASH_FORMAT_TENSOR_SOURCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "llmflash/status.h"

namespace llmflash {

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // The tensor `name`, row-major f32, checked against `shape`; NotFound or
  // Corruption naming the tensor and where it was looked for.
  virtual StatusOr<std::vector<float>> Read(const std::string& name, const std::vector<uint64_t>& shape) const = 0;
  // Every tensor name the source holds.
  virtual std::vector<std::string> Names() const = 0;
};

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_TENSOR_SOURCE_H_

// Reading Hugging Face safetensors checkpoints: one model.safetensors, or
// shards listed by model.safetensors.index.json.
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON mapping tensor names to {dtype, shape, data_offsets}, then the data.
// Every field is validated against the real file size before use.
//
// Thread-safety: a SafetensorsCheckpoint is immutable after Open; Read may be
// called from any thread.
#ifndef LLMFLASH_FORMAT_SAFETENSORS_H_
#define LLMFLASH_FORMAT_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "format/tensor_source.h"
#include "util/dtype.h"
#include "llmflash/status.h"

namespace llmflash {

struct SafetensorsTensor {
  std::string file;  // path of the shard
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;
  uint64_t offset = 0;  // absolute byte offset in `file`
  uint64_t bytes = 0;
  uint64_t elements() const;
};

// Parses a header (the JSON text) for a file whose data section holds
// `data_bytes` bytes starting at `data_start`. Tensors in dtypes other than
// F32/F16/BF16 are reported as Unsupported naming the tensor.
StatusOr<std::map<std::string, SafetensorsTensor>> ParseSafetensorsHeader(
    const std::string& json_text, uint64_t data_start, uint64_t data_bytes,
    const std::string& path);

class SafetensorsCheckpoint : public TensorSource {
 public:
  // `dir` holds model.safetensors or model.safetensors.index.json + shards.
  Status Open(const std::string& dir);

  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }
  const SafetensorsTensor* Find(const std::string& name) const;
  // Reads a tensor converted to f32, checking its shape. NotFound names the
  // tensor and the checkpoint.
  StatusOr<std::vector<float>> Read(const std::string& name,
                                    const std::vector<uint64_t>& shape) const override;
  std::vector<std::string> Names() const override;
  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }

 private:
  Status AddFile(const std::string& path);

  std::string dir_;
  std::map<std::string, SafetensorsTensor> tensors_;
};

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_SAFETENSORS_H_

// SafetensorsWriter: writes a safetensors file whose tensors are streamed in
// order, so that a model far larger than memory can be written in pieces.
//
// Thread-safety: not thread-safe.
#ifndef LLMFLASH_FORMAT_SAFETENSORS_WRITER_H_
#define LLMFLASH_FORMAT_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "util/dtype.h"
#include "llmflash/status.h"
#include "util/file.h"

namespace llmflash {

struct TensorSpec {
  std::string name;
  DType dtype = DType::kF16;
  std::vector<uint64_t> shape;
  uint64_t bytes() const;
};

class SafetensorsWriter {
 public:
  // Writes the header for `tensors`; their data must follow, in order.
  Status Open(const std::string& path, const std::vector<TensorSpec>& tensors);
  // Appends raw bytes of the current tensor(s).
  Status Write(const void* data, uint64_t n);
  // Checks that every byte was written, and closes.
  Status Close();

 private:
  WritableFile file_;
  uint64_t expected_ = 0;  // total file size
};

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_SAFETENSORS_WRITER_H_

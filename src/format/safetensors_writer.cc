// Streaming safetensors output.
#include "format/safetensors_writer.h"

#include <nlohmann/json.hpp>

#include "util/macros.h"

namespace llmflash {

uint64_t TensorSpec::bytes() const {
  uint64_t n = DTypeSize(dtype);
  for (uint64_t d : shape) n *= d;
  return n;
}

Status SafetensorsWriter::Open(const std::string& path, const std::vector<TensorSpec>& tensors) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}, {"producer", "llmflash synth"}};
  uint64_t offset = 0;
  for (const TensorSpec& t : tensors) {
    const char* dt = t.dtype == DType::kF32 ? "F32" : t.dtype == DType::kF16 ? "F16" : "BF16";
    header[t.name] = {{"dtype", dt}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes()}}};
    offset += t.bytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  uint64_t n = text.size();
  expected_ = 8 + n + offset;
  RETURN_IF_ERROR(file_.Open(path));
  RETURN_IF_ERROR(file_.Append(&n, 8));
  return file_.Append(text.data(), n);
}

Status SafetensorsWriter::Write(const void* data, uint64_t n) {
  if (file_.size() + n > expected_) return Status::Internal(file_.path() + ": more data than the header declares");
  return file_.Append(data, n);
}

Status SafetensorsWriter::Close() {
  if (file_.size() != expected_) {
    return Status::Internal(file_.path() + ": " + std::to_string(expected_ - file_.size()) + " bytes missing");
  }
  return file_.Close();
}

}  // namespace llmflash

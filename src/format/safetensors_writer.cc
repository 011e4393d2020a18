// Streaming safetensors output.
#include "format/safetensors_writer.h"

#include <nlohmann/json.hpp>

#include "util/macros.h"

namespace llmflash {

uint64_t TensorSpec::bytes() const {
  uint64_t n = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) n *= shape[i];
  return shape.empty() ? 0 : n * RowBytes(dtype, shape.back());
}

namespace {

// Safetensors' name of a type; quantized types have none (Hugging Face
// checkpoints hold floats).
const char* SafetensorsDType(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kQ8_0:
    case DType::kQ4_0: return nullptr;
  }
  return nullptr;  // unreachable: every enumerator is handled above
}

}  // namespace

Status SafetensorsWriter::Open(const std::string& path, const std::vector<TensorSpec>& tensors) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}, {"producer", "llmflash synth"}};
  uint64_t offset = 0;
  for (const TensorSpec& t : tensors) {
    const char* dt = SafetensorsDType(t.dtype);
    if (dt == nullptr) return Status::Internal(path + ": safetensors cannot hold " + DTypeName(t.dtype) + " tensors");
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

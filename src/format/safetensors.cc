// safetensors headers, shard indexes and tensor reads.
#include "format/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "util/checked_math.h"
#include "util/file.h"
#include "util/half.h"
#include "util/macros.h"

namespace llmflash {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

std::string ShapeText(const std::vector<uint64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

Status ParseTensor(const std::string& name, const nlohmann::json& v, uint64_t data_start,
                   uint64_t data_bytes, const std::string& path, SafetensorsTensor* t) {
  auto bad = [&](const std::string& what) {
    return Status::Corruption(path + ": tensor \"" + name + "\": " + what);
  };
  if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets")) {
    return bad("needs dtype, shape and data_offsets");
  }
  const auto& dt = v["dtype"];
  if (!dt.is_string()) return bad("dtype must be a string");
  std::string d = dt.get<std::string>();
  if (d == "F32") t->dtype = DType::kF32;
  else if (d == "F16") t->dtype = DType::kF16;
  else if (d == "BF16") t->dtype = DType::kBF16;
  else return Status::Unsupported(path + ": tensor \"" + name + "\" has dtype " + d + " (F32, F16 or BF16 only)");
  const auto& shape = v["shape"];
  if (!shape.is_array() || shape.size() > 8) return bad("shape must be a list of at most 8 dimensions");
  uint64_t n = Traits(t->dtype).block_bytes;  // F32, F16, BF16: one element per block
  for (const auto& x : shape) {
    if (!x.is_number_unsigned()) return bad("shape has a dimension that is not a non-negative integer");
    t->shape.push_back(x.get<uint64_t>());
    if (!CheckedMul(n, t->shape.back(), &n)) return bad("shape " + ShapeText(t->shape) + " overflows");
  }
  const auto& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
    return bad("data_offsets must be two non-negative integers");
  }
  uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
  if (begin > end || end > data_bytes) {
    return bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
               "] lie outside the " + std::to_string(data_bytes) + "-byte data section");
  }
  if (end - begin != n) {
    return bad("holds " + std::to_string(end - begin) + " bytes, its dtype and shape " +
               ShapeText(t->shape) + " need " + std::to_string(n));
  }
  t->offset = data_start + begin;
  t->bytes = n;
  return Status::OK();
}

Status ReadRaw(const SafetensorsTensor& t, void* dst) {
  int fd = open(t.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(t.file + ": open failed: " + std::strerror(errno));
  Status st = PreadExact(fd, t.file, t.offset, dst, t.bytes);
  close(fd);
  return st;
}

}  // namespace

uint64_t SafetensorsTensor::elements() const { return bytes / Traits(dtype).block_bytes; }

StatusOr<std::map<std::string, SafetensorsTensor>> ParseSafetensorsHeader(
    const std::string& text, uint64_t data_start, uint64_t data_bytes, const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption(path + ": the safetensors header is not a JSON object");
  }
  std::map<std::string, SafetensorsTensor> out;
  try {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "__metadata__") continue;
      SafetensorsTensor t;
      t.file = path;
      RETURN_IF_ERROR(ParseTensor(it.key(), it.value(), data_start, data_bytes, path, &t));
      out.emplace(it.key(), std::move(t));
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
  return out;
}

Status SafetensorsCheckpoint::AddFile(const std::string& path) {
  ASSIGN_OR_RETURN(uint64_t size, FileSize(path));
  if (size < 8) return Status::Corruption(path + ": too short for a safetensors header");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": open failed: " + std::strerror(errno));
  uint64_t n = 0;
  Status st = PreadExact(fd, path, 0, &n, 8);
  std::string header;
  if (st.ok() && (n > size - 8 || n > kMaxHeaderBytes)) {
    st = Status::Corruption(path + ": header length " + std::to_string(n) +
                            " exceeds the file (" + std::to_string(size) + " bytes)");
  }
  if (st.ok()) {
    header.resize(n);
    st = PreadExact(fd, path, 8, header.data(), n);
  }
  close(fd);
  RETURN_IF_ERROR(st);
  ASSIGN_OR_RETURN(auto tensors, ParseSafetensorsHeader(header, 8 + n, size - 8 - n, path));
  for (auto& [name, t] : tensors) {
    if (!tensors_.emplace(name, t).second) {
      return Status::Corruption(path + ": tensor \"" + name + "\" appears in more than one shard");
    }
  }
  return Status::OK();
}

Status SafetensorsCheckpoint::Open(const std::string& dir) {
  dir_ = dir;
  tensors_.clear();
  std::string index = JoinPath(dir, "model.safetensors.index.json");
  if (!FileSize(index).ok()) return AddFile(JoinPath(dir, "model.safetensors"));
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(index, 64ull << 20));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    return Status::Corruption(index + ": needs a \"weight_map\" object");
  }
  std::set<std::string> shards;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) return Status::Corruption(index + ": weight_map values must be file names");
    std::string shard = it.value().get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "..") {
      return Status::Corruption(index + ": \"" + shard + "\" is not a plain file name");
    }
    shards.insert(shard);
  }
  for (const std::string& s : shards) RETURN_IF_ERROR(AddFile(JoinPath(dir, s)));
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    const SafetensorsTensor* t = Find(it.key());
    if (t == nullptr || t->file != JoinPath(dir, it.value().get<std::string>())) {
      return Status::Corruption(index + ": tensor \"" + it.key() + "\" is not in the shard it names");
    }
  }
  return Status::OK();
}

const SafetensorsTensor* SafetensorsCheckpoint::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

StatusOr<std::vector<float>> SafetensorsCheckpoint::Read(const std::string& name,
                                                         const std::vector<uint64_t>& shape) const {
  const SafetensorsTensor* t = Find(name);
  if (t == nullptr) return Status::NotFound(dir_ + ": the checkpoint has no tensor \"" + name + "\"");
  if (t->shape != shape) {
    return Status::Corruption(t->file + ": tensor \"" + name + "\" has shape " + ShapeText(t->shape) +
                              ", the config implies " + ShapeText(shape));
  }
  std::vector<float> out(t->elements());
  if (t->dtype == DType::kF32) {
    RETURN_IF_ERROR(ReadRaw(*t, out.data()));
    return out;
  }
  std::vector<uint16_t> raw(t->elements());
  RETURN_IF_ERROR(ReadRaw(*t, raw.data()));
  for (size_t i = 0; i < raw.size(); ++i) {
    out[i] = t->dtype == DType::kF16 ? F16ToFloat(raw[i]) : Bf16ToFloat(raw[i]);
  }
  return out;
}

std::vector<std::string> SafetensorsCheckpoint::Names() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& [name, t] : tensors_) names.push_back(name);
  return names;
}

}  // namespace llmflash

// Reading GGUF files (llama.cpp's model format), versions 2 and 3,
// little-endian. docs/gguf.md says what is read and what is refused.
//
// A file is a header (magic "GGUF", version, tensor count, key/value
// count), the key/values (every GGUF value type, arrays nested up to
// kGgufMaxDepth), the tensor infos (name, shape, ggml type, offset), padding
// to general.alignment, then the data section. Every count, length, shape,
// offset and size is checked against the file size with overflow-checked
// arithmetic before anything is allocated or read, and every error names the
// file and the key or tensor.
//
// Thread-safety: a GgufFile is immutable after Open; Read* may be called from
// any thread.
#ifndef LLMFLASH_FORMAT_GGUF_H_
#define LLMFLASH_FORMAT_GGUF_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "format/gguf_types.h"
#include "llmflash/status.h"

namespace llmflash {

// GGUF value types (the file's numbering).
enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
const char* GgufValueTypeName(GgufValueType t);

inline constexpr int kGgufMaxDepth = 4;  // arrays of arrays of ...

// One metadata value. Scalars: `integer` (every integer type and bool, as
// int64; a uint64 above INT64_MAX is refused) or `real` or `str`. Arrays:
// `elem` and one of ints / reals / strings / arrays, by element type.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  int64_t integer = 0;
  double real = 0;
  std::string str;
  GgufValueType elem = GgufValueType::kUint8;
  std::vector<int64_t> ints;
  std::vector<double> reals;
  std::vector<std::string> strings;
  std::vector<GgufValue> arrays;

  bool is_integer() const;  // any integer type or bool
  bool is_number() const;   // integer or float
  bool is_array() const { return type == GgufValueType::kArray; }
  uint64_t size() const;    // elements of an array
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: ne[0] is the contiguous (row) dimension
  GgmlType type = GgmlType::kF32;
  uint32_t type_id = 0;  // as stored, for messages about types without a size
  uint64_t offset = 0;   // from the start of the data section
  uint64_t bytes = 0;    // 0 when the type's block size is not known here
  uint64_t elements() const;
  uint64_t rows() const;  // product of ne[1..]
};

class GgufFile {
 public:
  static StatusOr<GgufFile> Open(const std::string& path);
  // Parses a file whose first bytes are `prefix` and whose size is
  // `file_size` (>= prefix.size()). When the header runs past `prefix` but
  // not past the file it returns ResourceExhausted (Open reads more and
  // retries). For the fuzzer and tests.
  static StatusOr<GgufFile> Parse(std::string_view prefix, uint64_t file_size, const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t data_start() const { return data_start_; }
  uint32_t alignment() const { return alignment_; }

  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const GgufValue* Find(const std::string& key) const;
  // Typed access. A missing key is NotFound; a value of another type is
  // Corruption naming the key and both types. The *Or forms return `def`
  // when the key is missing (and still refuse a wrong type).
  StatusOr<std::string> GetString(const std::string& key) const;
  StatusOr<int64_t> GetInt(const std::string& key) const;
  StatusOr<double> GetReal(const std::string& key) const;  // any number
  StatusOr<bool> GetBool(const std::string& key) const;
  StatusOr<int64_t> GetIntOr(const std::string& key, int64_t def) const;
  StatusOr<double> GetRealOr(const std::string& key, double def) const;
  StatusOr<bool> GetBoolOr(const std::string& key, bool def) const;
  StatusOr<std::string> GetStringOr(const std::string& key, const std::string& def) const;
  // An array whose elements are of type `elem` (integers: any integer type).
  StatusOr<const GgufValue*> GetArray(const std::string& key, GgufValueType elem) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(const std::string& name) const;

  // Unsupported naming the tensor and its type unless ReadRowsF32 can read it.
  Status CheckReadable(const GgufTensorInfo& t) const;
  // The tensor's bytes as stored (its type must have a known size).
  Status ReadRaw(const GgufTensorInfo& t, void* dst) const;
  // Rows [row, row + n) of the tensor as f32 (see GgmlDequantizable).
  Status ReadRowsF32(const GgufTensorInfo& t, uint64_t row, uint64_t n, float* dst) const;
  // The whole tensor as f32.
  StatusOr<std::vector<float>> ReadF32(const GgufTensorInfo& t) const;

 private:
  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_start_ = 0;
  uint64_t file_size_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// Whether the file starts with GGUF's magic (a cheap sniff; false when it
// cannot be read).
bool LooksLikeGguf(const std::string& path);

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_GGUF_H_

// GGUF reader: every size is checked before it is used.
#include "format/gguf.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "util/checked_math.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxDims = 4;              // GGML_MAX_DIMS
// The header (key/values and tensor infos) is read in growing prefixes up to
// this; real files need a few MB (Gemma 3's vocabulary: ~20 MB).
constexpr uint64_t kMaxHeaderBytes = 1ull << 30;
// Nested arrays cost far more in memory than in the file; a cap keeps a
// hostile file from turning 12 bytes each into a GgufValue each.
constexpr uint64_t kMaxNestedArrays = 1u << 20;
// What Parse returns when the header continues past the bytes it was given.
constexpr char kNeedMore[] = "GGUF header continues past the bytes read";

uint64_t ValueSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: case GgufValueType::kInt8: case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16: case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32: case GgufValueType::kInt32: case GgufValueType::kFloat32: return 4;
    case GgufValueType::kUint64: case GgufValueType::kInt64: case GgufValueType::kFloat64: return 8;
    case GgufValueType::kString: return 8;   // at least its length
    case GgufValueType::kArray: return 12;   // at least its type and count
  }
  return 1;
}

bool KnownValueType(uint32_t t) { return t <= 12; }

// A cursor over the header bytes. `Need` distinguishes running past the
// prefix (OutOfRange: read more) from running past the file (Corruption).
class Cursor {
 public:
  Cursor(std::string_view bytes, uint64_t file_size, const std::string& path)
      : b_(bytes), file_size_(file_size), path_(path) {}

  Status Need(uint64_t n, const std::string& what) {
    uint64_t end;
    if (!CheckedAdd(pos_, n, &end) || end > file_size_) {
      return Status::Corruption(path_ + ": " + what + " runs past the end of the file (" +
                                std::to_string(n) + " bytes at offset " + std::to_string(pos_) + ", file of " +
                                std::to_string(file_size_) + ")");
    }
    if (end > b_.size()) return Status::ResourceExhausted(kNeedMore);
    return Status::OK();
  }
  template <typename T>
  Status Read(T* out, const std::string& what) {
    RETURN_IF_ERROR(Need(sizeof(T), what));
    std::memcpy(out, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::OK();
  }
  Status String(std::string* out, const std::string& what) {
    uint64_t n = 0;
    RETURN_IF_ERROR(Read(&n, what + " (its length)"));
    RETURN_IF_ERROR(Need(n, what + " (a string of " + std::to_string(n) + " bytes)"));
    out->assign(b_.data() + pos_, n);
    pos_ += n;
    return Status::OK();
  }
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return file_size_ - pos_; }

 private:
  std::string_view b_;
  uint64_t file_size_;
  const std::string& path_;
  uint64_t pos_ = 0;
};

class Parser {
 public:
  Parser(Cursor* c, const std::string& path) : c_(*c), path_(path) {}

  Status Scalar(GgufValueType t, const std::string& what, GgufValue* v) {
    v->type = t;
    switch (t) {
      case GgufValueType::kUint8: { uint8_t x; RETURN_IF_ERROR(c_.Read(&x, what)); v->integer = x; return Status::OK(); }
      case GgufValueType::kInt8: { int8_t x; RETURN_IF_ERROR(c_.Read(&x, what)); v->integer = x; return Status::OK(); }
      case GgufValueType::kUint16: { uint16_t x; RETURN_IF_ERROR(c_.Read(&x, what)); v->integer = x; return Status::OK(); }
      case GgufValueType::kInt16: { int16_t x; RETURN_IF_ERROR(c_.Read(&x, what)); v->integer = x; return Status::OK(); }
      case GgufValueType::kUint32: { uint32_t x; RETURN_IF_ERROR(c_.Read(&x, what)); v->integer = x; return Status::OK(); }
      case GgufValueType::kInt32: { int32_t x; RETURN_IF_ERROR(c_.Read(&x, what)); v->integer = x; return Status::OK(); }
      case GgufValueType::kInt64: { int64_t x; RETURN_IF_ERROR(c_.Read(&x, what)); v->integer = x; return Status::OK(); }
      case GgufValueType::kUint64: {
        uint64_t x;
        RETURN_IF_ERROR(c_.Read(&x, what));
        if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return Status::Corruption(path_ + ": " + what + ": uint64 " + std::to_string(x) + " is out of range");
        }
        v->integer = static_cast<int64_t>(x);
        return Status::OK();
      }
      case GgufValueType::kFloat32: { float x; RETURN_IF_ERROR(c_.Read(&x, what)); v->real = x; return Status::OK(); }
      case GgufValueType::kFloat64: { double x; RETURN_IF_ERROR(c_.Read(&x, what)); v->real = x; return Status::OK(); }
      case GgufValueType::kBool: {
        uint8_t x;
        RETURN_IF_ERROR(c_.Read(&x, what));
        if (x > 1) return Status::Corruption(path_ + ": " + what + ": bool " + std::to_string(x) + " is not 0 or 1");
        v->integer = x;
        return Status::OK();
      }
      case GgufValueType::kString: return c_.String(&v->str, what);
      case GgufValueType::kArray: return Array(what, 1, v);
    }
    return Status::Corruption(path_ + ": " + what + ": unknown value type");
  }

  Status Array(const std::string& what, int depth, GgufValue* v) {
    if (depth > kGgufMaxDepth) {
      return Status::Corruption(path_ + ": " + what + ": arrays nested deeper than " + std::to_string(kGgufMaxDepth));
    }
    v->type = GgufValueType::kArray;
    uint32_t elem = 0;
    uint64_t n = 0;
    RETURN_IF_ERROR(c_.Read(&elem, what + " (array type)"));
    if (!KnownValueType(elem)) {
      return Status::Corruption(path_ + ": " + what + ": unknown array element type " + std::to_string(elem));
    }
    v->elem = static_cast<GgufValueType>(elem);
    RETURN_IF_ERROR(c_.Read(&n, what + " (array count)"));
    // Each element takes at least ValueSize bytes of the file: a count the
    // rest of the file cannot hold is refused before anything is reserved.
    const uint64_t min_size = ValueSize(v->elem);
    if (n > c_.remaining() / min_size) {
      return Status::Corruption(path_ + ": " + what + ": array of " + std::to_string(n) + " " +
                                GgufValueTypeName(v->elem) + " values cannot fit in the " +
                                std::to_string(c_.remaining()) + " bytes left in the file");
    }
    RETURN_IF_ERROR(c_.Need(n * (v->elem == GgufValueType::kString || v->elem == GgufValueType::kArray ? 0 : min_size),
                            what));
    GgufValue item;
    for (uint64_t i = 0; i < n; ++i) {
      const std::string& where = what;  // element errors name the key; the index follows
      switch (v->elem) {
        case GgufValueType::kString: {
          if (i == 0) v->strings.reserve(n);
          std::string s;
          RETURN_IF_ERROR(c_.String(&s, where + "[" + std::to_string(i) + "]"));
          v->strings.push_back(std::move(s));
          break;
        }
        case GgufValueType::kArray: {
          if (++nested_ > kMaxNestedArrays) {
            return Status::Corruption(path_ + ": " + what + ": more than " + std::to_string(kMaxNestedArrays) +
                                      " nested arrays");
          }
          GgufValue sub;
          RETURN_IF_ERROR(Array(where + "[" + std::to_string(i) + "]", depth + 1, &sub));
          v->arrays.push_back(std::move(sub));
          break;
        }
        case GgufValueType::kFloat32: case GgufValueType::kFloat64:
          if (i == 0) v->reals.reserve(n);
          RETURN_IF_ERROR(Scalar(v->elem, where, &item));
          v->reals.push_back(item.real);
          break;
        default:
          if (i == 0) v->ints.reserve(n);
          RETURN_IF_ERROR(Scalar(v->elem, where, &item));
          v->ints.push_back(item.integer);
          break;
      }
    }
    return Status::OK();
  }

 private:
  Cursor& c_;
  const std::string& path_;
  uint64_t nested_ = 0;
};

}  // namespace

uint64_t GgufTensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;  // checked when parsed
  return n;
}

uint64_t GgufTensorInfo::rows() const { return ne.empty() ? 0 : elements() / ne[0]; }

StatusOr<GgufFile> GgufFile::Parse(std::string_view prefix, uint64_t file_size, const std::string& path) {
  Cursor c(prefix, file_size, path);
  uint32_t magic = 0;
  RETURN_IF_ERROR(c.Read(&magic, "the magic"));
  if (magic != kMagic) return Status::Corruption(path + ": not a GGUF file (no \"GGUF\" magic)");
  GgufFile f;
  f.path_ = path;
  f.file_size_ = file_size;
  RETURN_IF_ERROR(c.Read(&f.version_, "the version"));
  if (f.version_ == 1) return Status::Unsupported(path + ": GGUF version 1 is not supported (2 and 3 are)");
  if (f.version_ != 2 && f.version_ != 3) {
    // A big-endian file has its version byte-swapped.
    if (f.version_ == 0x02000000 || f.version_ == 0x03000000) {
      return Status::Unsupported(path + ": big-endian GGUF is not supported");
    }
    return Status::Corruption(path + ": GGUF version " + std::to_string(f.version_) + " is not 2 or 3");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  RETURN_IF_ERROR(c.Read(&n_tensors, "the tensor count"));
  RETURN_IF_ERROR(c.Read(&n_kv, "the key/value count"));
  // A key/value takes at least 8 + 4 + 1 bytes, a tensor info 8 + 4 + 4 + 8.
  if (n_kv > c.remaining() / 13) {
    return Status::Corruption(path + ": " + std::to_string(n_kv) + " key/values cannot fit in the file");
  }
  if (n_tensors > c.remaining() / 24) {
    return Status::Corruption(path + ": " + std::to_string(n_tensors) + " tensors cannot fit in the file");
  }
  Parser p(&c, path);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key;
    RETURN_IF_ERROR(c.String(&key, "key " + std::to_string(i)));
    if (key.empty()) return Status::Corruption(path + ": key " + std::to_string(i) + " is empty");
    uint32_t type = 0;
    RETURN_IF_ERROR(c.Read(&type, "the type of \"" + key + "\""));
    if (!KnownValueType(type)) {
      return Status::Corruption(path + ": metadata \"" + key + "\" has unknown value type " + std::to_string(type));
    }
    GgufValue v;
    RETURN_IF_ERROR(p.Scalar(static_cast<GgufValueType>(type), "metadata \"" + key + "\"", &v));
    if (!f.kv_.emplace(key, std::move(v)).second) {
      return Status::Corruption(path + ": metadata key \"" + key + "\" appears twice");
    }
  }
  if (const GgufValue* a = f.Find("general.alignment")) {
    if (a->type != GgufValueType::kUint32 || a->integer == 0 || (a->integer & (a->integer - 1)) != 0) {
      return Status::Corruption(path + ": general.alignment must be a uint32 power of two");
    }
    f.alignment_ = static_cast<uint32_t>(a->integer);
  }
  f.tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    RETURN_IF_ERROR(c.String(&t.name, "the name of tensor " + std::to_string(i)));
    const std::string what = "tensor \"" + t.name + "\"";
    if (t.name.empty()) return Status::Corruption(path + ": tensor " + std::to_string(i) + " has an empty name");
    uint32_t n_dims = 0;
    RETURN_IF_ERROR(c.Read(&n_dims, what + " (dimension count)"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return Status::Corruption(path + ": " + what + " has " + std::to_string(n_dims) + " dimensions (1 to 4)");
    }
    t.ne.resize(n_dims);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      RETURN_IF_ERROR(c.Read(&t.ne[d], what + " (shape)"));
      if (t.ne[d] == 0 || t.ne[d] > (1ull << 40)) {
        return Status::Corruption(path + ": " + what + ": dimension " + std::to_string(d) + " is " +
                                  std::to_string(t.ne[d]) + " (1 to 2^40)");
      }
      if (!CheckedMul(elements, t.ne[d], &elements)) {
        return Status::Corruption(path + ": " + what + ": its shape's element count overflows");
      }
    }
    RETURN_IF_ERROR(c.Read(&t.type_id, what + " (type)"));
    t.type = GgmlTypeFromId(t.type_id);
    RETURN_IF_ERROR(c.Read(&t.offset, what + " (offset)"));
    if (t.offset % f.alignment_ != 0) {
      return Status::Corruption(path + ": " + what + " offset " + std::to_string(t.offset) +
                                " is not a multiple of the alignment " + std::to_string(f.alignment_));
    }
    const GgmlTypeTraits tr = GgmlTraits(t.type);
    if (tr.block_elements != 0) {
      if (t.ne[0] % tr.block_elements != 0) {
        return Status::Corruption(path + ": " + what + " rows of " + std::to_string(t.ne[0]) +
                                  " elements are not whole " + tr.name + " blocks of " +
                                  std::to_string(tr.block_elements));
      }
      if (!CheckedMul(elements / tr.block_elements, tr.block_bytes, &t.bytes)) {
        return Status::Corruption(path + ": " + what + ": its byte size overflows");
      }
    }
    if (f.tensor_index_.count(t.name) > 0) {
      return Status::Corruption(path + ": tensor \"" + t.name + "\" appears twice");
    }
    f.tensor_index_[t.name] = f.tensors_.size();
    f.tensors_.push_back(std::move(t));
  }
  f.data_start_ = RoundUp(c.pos(), f.alignment_);
  if (f.data_start_ > file_size && !f.tensors_.empty()) {
    return Status::Corruption(path + ": the data section starts past the end of the file");
  }
  const uint64_t data_bytes = file_size >= f.data_start_ ? file_size - f.data_start_ : 0;
  // Every tensor lies inside the data section, and no two overlap.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& t : f.tensors_) {
    uint64_t end;
    if (!CheckedAdd(t.offset, t.bytes, &end) || end > data_bytes || (t.bytes == 0 && t.offset > data_bytes)) {
      return Status::Corruption(path + ": tensor \"" + t.name + "\" (" + std::to_string(t.bytes) +
                                " bytes at data offset " + std::to_string(t.offset) +
                                ") runs past the end of the file (data section of " + std::to_string(data_bytes) +
                                " bytes)");
    }
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->offset < by_offset[i - 1]->offset + by_offset[i - 1]->bytes) {
      return Status::Corruption(path + ": tensors \"" + by_offset[i - 1]->name + "\" and \"" + by_offset[i]->name +
                                "\" overlap");
    }
  }
  return f;
}

StatusOr<GgufFile> GgufFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(uint64_t size, FileSize(path));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": open failed: " + std::strerror(errno));
  std::string buf;
  uint64_t want = std::min<uint64_t>(size, 16ull << 20);
  for (;;) {
    buf.resize(want);
    Status st = PreadExact(fd, path, 0, buf.data(), want);
    if (!st.ok()) {
      close(fd);
      return st;
    }
    StatusOr<GgufFile> f = Parse(buf, size, path);
    const bool need_more = !f.ok() && f.status().code() == StatusCode::kResourceExhausted &&
                           f.status().message() == kNeedMore;
    if (!need_more || want == size) {
      close(fd);
      return f;
    }
    if (want >= kMaxHeaderBytes) {
      close(fd);
      return Status::Unsupported(path + ": the GGUF header is larger than " +
                                 std::to_string(kMaxHeaderBytes >> 20) + " MiB");
    }
    want = std::min<uint64_t>({size, want * 4, kMaxHeaderBytes});
  }
}

const GgufTensorInfo* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Status GgufFile::ReadRaw(const GgufTensorInfo& t, void* dst) const {
  if (t.bytes == 0) {
    return Status::Unsupported(path_ + ": tensor \"" + t.name + "\" has ggml type " + std::to_string(t.type_id) +
                               ", whose layout is not known here");
  }
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path_ + ": open failed: " + std::strerror(errno));
  Status st = PreadExact(fd, path_, data_start_ + t.offset, dst, t.bytes);
  close(fd);
  return st;
}

Status GgufFile::CheckReadable(const GgufTensorInfo& t) const {
  if (GgmlTraits(t.type).dequantizable) return Status::OK();
  std::string type = t.type == GgmlType::kUnknown ? "ggml type " + std::to_string(t.type_id) : GgmlTypeName(t.type);
  return Status::Unsupported(path_ + ": tensor \"" + t.name + "\" is " + type +
                             ", which llmflash does not import (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
                             "Q4_K, Q5_K, Q6_K)");
}

Status GgufFile::ReadRowsF32(const GgufTensorInfo& t, uint64_t row, uint64_t n, float* dst) const {
  RETURN_IF_ERROR(CheckReadable(t));
  const GgmlTypeTraits tr = GgmlTraits(t.type);
  if (row > t.rows() || n > t.rows() - row) return Status::Internal(t.name + ": rows out of range");
  const uint64_t row_bytes = t.ne[0] / tr.block_elements * tr.block_bytes;
  std::string raw(row_bytes * n, '\0');
  int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path_ + ": open failed: " + std::strerror(errno));
  Status st = PreadExact(fd, path_, data_start_ + t.offset + row * row_bytes, raw.data(), raw.size());
  close(fd);
  RETURN_IF_ERROR(st);
  for (uint64_t r = 0; r < n; ++r) DequantizeGgmlRow(t.type, raw.data() + r * row_bytes, t.ne[0], dst + r * t.ne[0]);
  return Status::OK();
}

StatusOr<std::vector<float>> GgufFile::ReadF32(const GgufTensorInfo& t) const {
  std::vector<float> out(t.elements());
  RETURN_IF_ERROR(ReadRowsF32(t, 0, t.rows(), out.data()));
  return out;
}

bool LooksLikeGguf(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  uint32_t magic = 0;
  const bool ok = pread(fd, &magic, 4, 0) == 4 && magic == kMagic;
  close(fd);
  return ok;
}

}  // namespace llmflash

// GGUF metadata values: their type names and the typed getters, which refuse
// a wrong type by name and never convert.
#include "format/gguf.h"

namespace llmflash {
namespace {

std::string TypeMismatch(const std::string& path, const std::string& key, const char* want, const GgufValue& v) {
  std::string got = GgufValueTypeName(v.type);
  if (v.is_array()) got += std::string(" of ") + GgufValueTypeName(v.elem);
  return path + ": metadata \"" + key + "\" is " + got + ", not " + want;
}

}  // namespace

const char* GgufValueTypeName(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8: return "uint8";
    case GgufValueType::kInt8: return "int8";
    case GgufValueType::kUint16: return "uint16";
    case GgufValueType::kInt16: return "int16";
    case GgufValueType::kUint32: return "uint32";
    case GgufValueType::kInt32: return "int32";
    case GgufValueType::kFloat32: return "float32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "uint64";
    case GgufValueType::kInt64: return "int64";
    case GgufValueType::kFloat64: return "float64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufValueType::kFloat32: case GgufValueType::kFloat64: case GgufValueType::kString:
    case GgufValueType::kArray:
      return false;
    default:
      return true;
  }
}

bool GgufValue::is_number() const {
  return is_integer() || type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64;
}

uint64_t GgufValue::size() const {
  return ints.size() + reals.size() + strings.size() + arrays.size();
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

StatusOr<std::string> GgufFile::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Status::NotFound(path_ + ": metadata \"" + key + "\" is missing");
  if (v->type != GgufValueType::kString) return Status::Corruption(TypeMismatch(path_, key, "a string", *v));
  return v->str;
}

StatusOr<int64_t> GgufFile::GetInt(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Status::NotFound(path_ + ": metadata \"" + key + "\" is missing");
  if (!v->is_integer() || v->type == GgufValueType::kBool) {
    return Status::Corruption(TypeMismatch(path_, key, "an integer", *v));
  }
  return v->integer;
}

StatusOr<double> GgufFile::GetReal(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Status::NotFound(path_ + ": metadata \"" + key + "\" is missing");
  if (!v->is_number() || v->type == GgufValueType::kBool) {
    return Status::Corruption(TypeMismatch(path_, key, "a number", *v));
  }
  return v->is_integer() ? static_cast<double>(v->integer) : v->real;
}

StatusOr<bool> GgufFile::GetBool(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Status::NotFound(path_ + ": metadata \"" + key + "\" is missing");
  if (v->type != GgufValueType::kBool) return Status::Corruption(TypeMismatch(path_, key, "a bool", *v));
  return v->integer != 0;
}

StatusOr<int64_t> GgufFile::GetIntOr(const std::string& key, int64_t def) const {
  return Find(key) == nullptr ? StatusOr<int64_t>(def) : GetInt(key);
}
StatusOr<double> GgufFile::GetRealOr(const std::string& key, double def) const {
  return Find(key) == nullptr ? StatusOr<double>(def) : GetReal(key);
}
StatusOr<bool> GgufFile::GetBoolOr(const std::string& key, bool def) const {
  return Find(key) == nullptr ? StatusOr<bool>(def) : GetBool(key);
}
StatusOr<std::string> GgufFile::GetStringOr(const std::string& key, const std::string& def) const {
  return Find(key) == nullptr ? StatusOr<std::string>(def) : GetString(key);
}

StatusOr<const GgufValue*> GgufFile::GetArray(const std::string& key, GgufValueType elem) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Status::NotFound(path_ + ": metadata \"" + key + "\" is missing");
  GgufValue want;
  want.type = elem;
  const bool integer_ok = want.is_integer() && elem != GgufValueType::kBool;
  bool ok = v->is_array() && (v->elem == elem || v->size() == 0);
  if (v->is_array() && integer_ok) {
    GgufValue got;
    got.type = v->elem;
    ok = ok || (got.is_integer() && v->elem != GgufValueType::kBool);
  }
  if (!ok) {
    return Status::Corruption(TypeMismatch(path_, key, (std::string("an array of ") + GgufValueTypeName(elem)).c_str(),
                                           *v));
  }
  return v;
}

}  // namespace llmflash

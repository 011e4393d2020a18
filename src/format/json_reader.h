// JsonReader: typed, range-checked access to one JSON object, with errors
// that name the file and the key. Used by every JSON parser in format/.
#ifndef LLMFLASH_FORMAT_JSON_READER_H_
#define LLMFLASH_FORMAT_JSON_READER_H_

#include <nlohmann/json.hpp>
#include <string>

#include "llmflash/status.h"
#include "util/macros.h"

namespace llmflash {

class JsonReader {
 public:
  JsonReader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {}

  Status Int(const char* key, int64_t lo, int64_t hi, int* out) const {
    const nlohmann::json* v;
    RETURN_IF_ERROR(Get(key, &v));
    if (!v->is_number_integer()) return Bad(key, "must be an integer");
    int64_t x = v->get<int64_t>();
    if (x < lo || x > hi) {
      return Bad(key, "is " + std::to_string(x) + ", outside [" +
                          std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    *out = static_cast<int>(x);
    return Status::OK();
  }
  Status U64(const char* key, uint64_t* out) const {
    const nlohmann::json* v;
    RETURN_IF_ERROR(Get(key, &v));
    if (!v->is_number_unsigned()) return Bad(key, "must be a non-negative integer");
    *out = v->get<uint64_t>();
    return Status::OK();
  }
  Status Float(const char* key, float* out) const {
    const nlohmann::json* v;
    RETURN_IF_ERROR(Get(key, &v));
    if (!v->is_number()) return Bad(key, "must be a number");
    *out = v->get<float>();
    return Status::OK();
  }
  Status Bool(const char* key, bool* out) const {
    const nlohmann::json* v;
    RETURN_IF_ERROR(Get(key, &v));
    if (!v->is_boolean()) return Bad(key, "must be true or false");
    *out = v->get<bool>();
    return Status::OK();
  }
  Status String(const char* key, std::string* out) const {
    const nlohmann::json* v;
    RETURN_IF_ERROR(Get(key, &v));
    if (!v->is_string()) return Bad(key, "must be a string");
    *out = v->get<std::string>();
    return Status::OK();
  }
  Status Get(const char* key, const nlohmann::json** out) const {
    if (!j_.is_object()) return Status::Corruption(where_ + " must be an object");
    auto it = j_.find(key);
    if (it == j_.end()) return Status::Corruption(where_ + ": missing \"" + key + "\"");
    *out = &*it;
    return Status::OK();
  }
  Status Bad(const char* key, const std::string& what) const {
    return Status::Corruption(where_ + ": \"" + key + "\" " + what);
  }

 private:
  const nlohmann::json& j_;
  std::string where_;
};

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_JSON_READER_H_

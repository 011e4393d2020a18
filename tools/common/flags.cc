// Flag and size parsing.
#include "tools/common/flags.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace llmflash::tools {

Flags::Flags(int argc, char** argv, int first, std::vector<std::string> bool_flags) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {  // keep scanning: a later --help still counts
      if (error_.empty()) error_ = "unexpected argument \"" + arg + "\"";
      continue;
    }
    std::string name = arg.substr(2), value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (std::find(bool_flags.begin(), bool_flags.end(), name) != bool_flags.end()) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      error_ = "flag --" + name + " needs a value";
      return;
    }
    values_[name] = value;
  }
}

Status Flags::Check(const std::vector<std::string>& known) const {
  if (!error_.empty()) return Status::InvalidArgument(error_);
  for (const auto& [name, value] : values_) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return Status::InvalidArgument("unknown flag --" + name);
    }
  }
  return Status::OK();
}

std::string Flags::Get(const std::string& name, const std::string& def) const {
  auto it = values_.find(name);
  return it == values_.end() ? def : it->second;
}

StatusOr<int64_t> Flags::GetInt(const std::string& name, int64_t def) const {
  if (!Has(name)) return def;
  const std::string& v = values_.at(name);
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0) {
    return Status::InvalidArgument("--" + name + " expects an integer, got \"" + v + "\"");
  }
  return static_cast<int64_t>(x);
}

StatusOr<double> Flags::GetDouble(const std::string& name, double def) const {
  if (!Has(name)) return def;
  const std::string& v = values_.at(name);
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x)) {
    return Status::InvalidArgument("--" + name + " expects a number, got \"" + v + "\"");
  }
  return x;
}

StatusOr<std::vector<double>> Flags::GetDoubles(const std::string& name) const {
  std::vector<double> out;
  if (!Has(name)) return out;
  const std::string& v = values_.at(name);
  size_t begin = 0;
  while (begin <= v.size()) {
    size_t end = v.find(',', begin);
    if (end == std::string::npos) end = v.size();
    const std::string item = v.substr(begin, end - begin);
    char* stop = nullptr;
    double x = std::strtod(item.c_str(), &stop);
    if (item.empty() || *stop != '\0' || !std::isfinite(x)) {
      return Status::InvalidArgument("--" + name + " expects numbers separated by commas, got \"" + v + "\"");
    }
    out.push_back(x);
    begin = end + 1;
  }
  return out;
}

Status Flags::Require(const std::string& name) const {
  if (!Has(name) || values_.at(name).empty()) {
    return Status::InvalidArgument("missing required flag --" + name);
  }
  return Status::OK();
}

StatusOr<KvCacheType> ParseKvCacheType(const std::string& text) {
  if (text == "f16") return KvCacheType::kF16;
  if (text == "f32") return KvCacheType::kF32;
  if (text == "q8_0") return KvCacheType::kQ8_0;
  return Status::InvalidArgument("--kv-cache must be f16, f32 or q8_0, not \"" + text + "\"");
}

StatusOr<uint64_t> ParseByteSize(const std::string& text, uint64_t whole) {
  auto bad = [&] {
    return Status::InvalidArgument("\"" + text + "\" is not a size (examples: 1048576, 64M, 1.5G, 50%)");
  };
  if (text.empty()) return bad();
  char* end = nullptr;
  double x = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !std::isfinite(x) || x < 0) return bad();
  std::string suffix(end);
  double mult = 1;
  if (suffix == "%") {
    if (x > 1000) return bad();
    return static_cast<uint64_t>(std::llround(whole * x / 100.0));
  }
  if (suffix == "" || suffix == "B") mult = 1;
  else if (suffix == "K" || suffix == "KiB" || suffix == "k") mult = 1024.0;
  else if (suffix == "M" || suffix == "MiB") mult = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "GiB") mult = 1024.0 * 1024 * 1024;
  else return bad();
  double bytes = x * mult;
  if (bytes > 1.8e19) return bad();
  return static_cast<uint64_t>(std::llround(bytes));
}

}  // namespace llmflash::tools

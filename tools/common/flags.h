// Command-line parsing shared by the llmflash CLI and llmflash-bench:
// "--name value" / "--name=value" flags and byte sizes with suffixes.
#ifndef LLMFLASH_TOOLS_COMMON_FLAGS_H_
#define LLMFLASH_TOOLS_COMMON_FLAGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "llmflash/options.h"
#include "llmflash/status.h"

namespace llmflash::tools {

class Flags {
 public:
  // Parses argv[first..]. `bool_flags` take no value. Unknown flags are
  // reported by Check(). "--help" or "-h" anywhere asks for help (help()).
  Flags(int argc, char** argv, int first, std::vector<std::string> bool_flags = {});

  // Fails naming any flag not in `known`, or a parse error.
  Status Check(const std::vector<std::string>& known) const;

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& def = "") const;
  StatusOr<int64_t> GetInt(const std::string& name, int64_t def) const;
  StatusOr<double> GetDouble(const std::string& name, double def) const;
  // A comma-separated list of numbers ("0.5,0.4"); empty when absent.
  StatusOr<std::vector<double>> GetDoubles(const std::string& name) const;
  Status Require(const std::string& name) const;
  bool help() const { return help_; }

 private:
  std::map<std::string, std::string> values_;
  std::string error_;
  bool help_ = false;
};

// --kv-cache's value: "f16", "f32" or "q8_0".
StatusOr<KvCacheType> ParseKvCacheType(const std::string& text);

// A size: "123", "64K", "64M", "1.5G" (powers of 1024), or "50%" of `whole`.
StatusOr<uint64_t> ParseByteSize(const std::string& text, uint64_t whole);

}  // namespace llmflash::tools

#endif  // LLMFLASH_TOOLS_COMMON_FLAGS_H_

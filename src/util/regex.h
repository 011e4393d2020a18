// Regex: a compiled PCRE2 pattern over UTF-8 text with Unicode classes
// (\p{L}, \p{N}, \s as Unicode defines them), for the Split pre-tokenizers
// that tokenizer.json files carry. Invalid UTF-8 in the subject never
// matches and never fails: those bytes fall between matches.
//
// Thread-safety: immutable after Compile; FindAll may run concurrently.
#ifndef LLMFLASH_UTIL_REGEX_H_
#define LLMFLASH_UTIL_REGEX_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmflash/status.h"

namespace llmflash {

class Regex {
 public:
  // `what` names the pattern's origin in errors ("tokenizer.json: pre_tokenizer").
  static StatusOr<Regex> Compile(const std::string& pattern, const std::string& what);

  // Leftmost non-overlapping matches as [begin, end) byte ranges. An empty
  // match advances by one code point, as Oniguruma's find_iter does.
  std::vector<std::pair<size_t, size_t>> FindAll(std::string_view text) const;

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
};

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_REGEX_H_

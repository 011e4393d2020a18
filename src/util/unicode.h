// Unicode normalization (utf8proc) for the normalizers of tokenizer.json.
#ifndef LLMFLASH_UTIL_UNICODE_H_
#define LLMFLASH_UTIL_UNICODE_H_

#include <string>
#include <string_view>

namespace llmflash {

enum class UnicodeForm { kNfc, kNfd, kNfkc, kNfkd };

// `text` in the given normalization form. Text that is not valid UTF-8 is
// returned unchanged: a tokenizer must still round-trip its bytes.
std::string NormalizeUnicode(std::string_view text, UnicodeForm form);

// Lowercase by Unicode's simple case mapping (valid UTF-8; other bytes kept).
std::string LowercaseUnicode(std::string_view text);

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_UNICODE_H_

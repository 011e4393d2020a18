// Normalization forms and case mapping through utf8proc.
#include "util/unicode.h"

#include <utf8proc.h>

#include <cstdlib>

#include "util/utf8.h"

namespace llmflash {

std::string NormalizeUnicode(std::string_view text, UnicodeForm form) {
  if (text.empty()) return std::string();
  int options = UTF8PROC_STABLE;
  switch (form) {
    case UnicodeForm::kNfc: options |= UTF8PROC_COMPOSE; break;
    case UnicodeForm::kNfd: options |= UTF8PROC_DECOMPOSE; break;
    case UnicodeForm::kNfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case UnicodeForm::kNfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                    static_cast<utf8proc_ssize_t>(text.size()), &out,
                                    static_cast<utf8proc_option_t>(options));
  if (n < 0) return std::string(text);  // not valid UTF-8
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

std::string LowercaseUnicode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t start = i;
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t len = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data()) + i,
                                            static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
    if (len <= 0) {  // invalid: keep the byte
      out += text[i++];
      continue;
    }
    i += static_cast<size_t>(len);
    utf8proc_int32_t lower = utf8proc_tolower(cp);
    if (lower == cp) out.append(text.substr(start, i - start)); else out += EncodeUtf8(static_cast<uint32_t>(lower));
  }
  return out;
}

}  // namespace llmflash

// UTF-8 decoding and encoding (Unicode classes are PCRE2's and utf8proc's: util/regex.h, util/unicode.h).
#ifndef LLMFLASH_UTIL_UTF8_H_
#define LLMFLASH_UTIL_UTF8_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace llmflash {

// Decodes the code point at *i and advances *i. Invalid bytes decode to
// themselves (0x80..0xFF as a code point of one byte), so nothing is lost.
inline uint32_t DecodeUtf8(std::string_view s, size_t* i) {
  const auto c = static_cast<unsigned char>(s[*i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || *i + len > s.size()) { ++*i; return c; }
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len; ++k) {
    auto cc = static_cast<unsigned char>(s[*i + k]);
    if ((cc & 0xC0) != 0x80) { ++*i; return c; }
    cp = (cp << 6) | (cc & 0x3F);
  }
  *i += len;
  return cp;
}

inline std::string EncodeUtf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_UTF8_H_

// llama2.c tokenizer.bin parsing with bounds checks on every field.
#include "format/llama2c_tokenizer_file.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace llmflash {

StatusOr<Llama2cVocab> ParseLlama2cTokenizer(const std::string& bytes,
                                             int vocab_size,
                                             const std::string& path) {
  size_t pos = 0;
  auto read = [&](void* dst, size_t n) {
    if (bytes.size() - pos < n) return false;
    std::memcpy(dst, bytes.data() + pos, n);
    pos += n;
    return true;
  };
  Llama2cVocab v;
  int32_t max_len;
  if (!read(&max_len, 4)) return Status::Corruption(path + ": too short for a tokenizer header");
  if (max_len <= 0 || max_len > (1 << 16)) {
    return Status::Corruption(path + ": max_token_length " + std::to_string(max_len) +
                              " is not in [1, 65536]");
  }
  v.max_token_length = max_len;
  if (vocab_size <= 0 || static_cast<size_t>(vocab_size) > bytes.size() / 8) {
    return Status::Corruption(path + ": file is too small for " + std::to_string(vocab_size) +
                              " tokens");
  }
  v.pieces.reserve(vocab_size);
  v.scores.reserve(vocab_size);
  for (int i = 0; i < vocab_size; ++i) {
    float score;
    int32_t len;
    if (!read(&score, 4) || !read(&len, 4)) {
      return Status::Corruption(path + ": ends inside the entry of token " + std::to_string(i) +
                                " of " + std::to_string(vocab_size));
    }
    if (len < 0 || len > max_len || bytes.size() - pos < static_cast<size_t>(len)) {
      return Status::Corruption(path + ": token " + std::to_string(i) + " has length " +
                                std::to_string(len) + " (max " + std::to_string(max_len) +
                                ", bytes left " + std::to_string(bytes.size() - pos) + ")");
    }
    if (!std::isfinite(score)) {
      return Status::Corruption(path + ": token " + std::to_string(i) + " has a non-finite score");
    }
    v.pieces.emplace_back(bytes.data() + pos, len);
    v.scores.push_back(score);
    pos += len;
  }
  if (pos != bytes.size()) {
    return Status::Corruption(path + ": " + std::to_string(bytes.size() - pos) +
                              " unexpected bytes after the last token (vocab_size mismatch?)");
  }
  return v;
}

}  // namespace llmflash

// Llama2cTokenizer: llama2.c's score-driven BPE with byte fallback.
//
// Encode follows llama2.c's encode(): optional BOS, a dummy-prefix " " token
// when the text is non-empty, one token per UTF-8 code point (or its bytes
// as <0xXX> tokens when the code point is not in the vocabulary), then
// repeatedly merging the adjacent pair whose concatenation is the
// highest-scoring vocabulary entry (leftmost on ties). The merge loop uses a
// heap instead of llama2.c's rescans, so long prompts cost O(n log n); the
// result is the same. Unlike llama2.c, a NUL byte does not end the text.
//
// Thread-safety: immutable after Create; share freely.
#ifndef LLMFLASH_MODEL_TOKENIZER_H_
#define LLMFLASH_MODEL_TOKENIZER_H_

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/llama2c_tokenizer_file.h"
#include "llmflash/status.h"

namespace llmflash {

class Llama2cTokenizer {
 public:
  // Builds from a parsed tokenizer.bin; bos/eos are token ids.
  static StatusOr<Llama2cTokenizer> Create(Llama2cVocab vocab, int bos_id, int eos_id);

  std::vector<int> Encode(std::string_view text, bool add_bos, bool add_eos) const;
  // Text of `token` following `prev`: strips the leading space after BOS and
  // turns <0xXX> into the raw byte.
  std::string Decode(int prev, int token) const;

  int vocab_size() const { return static_cast<int>(vocab_.pieces.size()); }
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }

 private:
  int Lookup(std::string_view s) const;

  Llama2cVocab vocab_;
  std::unordered_map<std::string_view, int> index_;  // views into vocab_
  std::vector<int> byte_token_;  // byte -> id of "<0xXX>" (or -1)
  int bos_id_ = 1;
  int eos_id_ = 2;
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_TOKENIZER_H_

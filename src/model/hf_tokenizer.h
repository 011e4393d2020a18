// HfTokenizer: Hugging Face BPE tokenizers from tokenizer.json (old and new
// serializations) or vocab.json + merges.txt, in the two flavours LLMs use:
//
//   byte-level (GPT-2, OPT): text is split by GPT-2's pre-tokenization rule,
//     each piece's bytes are mapped to printable characters, then merged by
//     rank;
//   SentencePiece-style (Llama): spaces become "▁", a "▁" is prepended, the
//     text's characters are merged by rank, and characters missing from the
//     vocabulary fall back to <0xXX> byte tokens.
//
// Added and special tokens are matched literally before either.
// GPT-2's pattern uses Unicode letter/number classes; they are approximated
// by code-point ranges (Latin, Greek, Cyrillic, Arabic, Hebrew, Indic, CJK,
// Hangul, ...). Splits only affect which tokens are chosen, never the round
// trip: decoding always gives back the exact bytes.
//
// Thread-safety: immutable after Load; share freely.
#ifndef LLMFLASH_MODEL_HF_TOKENIZER_H_
#define LLMFLASH_MODEL_HF_TOKENIZER_H_

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "llmflash/status.h"

namespace llmflash {

class HfTokenizer {
 public:
  // `path`: a tokenizer.json file, or a directory holding tokenizer.json or
  // vocab.json + merges.txt.
  static StatusOr<HfTokenizer> Load(const std::string& path);
  // Parses tokenizer.json text; `path` names it in errors.
  static StatusOr<HfTokenizer> FromJson(const std::string& text, const std::string& path);

  std::vector<int> Encode(std::string_view text) const;
  // The bytes of one token (for streaming output).
  std::string TokenBytes(int id) const;
  std::string Decode(const std::vector<int>& ids) const;

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  bool byte_level() const { return byte_level_; }
  // Id of a token's text, or -1.
  int Find(const std::string& piece) const;

 private:
  Status Init(const std::string& json_text, const std::string& path);
  Status InitFromVocabMerges(const std::string& dir);
  void AddMerge(const std::string& a, const std::string& b);
  // BPE over the initial symbols; appends the resulting ids.
  void Bpe(std::vector<std::string> symbols, std::vector<int>* out) const;
  void EncodePlain(std::string_view text, bool first, std::vector<int>* out) const;

  bool byte_level_ = true;
  bool prefix_space_ = false;   // byte-level: add a space before the text
  bool byte_fallback_ = false;  // SentencePiece: <0xXX> for unknown characters
  int unk_id_ = -1;
  std::unordered_map<std::string, int> vocab_;
  std::vector<std::string> pieces_;             // id -> token text
  std::unordered_map<std::string, int> ranks_;  // "a\xff" + "b" -> merge rank
  std::vector<std::string> added_;              // added tokens, longest first
  std::vector<bool> is_added_;                  // per id
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_HF_TOKENIZER_H_

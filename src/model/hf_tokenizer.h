// HfTokenizer: a Hugging Face tokenizer.json executed as written, or GPT-2's
// vocab.json + merges.txt.
//
// Encoding runs the file's pipeline in Hugging Face's order:
//   1. added tokens are split off the raw text (those with normalized=false),
//   2. each remaining segment goes through the normalizer (NFC/NFD/NFKC/NFKD,
//      Lowercase, Prepend, Replace, Strip, Sequence),
//   3. added tokens with normalized=true are split off the normalized text
//      (matched in their normalized form),
//   4. the pre-tokenizer (Split with string or regex patterns and every
//      behavior, ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit,
//      Punctuation, Sequence) cuts segments into words; regexes run on PCRE2
//      with Unicode classes,
//   5. the BPE model merges each word by rank (ignore_merges, byte_fallback,
//      unk and fuse_unk honoured).
// Decoding runs the file's decoder (ByteLevel, Replace, ByteFallback, Fuse,
// Strip, Metaspace, Sequence) over the tokens; added tokens are emitted as
// their text. Unlike Hugging Face, invalid UTF-8 is never replaced by U+FFFD:
// decoding gives back bytes, so any input text round-trips exactly.
//
// A component this class does not implement is an Unsupported error naming
// it, never a silent approximation.
//
// Special tokens: by default text such as "<|eot_id|>" is plain text and is
// tokenized like any other characters; `parse_special` matches special
// added tokens (what a chat template's output needs). Non-special added
// tokens are always matched, as Hugging Face does.
//
// Thread-safety: immutable after Load; copies share their tables.
#ifndef LLMFLASH_MODEL_HF_TOKENIZER_H_
#define LLMFLASH_MODEL_HF_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
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

  // The ids of `text`, without the post-processor's tokens (see prefix_ids).
  std::vector<int> Encode(std::string_view text, bool parse_special = false) const;
  // The text of a sequence of ids, through the file's decoder.
  std::string Decode(const std::vector<int>& ids) const;
  // The bytes `token` adds after `prev` (-1, or a special token, at the
  // start of a text): for streaming, one token at a time.
  std::string DecodeNext(int prev, int token) const;

  int vocab_size() const;
  bool byte_level() const;
  bool IsSpecial(int id) const;
  // Id of a token's text, or -1.
  int Find(const std::string& piece) const;
  // What the post-processor (TemplateProcessing, RobertaProcessing,
  // BertProcessing) puts before and after a single text, e.g. {<s>}.
  const std::vector<int>& prefix_ids() const;
  const std::vector<int>& suffix_ids() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_HF_TOKENIZER_H_

// The tokenizer and chat template a GGUF file carries in its metadata,
// turned into what the rest of llmflash reads: a tokenizer.json (so one
// tokenizer implementation, model/hf_tokenizer, runs both routes), the
// BOS/stop ids and the chat template (docs/gguf.md, "Tokenizer").
//
//   tokenizer.ggml.model "llama": SentencePiece BPE as llama.cpp runs it:
//     spaces become U+2581, one is prepended (tokenizer.ggml.add_space_prefix,
//     default true), pieces merge by score (merges are derived from the
//     scores, highest first, as Hugging Face's converter derives them),
//     unknown bytes fall back to <0xXX> tokens.
//   tokenizer.ggml.model "gpt2": byte-level BPE with tokenizer.ggml.merges;
//     tokenizer.ggml.pre names the pre-tokenizer (gpt-2, llama-bpe, qwen2,
//     ...). A pre-tokenizer not listed is Unsupported naming it.
// Token types (tokenizer.ggml.token_type): CONTROL and UNKNOWN tokens are
// special (matched in text only when asked); USER_DEFINED ones are always
// matched, as llama.cpp does.
//
// Thread-safety: pure functions.
#ifndef LLMFLASH_FORMAT_GGUF_TOKENIZER_H_
#define LLMFLASH_FORMAT_GGUF_TOKENIZER_H_

#include <string>
#include <vector>

#include "format/gguf.h"
#include "llmflash/status.h"

namespace llmflash {

struct GgufTokenizer {
  std::string model;           // "llama" or "gpt2"
  std::string pre;             // tokenizer.ggml.pre ("" when absent)
  std::string tokenizer_json;  // the equivalent tokenizer.json text
  int vocab_size = 0;
  int bos_id = -1;             // -1: the model takes no BOS (add_bos_token false)
  std::vector<int> stop_ids;   // end-of-sequence first, then end-of-turn tokens
  std::string chat_template;   // tokenizer.chat_template, or ""
  std::string bos_text, eos_text;
};

// NotFound when the file has no tokenizer (no tokenizer.ggml.model, or
// "no_vocab"); Unsupported for a tokenizer model or pre-tokenizer not
// listed above; Corruption naming the key for inconsistent arrays or ids.
StatusOr<GgufTokenizer> TokenizerFromGguf(const GgufFile& f);

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_GGUF_TOKENIZER_H_

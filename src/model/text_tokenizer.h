// TextTokenizer: what a Session needs from a tokenizer, whichever format the
// model ships (llama2.c's tokenizer.bin or a Hugging Face tokenizer.json).
//
// Thread-safety: implementations are immutable; share freely.
#ifndef LLMFLASH_MODEL_TEXT_TOKENIZER_H_
#define LLMFLASH_MODEL_TEXT_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/hf_tokenizer.h"
#include "model/tokenizer.h"

namespace llmflash {

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // `parse_special`: special tokens written in the text ("<|eot_id|>") are
  // those tokens, not characters (for text a chat template rendered).
  virtual std::vector<int> Encode(std::string_view text, bool add_bos, bool parse_special = false) const = 0;
  // Bytes of `token` following `prev` (the space a tokenizer adds at the
  // start of a text is dropped after BOS).
  virtual std::string Decode(int prev, int token) const = 0;
  virtual int bos_id() const = 0;  // -1: the model takes none
  // Whether generating `id` ends the text (every end-of-turn token).
  virtual bool IsStop(int id) const = 0;
};

std::unique_ptr<TextTokenizer> WrapLlama2c(Llama2cTokenizer t);
std::unique_ptr<TextTokenizer> WrapHf(HfTokenizer t, int bos_id, std::vector<int> stop_ids);

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_TEXT_TOKENIZER_H_

// Parser for llama2.c's tokenizer.bin: an int32 max_token_length, then for
// each token a float32 score, an int32 byte length and the bytes.
//
// Every length is checked against the bytes that remain, so a hostile file
// cannot cause an out-of-bounds read or an oversized allocation.
#ifndef LLMFLASH_FORMAT_LLAMA2C_TOKENIZER_FILE_H_
#define LLMFLASH_FORMAT_LLAMA2C_TOKENIZER_FILE_H_

#include <string>
#include <vector>

#include "llmflash/status.h"

namespace llmflash {

struct Llama2cVocab {
  int max_token_length = 0;
  std::vector<std::string> pieces;
  std::vector<float> scores;
};

// Parses `bytes` expecting exactly `vocab_size` tokens; `path` names the file.
StatusOr<Llama2cVocab> ParseLlama2cTokenizer(const std::string& bytes,
                                             int vocab_size,
                                             const std::string& path);

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_LLAMA2C_TOKENIZER_FILE_H_

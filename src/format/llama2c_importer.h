// The llama2.c checkpoint header: seven int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; negative vocab_size = separate
// classifier). Exposed for the fuzzer; ConvertLlama2c (llmflash/convert.h)
// is the importer itself.
#ifndef LLMFLASH_FORMAT_LLAMA2C_IMPORTER_H_
#define LLMFLASH_FORMAT_LLAMA2C_IMPORTER_H_

#include <cstdint>
#include <string>

#include "llmflash/status.h"

namespace llmflash {

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

// Checks the header's fields and that `file_size` is exactly what they imply.
Status ValidateLlama2cHeader(const Llama2cHeader& h, uint64_t file_size,
                             const std::string& path, bool* shared_classifier);

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_LLAMA2C_IMPORTER_H_

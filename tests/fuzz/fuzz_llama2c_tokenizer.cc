// libFuzzer target: llama2.c tokenizer.bin parsing, then encoding and
// decoding with whatever vocabulary parsed. The first two bytes choose the
// vocabulary size the file is checked against.
#include <cstddef>
#include <cstdint>
#include <string>

#include "format/llama2c_tokenizer_file.h"
#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  int vocab = 1 + (data[0] | (data[1] << 8)) % 1024;
  std::string bytes(reinterpret_cast<const char*>(data + 2), size - 2);
  auto v = llmflash::ParseLlama2cTokenizer(bytes, vocab, "fuzz/tokenizer.bin");
  if (!v.ok()) return 0;
  auto tok = llmflash::Llama2cTokenizer::Create(std::move(*v), vocab > 1 ? 1 : 0, vocab > 2 ? 2 : 0);
  if (!tok.ok()) return 0;
  std::string text = "Once upon a time \xF0\x9F\x98\x80 \xFF";
  text += bytes.substr(0, 64);
  std::vector<int> ids = tok->Encode(text, true, true);
  for (size_t i = 1; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) __builtin_trap();
    (void)tok->Decode(ids[i - 1], ids[i]);
  }
  return 0;
}

// libFuzzer target: tokenizer.json parsing (every normalizer, pre-tokenizer,
// decoder and post-processor kind, regexes included), then encoding with and
// without special tokens, decoding whole and token by token.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto tok = llmflash::HfTokenizer::FromJson(text, "fuzz/tokenizer.json");
  if (!tok.ok()) return 0;
  for (bool special : {false, true}) {
    std::vector<int> ids = tok->Encode("Hello, world! \xF0\x9F\x98\x80 \xE4\xB8\xAD \xFF ok <s> 123 e\xCC\x81  \n\n x", special);
    for (int id : ids) {
      if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
    }
    (void)tok->Decode(ids);
    int prev = -1;
    for (int id : ids) { (void)tok->DecodeNext(prev, id); prev = id; }
  }
  for (int id : tok->prefix_ids()) if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
  for (int id : tok->suffix_ids()) if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
  return 0;
}

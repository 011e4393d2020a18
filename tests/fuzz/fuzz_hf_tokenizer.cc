// libFuzzer target: tokenizer.json parsing, then encoding and decoding with
// whatever vocabulary parsed.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto tok = llmflash::HfTokenizer::FromJson(text, "fuzz/tokenizer.json");
  if (!tok.ok()) return 0;
  std::vector<int> ids = tok->Encode("Hello, world! \xF0\x9F\x98\x80 \xE4\xB8\xAD \xFF ok");
  for (int id : ids) {
    if (id < -1 || id >= tok->vocab_size()) __builtin_trap();
  }
  (void)tok->Decode(ids);
  return 0;
}

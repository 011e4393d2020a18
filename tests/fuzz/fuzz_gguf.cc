// libFuzzer target: a whole GGUF file (header, metadata, tensor infos), then
// the tokenizer built from its metadata, run on a short text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "format/gguf.h"
#include "format/gguf_tokenizer.h"
#include "model/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto f = llmflash::GgufFile::Parse(bytes, size, "fuzz.gguf");
  if (!f.ok()) return 0;
  for (const llmflash::GgufTensorInfo& t : f->tensors()) {
    // Whatever parses lies inside the file.
    if (f->data_start() + t.offset + t.bytes > size) __builtin_trap();
  }
  auto tok = llmflash::TokenizerFromGguf(*f);
  if (!tok.ok()) return 0;
  auto hf = llmflash::HfTokenizer::FromJson(tok->tokenizer_json, "fuzz.gguf");
  if (!hf.ok()) return 0;
  std::vector<int> ids = hf->Encode("Hello, world! 123 \xe2\x96\x81x", true);
  (void)hf->Decode(ids);
  return 0;
}

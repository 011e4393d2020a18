// libFuzzer target: the llama2.c checkpoint header and the file size it
// implies (28 bytes of header, then 8 bytes of file size).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "format/llama2c_importer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < sizeof(llmflash::Llama2cHeader) + 8) return 0;
  llmflash::Llama2cHeader h;
  uint64_t file_size;
  std::memcpy(&h, data, sizeof(h));
  std::memcpy(&file_size, data + sizeof(h), 8);
  bool shared = false;
  (void)llmflash::ValidateLlama2cHeader(h, file_size, "fuzz/model.bin", &shared);
  return 0;
}

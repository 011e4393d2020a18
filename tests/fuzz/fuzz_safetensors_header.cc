// libFuzzer target: a safetensors header (JSON) against a data section whose
// size is given by the first 8 bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t data_bytes;
  std::memcpy(&data_bytes, data, 8);
  std::string header(reinterpret_cast<const char*>(data + 8), size - 8);
  auto r = llmflash::ParseSafetensorsHeader(header, 8 + header.size(), data_bytes, "fuzz.safetensors");
  if (r.ok()) {
    for (const auto& [name, t] : *r) {
      // Whatever parses must lie inside the data section.
      if (t.offset < 8 + header.size() || t.offset - 8 - header.size() + t.bytes > data_bytes) __builtin_trap();
    }
  }
  return 0;
}

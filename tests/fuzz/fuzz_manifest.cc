// libFuzzer target: manifest.json parsing (with its predictor section).
#include <cstddef>
#include <cstdint>
#include <string>

#include "format/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto m = llmflash::ParseManifest(text, "fuzz/manifest.json");
  if (m.ok()) {
    // What parses must serialize and parse again to the same thing.
    auto again = llmflash::ParseManifest(llmflash::SerializeManifest(*m), "again");
    if (!again.ok() || llmflash::SerializeManifest(*again) != llmflash::SerializeManifest(*m)) {
      __builtin_trap();
    }
  }
  return 0;
}

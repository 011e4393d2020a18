// libFuzzer target: chat template parsing and rendering with a small
// conversation; every failure must be a Status.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto t = llmflash::ChatTemplate::Parse(text, "fuzz.jinja");
  if (!t.ok()) return 0;
  std::vector<llmflash::ChatMessage> messages = {{"system", "Be brief."}, {"user", "Hi \xC3\xBC"}, {"assistant", "Yo"}};
  (void)t->Apply(messages, true, "<s>", "</s>");
  (void)t->Apply({}, false, "", "");
  return 0;
}

// StopStrings: finds the first stop string in generated text delivered piece
// by piece, holding back what may be the start of one, so that no text of a
// stop string (or after it) is ever delivered.
//
// Thread-safety: a value type; one per generation.
#ifndef LLMFLASH_RUNTIME_STOP_STRINGS_H_
#define LLMFLASH_RUNTIME_STOP_STRINGS_H_

#include <string>
#include <string_view>
#include <vector>

namespace llmflash {

class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops);

  // Adds `piece`; returns the text that can be delivered now (possibly
  // empty). After a stop string is found, stopped() is true and the text
  // before it is what this call returns.
  std::string Feed(std::string_view piece);
  bool stopped() const { return stopped_; }
  // The text held back, at the end of generation (no stop string followed).
  std::string Flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_STOP_STRINGS_H_

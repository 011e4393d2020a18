// StopStrings.
#include "runtime/stop_strings.h"

#include <algorithm>
#include <utility>

namespace llmflash {

StopStrings::StopStrings(std::vector<std::string> stops) {
  for (std::string& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));  // "" would stop before any text
  }
}

std::string StopStrings::Feed(std::string_view piece) {
  if (stopped_) return "";
  held_.append(piece);
  // Every earlier character was checked to start no stop string that fits
  // in the text so far, so the first match begins in what is held.
  size_t first = std::string::npos;
  for (const std::string& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    return out;
  }
  // Hold the longest tail that begins some stop string.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, held_.size()); len > keep; --len) {
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string StopStrings::Flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace llmflash

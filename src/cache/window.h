// Window: which neurons were used by the last k tokens (the paper's
// Section 3.1 "windowing"). A neuron used at token t stays in the window for
// tokens t..t+k-1; the cache keeps window neurons resident when it can.
//
// Thread-safety: not thread-safe; one per layer per Session.
#ifndef LLMFLASH_CACHE_WINDOW_H_
#define LLMFLASH_CACHE_WINDOW_H_

#include <cstdint>
#include <span>
#include <vector>

namespace llmflash {

class Window {
 public:
  void Init(int n_neurons, int k) {
    k_ = k;
    last_used_.assign(n_neurons, kNever);
  }
  int k() const { return k_; }

  // Records that `ids` are used by token `t` (tokens only move forward).
  void Touch(std::span<const int32_t> ids, int64_t t) {
    for (int32_t id : ids) last_used_[id] = t;
  }
  // Sets when `id` was last used (undoes a speculative Touch).
  void Set(int id, int64_t t) { last_used_[id] = t; }
  bool UsedAt(int id, int64_t t) const { return last_used_[id] == t; }
  // True when `id` was used by one of the tokens t-k+1..t.
  bool InWindow(int id, int64_t t) const {
    return last_used_[id] != kNever && last_used_[id] > t - k_;
  }
  int64_t last_used(int id) const { return last_used_[id]; }
  void Reset() { last_used_.assign(last_used_.size(), kNever); }

 private:
  static constexpr int64_t kNever = INT64_MIN / 2;
  int k_ = 1;
  std::vector<int64_t> last_used_;
};

}  // namespace llmflash

#endif  // LLMFLASH_CACHE_WINDOW_H_

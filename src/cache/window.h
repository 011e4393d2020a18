// Window: which neurons were used by the last k tokens (the paper's
// Section 3.1 "windowing"). A neuron used at token t stays in the window for
// tokens t..t+k-1; the cache keeps window neurons resident when it can.
// Optionally it also keeps how often each neuron was used lately, for
// evictions that keep hot neurons (mixtures of experts, whose popular
// experts return every few tokens but not every token).
//
// Thread-safety: not thread-safe; one per layer per Session.
#ifndef LLMFLASH_CACHE_WINDOW_H_
#define LLMFLASH_CACHE_WINDOW_H_

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace llmflash {

class Window {
 public:
  // `half_life` > 0 also keeps each neuron's use frequency: its uses, each
  // weighing 2^-(age / half_life) tokens later (Frequency).
  void Init(int n_neurons, int k, double half_life = 0) {
    k_ = k;
    last_used_.assign(n_neurons, kNever);
    half_life_ = half_life;
    uses_.assign(half_life > 0 ? n_neurons : 0, 0.0f);
  }
  int k() const { return k_; }

  // Records that `ids` are used by token `t` (tokens only move forward).
  void Touch(std::span<const int32_t> ids, int64_t t) {
    if (half_life_ > 0) {
      for (int32_t id : ids) {
        if (last_used_[id] != t) uses_[id] = static_cast<float>(Frequency(id, t) + 1);
      }
    }
    for (int32_t id : ids) last_used_[id] = t;
  }
  // The decayed number of uses of `id` as seen at token t (0 without
  // frequencies): what a frequency-aware eviction keeps the highest of.
  double Frequency(int id, int64_t t) const {
    if (half_life_ <= 0 || last_used_[id] == kNever) return 0;
    return uses_[id] * std::exp2(-static_cast<double>(t - last_used_[id]) / half_life_);
  }
  bool tracks_frequency() const { return half_life_ > 0; }
  // Sets when `id` was last used (undoes a speculative Touch).
  void Set(int id, int64_t t) { last_used_[id] = t; }
  bool UsedAt(int id, int64_t t) const { return last_used_[id] == t; }
  // True when `id` was used by one of the tokens t-k+1..t.
  bool InWindow(int id, int64_t t) const {
    return last_used_[id] != kNever && last_used_[id] > t - k_;
  }
  int64_t last_used(int id) const { return last_used_[id]; }
  void Reset() {
    last_used_.assign(last_used_.size(), kNever);
    uses_.assign(uses_.size(), 0.0f);
  }

 private:
  static constexpr int64_t kNever = INT64_MIN / 2;
  int k_ = 1;
  std::vector<int64_t> last_used_;
  double half_life_ = 0;
  std::vector<float> uses_;  // as of last_used_
};

}  // namespace llmflash

#endif  // LLMFLASH_CACHE_WINDOW_H_

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
    key_.assign(half_life > 0 ? n_neurons : 0, kNoUse);
  }
  int k() const { return k_; }

  // Records that `ids` are used by token `t` (tokens only move forward).
  void Touch(std::span<const int32_t> ids, int64_t t) {
    if (half_life_ > 0) {
      for (int32_t id : ids) {
        if (last_used_[id] != t) key_[id] = std::log2(Frequency(id, t) + 1) + t / half_life_;
      }
    }
    for (int32_t id : ids) last_used_[id] = t;
  }
  // The decayed number of uses of `id` as seen at token t (0 without
  // frequencies): what a frequency-aware eviction keeps the highest of.
  double Frequency(int id, int64_t t) const {
    if (half_life_ <= 0 || key_[id] == kNoUse) return 0;
    return std::exp2(key_[id] - t / half_life_);
  }
  // Orders neurons as Frequency(·, t) does at any one t (log2 of it plus
  // t / half_life, the same for all): compared without exponentials.
  double FrequencyKey(int id) const { return key_[id]; }
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
    key_.assign(key_.size(), kNoUse);
  }

 private:
  static constexpr int64_t kNever = INT64_MIN / 2;
  int k_ = 1;
  std::vector<int64_t> last_used_;
  static constexpr double kNoUse = -1e300;
  double half_life_ = 0;
  std::vector<double> key_;  // log2(decayed uses at last use) + last use / half-life
};

}  // namespace llmflash

#endif  // LLMFLASH_CACHE_WINDOW_H_

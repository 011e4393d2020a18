// LookaheadPolicy: whether a session's next token runs the lookahead.
//
// The lookahead hides reads behind attention but costs a second predictor
// pass and CPU time for the I/O thread. Measured at 50% on this 2-core
// machine: the I/O-bound ReluLLaMA-7B shape, whose exact reads left 61% of
// a token waiting, ran 650 -> 536 ms/token with it; the compute-bound
// OPT-6.7B, waiting 4% of a token, ran 192 -> 223. So under kAuto a session
// measures the share of each token spent waiting for reads with the
// lookahead off, and turns it on while that share is above a fifth. Tokens
// 0..8 (the window filling; rows re-split at 1, 2, 4, 8, ...) run without it
// unmeasured, token 9 without it measured (off, consecutive tokens are
// averaged). Once on, every 8th token from there (17, 25, ...: never a
// re-split) runs without it, and that token alone decides: what a session
// waits for changes as its window fills (a prompt's tokens wait far more than
// the generated ones after it), so an older measurement is stale. A probe
// costs the I/O-bound model ~115 ms, ~14 ms per token over eight.
#ifndef LLMFLASH_MODEL_LOOKAHEAD_POLICY_H_
#define LLMFLASH_MODEL_LOOKAHEAD_POLICY_H_

#include <cstdint>

#include "llmflash/options.h"

namespace llmflash {

class LookaheadPolicy {
 public:
  static constexpr int kWarmupTokens = 9;
  static constexpr int kProbeEvery = 8;
  static constexpr double kOnAbove = 0.2;  // of a token's time waiting for reads

  void Reset(Lookahead mode) {
    mode_ = mode;
    tokens_ = 0;
    waiting_share_ = -1;
    was_on_ = false;
  }

  // For the token about to run.
  bool Next() const {
    switch (mode_) {
      case Lookahead::kOn:
        return true;
      case Lookahead::kOff:
        return false;
      case Lookahead::kAuto:
        break;
    }
    if (tokens_ < kWarmupTokens || waiting_share_ < 0) return false;
    if ((tokens_ - kWarmupTokens) % kProbeEvery == 0) return false;  // measure without it
    return waiting_share_ > kOnAbove;
  }

  // After the token: whether it ran the lookahead, its read wait and total.
  void Record(bool ran_lookahead, double io_ms, double total_ms) {
    if (!ran_lookahead && tokens_ >= kWarmupTokens && total_ms > 0) {
      const double share = io_ms / total_ms;
      waiting_share_ = waiting_share_ < 0 || was_on_ ? share : 0.5 * waiting_share_ + 0.5 * share;
    }
    was_on_ = ran_lookahead;
    ++tokens_;
  }

  // The measured share of a token spent waiting for reads without the
  // lookahead (-1 before any was measured).
  double waiting_share() const { return waiting_share_; }

 private:
  Lookahead mode_ = Lookahead::kOff;
  int64_t tokens_ = 0;
  double waiting_share_ = -1;
  bool was_on_ = false;  // the previous token ran the lookahead
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_LOOKAHEAD_POLICY_H_

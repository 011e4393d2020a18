// LookaheadPolicy: kAuto turns the lookahead on only for sessions whose
// tokens wait for reads, and keeps measuring once it is on.
#include "model/lookahead_policy.h"

#include <gtest/gtest.h>

#include <vector>

namespace llmflash {
namespace {

// Runs `n` tokens, each waiting `share` of its 100 ms for reads when the
// lookahead is off (and half that when on); returns which ran it.
std::vector<bool> RunTokens(LookaheadPolicy* p, int n, double share) {
  std::vector<bool> on;
  for (int i = 0; i < n; ++i) {
    const bool look = p->Next();
    on.push_back(look);
    p->Record(look, (look ? share / 2 : share) * 100, 100);
  }
  return on;
}

TEST(LookaheadPolicy, OnAndOffAreFixed) {
  LookaheadPolicy p;
  p.Reset(Lookahead::kOn);
  for (bool b : RunTokens(&p, 40, 0.0)) EXPECT_TRUE(b);
  p.Reset(Lookahead::kOff);
  for (bool b : RunTokens(&p, 40, 0.9)) EXPECT_FALSE(b);
}

TEST(LookaheadPolicy, AutoTurnsOnWhenTokensWaitForReads) {
  LookaheadPolicy p;
  p.Reset(Lookahead::kAuto);
  const std::vector<bool> on = RunTokens(&p, 60, 0.6);
  const int warm = LookaheadPolicy::kWarmupTokens;
  for (int t = 0; t <= warm; ++t) EXPECT_FALSE(on[t]) << t;  // warm-up, then the first measurement
  for (int t = warm + 1; t < 60; ++t) {
    const bool probe = (t - warm) % LookaheadPolicy::kProbeEvery == 0;
    EXPECT_EQ(on[t], !probe) << t;
  }
  EXPECT_NEAR(p.waiting_share(), 0.6, 1e-9);  // measured only on tokens without it
}

TEST(LookaheadPolicy, AutoStaysOffForComputeBoundTokens) {
  LookaheadPolicy p;
  p.Reset(Lookahead::kAuto);
  for (bool b : RunTokens(&p, 60, 0.04)) EXPECT_FALSE(b);
}

TEST(LookaheadPolicy, AutoTurnsOffWhenReadsStopMattering) {
  LookaheadPolicy p;
  p.Reset(Lookahead::kAuto);
  RunTokens(&p, 20, 0.6);  // tokens 0..19
  ASSERT_TRUE(p.Next());
  // From token 20 the window holds what tokens need; the next probe (token
  // 25) sees little waiting and alone turns the lookahead off.
  const std::vector<bool> on = RunTokens(&p, 60, 0.02);
  const int probe = LookaheadPolicy::kWarmupTokens + 2 * LookaheadPolicy::kProbeEvery - 20;
  for (int i = 0; i < probe; ++i) EXPECT_TRUE(on[i]) << 20 + i;
  for (size_t i = probe; i < on.size(); ++i) EXPECT_FALSE(on[i]) << 20 + i;
  EXPECT_NEAR(p.waiting_share(), 0.02, 1e-9);
  // A reset session measures afresh.
  p.Reset(Lookahead::kAuto);
  EXPECT_LT(p.waiting_share(), 0);
  EXPECT_FALSE(p.Next());
}

}  // namespace
}  // namespace llmflash

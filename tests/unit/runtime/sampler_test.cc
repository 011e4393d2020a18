// Sampling: greedy, seeded reproducibility, top-p.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "runtime/sampler.h"

namespace llmflash {
namespace {

std::vector<int> Draw(float temperature, float top_p, uint64_t seed, int n) {
  Sampler s;
  s.Reset(temperature, top_p, seed);
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = {0.1f, 2.0f, 1.5f, -1.0f, 0.5f, 1.9f};
    out.push_back(s.Sample(logits.data(), static_cast<int>(logits.size())));
  }
  return out;
}

TEST(Sampler, GreedyIsArgmax) {
  for (int t : Draw(0.0f, 0.9f, 1, 10)) EXPECT_EQ(t, 1);
}

TEST(Sampler, EqualSeedsGiveEqualSequences) {
  EXPECT_EQ(Draw(1.0f, 1.0f, 42, 200), Draw(1.0f, 1.0f, 42, 200));
  EXPECT_EQ(Draw(0.8f, 0.9f, 7, 200), Draw(0.8f, 0.9f, 7, 200));
  EXPECT_NE(Draw(1.0f, 1.0f, 42, 200), Draw(1.0f, 1.0f, 43, 200));
  EXPECT_EQ(Draw(1.0f, 1.0f, 0, 50), Draw(1.0f, 1.0f, 0, 50));  // seed 0 is valid
}

TEST(Sampler, TemperatureSamplingVisitsEveryToken) {
  std::vector<int> d = Draw(1.0f, 1.0f, 3, 2000);
  EXPECT_EQ(std::set<int>(d.begin(), d.end()).size(), 6u);
}

TEST(Sampler, TopPKeepsOnlyTheNucleus) {
  // Probabilities at T=1: token 1 (0.34), 5 (0.31), 2 (0.21), ... A top-p
  // of 0.5 keeps {1, 5}.
  std::vector<int> d = Draw(1.0f, 0.5f, 11, 2000);
  EXPECT_EQ(std::set<int>(d.begin(), d.end()), (std::set<int>{1, 5}));
}

}  // namespace
}  // namespace llmflash

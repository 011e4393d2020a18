// Sampling: greedy, seeded reproducibility, top-p.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "runtime/sampler.h"

namespace llmflash {
namespace {

std::vector<int> Draw(float temperature, float top_p, uint64_t seed, int n) {
  Sampler s;
  s.Reset({.temperature = temperature, .top_p = top_p, .seed = seed});
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

std::vector<int> DrawWith(GenerateOptions c, int n, const std::vector<int>& recent = {}) {
  Sampler s;
  s.Reset(c);
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    std::vector<float> logits = {0.1f, 2.0f, 1.5f, -1.0f, 0.5f, 1.9f};
    out.push_back(s.Sample(logits.data(), static_cast<int>(logits.size()), recent));
  }
  return out;
}

std::set<int> Support(const std::vector<int>& d) { return std::set<int>(d.begin(), d.end()); }

TEST(Sampler, TopKKeepsTheKMostProbable) {
  GenerateOptions c{.temperature = 1.0f, .top_p = 1.0f, .top_k = 3, .seed = 5};
  EXPECT_EQ(Support(DrawWith(c, 2000)), (std::set<int>{1, 5, 2}));
  c.top_k = 1;
  for (int t : DrawWith(c, 50)) EXPECT_EQ(t, 1);  // top-1 is greedy
  c.top_k = 100;  // more than the vocabulary: everything
  EXPECT_EQ(Support(DrawWith(c, 3000)).size(), 6u);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBest) {
  // At T=1, p(1) = 0.34; p(5)/p(1) = e^-0.1 = 0.90, p(2)/p(1) = e^-0.5 = 0.61,
  // p(4)/p(1) = e^-1.5 = 0.22, p(0)/p(1) = 0.15, p(3)/p(1) = 0.05.
  GenerateOptions c{.temperature = 1.0f, .top_p = 1.0f, .min_p = 0.5f, .seed = 9};
  EXPECT_EQ(Support(DrawWith(c, 2000)), (std::set<int>{1, 5, 2}));
  c.min_p = 0.2f;
  EXPECT_EQ(Support(DrawWith(c, 3000)), (std::set<int>{1, 5, 2, 4}));
  c.min_p = 0.95f;
  EXPECT_EQ(Support(DrawWith(c, 200)), (std::set<int>{1}));
}

TEST(Sampler, TruncationsCompose) {
  // top-k 4 keeps {1, 5, 2, 4}; top-p 0.6 of those keeps {1, 5}; min-p does nothing more.
  GenerateOptions c{.temperature = 1.0f, .top_p = 0.6f, .top_k = 4, .min_p = 0.1f, .seed = 2};
  EXPECT_EQ(Support(DrawWith(c, 2000)), (std::set<int>{1, 5}));
  EXPECT_EQ(DrawWith(c, 300), DrawWith(c, 300));  // reproducible
  GenerateOptions other = c;
  other.seed = 3;
  EXPECT_NE(DrawWith(c, 300), DrawWith(other, 300));
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  // Greedy: 1 (2.0) wins; penalized by 1.1 it is 1.82 < 1.9, so 5 wins; with
  // 5 penalized too (1.73), 1 (1.82) wins again.
  GenerateOptions c{.repetition_penalty = 1.1f};
  EXPECT_EQ(DrawWith(c, 1)[0], 1);
  EXPECT_EQ(DrawWith(c, 1, {1})[0], 5);
  EXPECT_EQ(DrawWith(c, 1, {1, 5})[0], 1);
  EXPECT_EQ(DrawWith(c, 1, {1, 1, 1, 1})[0], 5);  // once per distinct token, not per occurrence
  // A negative logit is multiplied (pushed down): -1.0 becomes -3.0, below
  // -2.5; dividing would have lifted it to -0.33.
  Sampler s;
  s.Reset({.repetition_penalty = 3.0f});
  std::vector<float> logits = {-1.0f, -2.5f};
  EXPECT_EQ(s.Sample(logits.data(), 2, std::vector<int>{0}), 1);  // -3.0 < -2.5
  EXPECT_FLOAT_EQ(logits[0], -3.0f);
  // Out-of-range ids in the window are ignored.
  logits = {1.0f, 0.5f};
  EXPECT_EQ(s.Sample(logits.data(), 2, std::vector<int>{-1, 7}), 0);
}

}  // namespace
}  // namespace llmflash

// The miss curve against a direct LRU simulation of the same trace.
#include "cache/miss_curve.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <list>
#include <random>

namespace llmflash {
namespace {

// An LRU list of at most `rows` neurons; a token's uses are looked up
// against the list as it stood before the token, then move to the front.
double SimulatedReadsPerToken(const std::vector<std::vector<int32_t>>& sets, int rows) {
  std::list<int32_t> lru;  // front: most recent
  double reads = 0;
  for (const auto& set : sets) {
    std::vector<int32_t> hits;
    for (int32_t id : set) {
      auto it = std::find(lru.begin(), lru.end(), id);
      const bool hit = it != lru.end() && std::distance(lru.begin(), it) < rows;
      reads += !hit;
    }
    for (int32_t id : set) lru.remove(id);
    for (int32_t id : set) lru.push_front(id);
  }
  return reads / sets.size();
}

TEST(MissCurve, EqualsADirectLruSimulation) {
  const int n = 512, tokens = 60;
  std::mt19937_64 rng(3);
  std::vector<std::vector<int32_t>> sets(tokens);
  std::vector<double> heat(n);
  for (double& h : heat) h = std::exp(2.0 * std::normal_distribution<double>()(rng));  // hot and cold neurons
  for (auto& s : sets) {
    for (int i = 0; i < n; ++i) {
      if (std::uniform_real_distribution<double>()(rng) < std::min(1.0, 0.02 * heat[i])) s.push_back(i);
    }
  }
  std::vector<float> curve = LruMissCurve(sets, n);
  ASSERT_EQ(curve.size(), static_cast<size_t>(kMissCurvePoints));
  for (int i = 0; i < kMissCurvePoints; ++i) {
    const int rows = static_cast<int>(std::lround(MissCurveRowFraction(i) * n));
    EXPECT_NEAR(curve[i] * n, SimulatedReadsPerToken(sets, rows), 1e-3) << "rows " << rows;
  }
  // More rows never read more; with every row only first uses are read.
  EXPECT_TRUE(std::is_sorted(curve.rbegin(), curve.rend()));
  EXPECT_NEAR(MissesAt(curve, 1.0), curve.back(), 1e-9);
  EXPECT_NEAR(MissesAt(curve, MissCurveRowFraction(10)), curve[10], 1e-6);
  const double mid = MissesAt(curve, std::sqrt(MissCurveRowFraction(10) * MissCurveRowFraction(11)));
  EXPECT_NEAR(mid, (curve[10] + curve[11]) / 2, 1e-6);
}

}  // namespace
}  // namespace llmflash

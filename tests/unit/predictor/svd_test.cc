// Low-rank factorization: the randomized path (large matrices) recovers a
// low-rank matrix as well as the exact SVD does.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "predictor/trainer.h"

namespace llmflash {
namespace {

double RelativeError(const std::vector<float>& w, const std::vector<float>& a,
                     const std::vector<float>& b, int n, int d, int r) {
  double err = 0, norm = 0;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) {
      double v = 0;
      for (int k = 0; k < r; ++k) v += double(b[i * r + k]) * a[k * d + j];
      err += (v - w[i * d + j]) * (v - w[i * d + j]);
      norm += double(w[i * d + j]) * w[i * d + j];
    }
  }
  return std::sqrt(err / norm);
}

std::vector<float> LowRankPlusNoise(int n, int d, int rank, float noise, int seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> u(n * rank), v(rank * d), w(n * d);
  for (float& x : u) x = g(rng);
  for (float& x : v) x = g(rng);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) {
      float s = 0;
      for (int k = 0; k < rank; ++k) s += u[i * rank + k] * v[k * d + j] * std::pow(0.8f, float(k));
      w[i * d + j] = s + noise * g(rng);
    }
  }
  return w;
}

TEST(LowRankFactorize, RandomizedPathRecoversALowRankMatrix) {
  const int n = 2048, d = 640, r = 24;  // n*d > 2^20: the randomized path
  std::vector<float> w = LowRankPlusNoise(n, d, 16, 0.01f, 1), a, b;
  LowRankFactorize(w, n, d, r, &a, &b);
  ASSERT_EQ(a.size(), size_t(r) * d);
  ASSERT_EQ(b.size(), size_t(n) * r);
  EXPECT_LT(RelativeError(w, a, b, n, d, r), 0.01);
}

TEST(LowRankFactorize, ExactPathOnSmallMatrices) {
  const int n = 200, d = 64, r = 8;
  std::vector<float> w = LowRankPlusNoise(n, d, 8, 0.0f, 2), a, b;
  LowRankFactorize(w, n, d, r, &a, &b);
  EXPECT_LT(RelativeError(w, a, b, n, d, r), 1e-4);
}

}  // namespace
}  // namespace llmflash

// Kernels against straightforward loops.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/kernels.h"

namespace llmflash {
namespace {

std::vector<float> Random(size_t n, int seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(Kernels, MatVecAndRmsNormMatchLoops) {
  auto w = Random(37 * 53, 1), x = Random(53, 2), g = Random(53, 3);
  std::vector<float> out(37);
  MatVec(w.data(), x.data(), 37, 53, out.data());
  for (int i = 0; i < 37; ++i) {
    double s = 0;
    for (int j = 0; j < 53; ++j) s += double(w[i * 53 + j]) * x[j];
    EXPECT_NEAR(out[i], s, 1e-4);
  }
  std::vector<float> n(53);
  RmsNorm(x.data(), g.data(), 53, 1e-5f, n.data());
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  double scale = 1 / std::sqrt(ss / 53 + 1e-5);
  for (int j = 0; j < 53; ++j) EXPECT_NEAR(n[j], x[j] * g[j] * scale, 1e-5);
}

TEST(Kernels, SoftmaxSumsToOne) {
  std::vector<float> x = {1000, 1001, 999};
  Softmax(x.data(), 3);
  EXPECT_NEAR(x[0] + x[1] + x[2], 1.0, 1e-6);
  EXPECT_GT(x[1], x[0]);
}

// Each activation as its model's code writes it (in double).
double ReferenceActivation(ActivationKind k, double g, double threshold) {
  switch (k) {
    case ActivationKind::kSilu: return g / (1 + std::exp(-g));
    case ActivationKind::kRelu: return g > 0 ? g : 0;
    case ActivationKind::kFatRelu: return g >= threshold ? g : 0;  // ProSparse: torch.ge
    case ActivationKind::kGeluTanh: return 0.5 * g * (1 + std::tanh(std::sqrt(2 / M_PI) * (g + 0.044715 * g * g * g)));
  }
  return 0;
}

TEST(Kernels, FfnRowsIsTheGatedActivationOfTheSelectedRecords) {
  const int d = 16, rows = 5;
  for (ActivationKind kind : {ActivationKind::kSilu, ActivationKind::kRelu, ActivationKind::kFatRelu,
                              ActivationKind::kGeluTanh}) {
    // A threshold between the gates of the chosen rows, so fatrelu keeps one.
    RecordLayout l{d, 0, d * 4, 2 * d * 4, Activation{kind, 0.05f}};  // byte offsets of f32 parts
    auto rec = Random(rows * 3 * d, 4), x = Random(d, 5);
    std::vector<float> out(d, 0.0f);
    std::vector<int32_t> slots = {4, 1, 2, 0};
    FfnRows(l, reinterpret_cast<const char*>(rec.data()), 3 * d * 4, slots, x.data(), out.data());
    std::vector<double> want(d, 0.0);
    for (int s : slots) {
      const float* r = rec.data() + s * 3 * d;
      double g = 0, u = 0;
      for (int j = 0; j < d; ++j) { g += double(r[j]) * x[j]; u += double(r[d + j]) * x[j]; }
      double h = ReferenceActivation(kind, g, 0.05) * u;
      for (int j = 0; j < d; ++j) want[j] += h * r[2 * d + j];
    }
    for (int j = 0; j < d; ++j) EXPECT_NEAR(out[j], want[j], 1e-4) << static_cast<int>(kind);
  }
}

}  // namespace
}  // namespace llmflash

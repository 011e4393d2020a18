// f16/bf16 conversions and the typed kernels (both code paths agree).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <tuple>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/typed_kernels.h"
#include "util/half.h"

namespace llmflash {
namespace {

TEST(Half, F16RoundTripsAndRounds) {
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f /* min normal */,
                  5.960464477539063e-08f /* min subnormal */, 0.333251953125f}) {
    EXPECT_EQ(F16ToFloat(FloatToF16(v)), v) << v;
  }
  EXPECT_EQ(FloatToF16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie -> even (down)
  EXPECT_EQ(FloatToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie -> even (up)
  EXPECT_EQ(FloatToF16(1e6f), 0x7C00);  // overflow -> inf
  EXPECT_TRUE(std::isnan(F16ToFloat(FloatToF16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(F16ToFloat(FloatToF16(1e-9f)), 0.0f);
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0, 10);
  for (int i = 0; i < 10000; ++i) {
    float v = d(rng);
    EXPECT_LE(std::fabs(F16ToFloat(FloatToF16(v)) - v), std::fabs(v) * std::ldexp(1.0f, -11) + 1e-7f);
  }
}

TEST(Half, Bf16RoundTripsAndRounds) {
  for (float v : {0.0f, 1.0f, -2.5f, 3.0e38f}) EXPECT_EQ(Bf16ToFloat(FloatToBf16(v)), Bf16ToFloat(FloatToBf16(Bf16ToFloat(FloatToBf16(v)))));
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f)), 1.0f);
  EXPECT_EQ(FloatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);  // tie -> even
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::quiet_NaN()))));
  std::mt19937 rng(4);
  std::normal_distribution<float> d(0, 10);
  for (int i = 0; i < 10000; ++i) {
    float v = d(rng);
    EXPECT_LE(std::fabs(Bf16ToFloat(FloatToBf16(v)) - v), std::fabs(v) * std::ldexp(1.0f, -8));
  }
}

// Every test below runs for each 16-bit type on every code path this CPU
// has (the paths a CPU lacks are not instantiated: there is nothing to run).
class TypedKernels : public ::testing::TestWithParam<std::tuple<DType, KernelPath>> {
 protected:
  void SetUp() override { ASSERT_TRUE(UseKernelPath(std::get<1>(GetParam()))); }
  void TearDown() override { UseKernelPath(BestKernelPath()); }
  static DType Type() { return std::get<0>(GetParam()); }
};

TEST_P(TypedKernels, MatchF32OnTheRoundedWeights) {
  const DType t = Type();
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  for (int n : {1, 7, 8, 15, 16, 17, 64, 100, 4096}) {
    std::vector<uint16_t> h(n);
    std::vector<float> w(n), x(n), y(n, 0.5f), want(n, 0.5f);
    for (int i = 0; i < n; ++i) {
      float v = d(rng);
      h[i] = t == DType::kF16 ? FloatToF16(v) : FloatToBf16(v);
      w[i] = t == DType::kF16 ? F16ToFloat(h[i]) : Bf16ToFloat(h[i]);
      x[i] = d(rng);
    }
    double dot = 0;
    for (int i = 0; i < n; ++i) dot += double(w[i]) * x[i];
    EXPECT_NEAR(DotTyped(h.data(), t, x.data(), n), dot, 1e-4 * std::sqrt(n) + 1e-5) << n;
    AxpyTyped(0.25f, h.data(), t, n, y.data());
    for (int i = 0; i < n; ++i) EXPECT_NEAR(y[i], 0.5f + 0.25f * w[i], 1e-6) << n;
    std::vector<float> f(n);
    ToFloat(h.data(), t, n, f.data());
    EXPECT_EQ(f, w);
  }
  // A 3 x 50 matrix.
  std::vector<uint16_t> m(150);
  std::vector<float> mf(150), x(50, 0.1f), out(3);
  for (int i = 0; i < 150; ++i) {
    m[i] = t == DType::kF16 ? FloatToF16(i * 0.01f) : FloatToBf16(i * 0.01f);
    mf[i] = t == DType::kF16 ? F16ToFloat(m[i]) : Bf16ToFloat(m[i]);
  }
  MatVec(WeightRef{m.data(), t}, x.data(), 3, 50, out.data());
  for (int r = 0; r < 3; ++r) {
    double s = 0;
    for (int c = 0; c < 50; ++c) s += mf[r * 50 + c] * 0.1;
    EXPECT_NEAR(out[r], s, 1e-4);
  }
}

// MatVec takes rows kRowGroup at a time; each row must equal DotTyped of that
// row bit for bit, wherever the split into threads or groups falls.
TEST_P(TypedKernels, MatVecRowsEqualDotsExactly) {
  const DType t = Type();
  std::mt19937 rng(9);
  std::normal_distribution<float> d;
  for (int cols : {5, 16, 37, 256}) {
    const int rows = 2 * kRowGroup + 3;
    std::vector<uint16_t> m(rows * cols);
    std::vector<float> x(cols), out(rows), part(rows);
    for (auto& v : m) v = t == DType::kF16 ? FloatToF16(d(rng)) : FloatToBf16(d(rng));
    for (auto& v : x) v = d(rng);
    MatVec(WeightRef{m.data(), t}, x.data(), rows, cols, out.data());
    for (int r = 0; r < rows; ++r) {
      EXPECT_EQ(out[r], DotTyped(m.data() + r * cols, t, x.data(), cols)) << r << " " << cols;
    }
    // Starting at row 3 shifts every group.
    MatVec(WeightRef{m.data() + 3 * cols, t}, x.data(), rows - 3, cols, part.data());
    for (int r = 3; r < rows; ++r) EXPECT_EQ(part[r - 3], out[r]) << r << " " << cols;
  }
}

// FfnRows takes records kRowGroup at a time; its output and activations must
// equal the record-at-a-time loop bit for bit (ReLU zeros skipped alike),
// for gated and ungated records and any count of rows.
TEST_P(TypedKernels, FfnRowsEqualsOneRecordAtATimeExactly) {
  const DType t = Type();
  std::mt19937 rng(13);
  std::normal_distribution<float> d;
  for (bool gated : {false, true}) {
    for (int dim : {24, 64}) {
      const int parts = gated ? 3 : 2, records = 23;
      RecordLayout l{dim, gated ? 0 : -1, gated ? dim : 0, gated ? 2 * dim : dim, true, t};
      const uint64_t row_bytes = static_cast<uint64_t>(parts) * dim * 2;
      std::vector<uint16_t> m(records * parts * dim);
      for (auto& v : m) v = t == DType::kF16 ? FloatToF16(d(rng)) : FloatToBf16(d(rng));
      std::vector<float> x(dim), bias(records);
      for (auto& v : x) v = d(rng);
      for (auto& v : bias) v = 0.3f * d(rng);
      const char* base = reinterpret_cast<const char*>(m.data());
      for (int n : {0, 3, 4, 9, 17, 23}) {
        std::vector<int32_t> slots;
        for (int k = 0; k < n; ++k) slots.push_back(static_cast<int32_t>((k * 7) % records));
        std::vector<float> out(dim, 0.5f), want(dim, 0.5f), h(n), want_h(n);
        FfnRows(l, base, row_bytes, slots, x.data(), out.data(), h.data(), bias.data());
        for (int k = 0; k < n; ++k) {
          const char* row = base + slots[k] * row_bytes;
          float u = DotTyped(row + l.up_offset * 2, t, x.data(), dim) + bias[k];
          float hk = std::max(u, 0.0f);
          if (gated) hk = std::max(DotTyped(row, t, x.data(), dim), 0.0f) * u;
          want_h[k] = hk;
          if (hk != 0.0f) AxpyTyped(hk, row + l.down_offset * 2, t, dim, want.data());
        }
        EXPECT_EQ(h, want_h) << gated << " " << dim << " " << n;
        EXPECT_EQ(out, want) << gated << " " << dim << " " << n;
      }
    }
  }
}

std::vector<KernelPath> AvailablePaths() {
  std::vector<KernelPath> paths;
  for (KernelPath p : {KernelPath::kPortable, KernelPath::kAvx2, KernelPath::kAvx512}) {
    if (KernelPathAvailable(p)) paths.push_back(p);
  }
  return paths;
}

INSTANTIATE_TEST_SUITE_P(TypesAndPaths, TypedKernels,
                         ::testing::Combine(::testing::Values(DType::kF16, DType::kBF16),
                                            ::testing::ValuesIn(AvailablePaths())),
                         [](const auto& info) {
                           std::string path = KernelPathName(std::get<1>(info.param));
                           for (char& c : path) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return std::string(DTypeName(std::get<0>(info.param))) + "_" + path;
                         });

TEST(TypedKernelPaths, DefaultIsTheBestAvailableAndSwitching) {
  EXPECT_TRUE(KernelPathAvailable(KernelPath::kPortable));
  EXPECT_EQ(CurrentKernelPath(), BestKernelPath());
  EXPECT_STREQ(TypedKernelPath(), KernelPathName(BestKernelPath()));
  for (KernelPath p : {KernelPath::kPortable, KernelPath::kAvx2, KernelPath::kAvx512}) {
    EXPECT_EQ(UseKernelPath(p), KernelPathAvailable(p));
    if (KernelPathAvailable(p)) EXPECT_EQ(CurrentKernelPath(), p);
  }
  UseKernelPath(BestKernelPath());
  // The x86-64 machines this project builds on have AVX2 and F16C; losing the
  // SIMD path silently would cost 5-10x in every product.
#if defined(__x86_64__)
  EXPECT_NE(BestKernelPath(), KernelPath::kPortable);
#endif
}

// The paths agree with each other to rounding: a product of 4096 f16 weights
// on every path is within a few ulps of the portable loop's.
TEST(TypedKernelPaths, AllPathsAgreeToRounding) {
  std::mt19937 rng(21);
  std::normal_distribution<float> d;
  const int rows = 3 * kRowGroup + 5, cols = 4096 + 7;
  std::vector<uint16_t> m(static_cast<size_t>(rows) * cols);
  std::vector<float> x(cols);
  for (auto& v : m) v = FloatToF16(d(rng));
  for (auto& v : x) v = d(rng);
  std::vector<float> want(rows);
  ASSERT_TRUE(UseKernelPath(KernelPath::kPortable));
  MatVec(WeightRef{m.data(), DType::kF16}, x.data(), rows, cols, want.data());
  for (KernelPath p : AvailablePaths()) {
    ASSERT_TRUE(UseKernelPath(p));
    std::vector<float> got(rows);
    MatVec(WeightRef{m.data(), DType::kF16}, x.data(), rows, cols, got.data());
    for (int r = 0; r < rows; ++r) EXPECT_NEAR(got[r], want[r], 2e-3f) << KernelPathName(p) << " row " << r;
  }
  UseKernelPath(BestKernelPath());
}

}  // namespace
}  // namespace llmflash

// f16/bf16 conversions and the typed kernels over every stored type (every
// code path agrees with the portable one).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <tuple>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/tile_kernels.h"
#include "kernels/typed_kernels.h"
#include "util/dtype.h"
#include "util/half.h"
#include "util/quantize.h"

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

// Every test below runs for each stored type on every code path this CPU
// has (the paths a CPU lacks are not instantiated: there is nothing to run).
class TypedKernels : public ::testing::TestWithParam<std::tuple<DType, KernelPath>> {
 protected:
  void SetUp() override { ASSERT_TRUE(UseKernelPath(std::get<1>(GetParam()))); }
  void TearDown() override { UseKernelPath(BestKernelPath()); }
  static DType Type() { return std::get<0>(GetParam()); }
  // Row lengths to try: odd ones for element types, whole blocks for blocked ones.
  static std::vector<int> Lengths(std::vector<int> element_lengths) {
    if (Traits(Type()).block_elements == 1) return element_lengths;
    return {32, 64, 96, 160, 4096};
  }
};

// n values of t stored from normal floats, and what they are as f32 (by
// the published layout, not by the library's ToFloat).
struct Stored {
  std::vector<char> bytes;
  std::vector<float> values;
};

float Element(DType t, const char* row, int i) {
  switch (t) {
    case DType::kF32: { float f; std::memcpy(&f, row + 4 * i, 4); return f; }
    case DType::kF16: { uint16_t h; std::memcpy(&h, row + 2 * i, 2); return F16ToFloat(h); }
    case DType::kBF16: { uint16_t h; std::memcpy(&h, row + 2 * i, 2); return Bf16ToFloat(h); }
    case DType::kQ8_0: {
      const char* b = row + (i / 32) * 34;
      uint16_t d; std::memcpy(&d, b, 2);
      return F16ToFloat(d) * static_cast<int8_t>(b[2 + i % 32]);
    }
    case DType::kQ4_0: {
      const char* b = row + (i / 32) * 18;
      uint16_t d; std::memcpy(&d, b, 2);
      const int j = i % 32;
      const uint8_t byte = static_cast<uint8_t>(b[2 + j % 16]);
      return F16ToFloat(d) * ((j < 16 ? byte & 0xF : byte >> 4) - 8);
    }
  }
  return 0;
}

Stored Store(DType t, int rows, int n, std::mt19937* rng) {
  std::normal_distribution<float> d;
  Stored s;
  s.bytes.resize(rows * RowBytes(t, n));
  std::vector<float> f(n);
  for (int r = 0; r < rows; ++r) {
    for (auto& v : f) v = d(*rng);
    char* row = s.bytes.data() + r * RowBytes(t, n);
    QuantizeRow(t, f.data(), n, row);
    for (int i = 0; i < n; ++i) s.values.push_back(Element(t, row, i));
  }
  return s;
}

// x as quantized rows see it (typed_kernels.h, KernelInput): per block of
// 32, d = max|x| / 127 and q = round(x / d), half to even.
std::vector<float> AsTheKernelsSeeIt(DType t, const std::vector<float>& x) {
  if (!Traits(t).quantized) return x;
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
    const float d = amax / 127.0f;
    for (int j = 0; j < 32; ++j) out[b + j] = d == 0 ? 0.0f : d * std::nearbyint(x[b + j] * (1.0f / d));
  }
  return out;
}

TEST_P(TypedKernels, MatchF32OnTheStoredWeights) {
  const DType t = Type();
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  for (int n : Lengths({1, 7, 8, 15, 16, 17, 64, 100, 4096})) {
    Stored w = Store(t, 1, n, &rng);
    std::vector<float> x(n), y(n, 0.5f);
    for (auto& v : x) v = d(rng);
    const std::vector<float> xk = AsTheKernelsSeeIt(t, x);
    double dot = 0, exact = 0, bound = 0;
    for (int i = 0; i < n; ++i) {
      dot += double(w.values[i]) * xk[i];
      exact += double(w.values[i]) * x[i];
      bound += std::fabs(w.values[i]) * std::fabs(xk[i] - x[i]);
    }
    const float got = DotTyped(w.bytes.data(), t, x.data(), n);
    EXPECT_NEAR(got, dot, 1e-4 * std::sqrt(n) + 1e-5) << n;
    // Quantizing x costs at most sum |w| * |x' - x| against the exact product.
    EXPECT_LE(std::fabs(got - exact), bound + 1e-4 * std::sqrt(n) + 1e-5) << n;
    AxpyTyped(0.25f, w.bytes.data(), t, n, y.data());
    for (int i = 0; i < n; ++i) EXPECT_NEAR(y[i], 0.5f + 0.25f * w.values[i], 1e-6) << n;
    std::vector<float> f(n);
    ToFloat(w.bytes.data(), t, n, f.data());
    EXPECT_EQ(f, w.values);
  }
  // A 3-row matrix.
  const int cols = Traits(t).block_elements == 1 ? 50 : 64;
  Stored m = Store(t, 3, cols, &rng);
  std::vector<float> x(cols, 0.1f), out(3);
  const std::vector<float> xk = AsTheKernelsSeeIt(t, x);
  MatVec(WeightRef{m.bytes.data(), t}, x.data(), 3, cols, out.data());
  for (int r = 0; r < 3; ++r) {
    double s = 0;
    for (int c = 0; c < cols; ++c) s += m.values[r * cols + c] * double(xk[c]);
    EXPECT_NEAR(out[r], s, 1e-4);
  }
}

// MatVec takes rows kRowGroup at a time; each row must equal DotTyped of that
// row bit for bit, wherever the split into threads or groups falls.
TEST_P(TypedKernels, MatVecRowsEqualDotsExactly) {
  const DType t = Type();
  std::mt19937 rng(9);
  std::normal_distribution<float> d;
  for (int cols : Lengths({5, 16, 37, 256})) {
    const int rows = 2 * kRowGroup + 3;
    const uint64_t rb = RowBytes(t, cols);
    Stored m = Store(t, rows, cols, &rng);
    std::vector<float> x(cols), out(rows), part(rows);
    for (auto& v : x) v = d(rng);
    MatVec(WeightRef{m.bytes.data(), t}, x.data(), rows, cols, out.data());
    for (int r = 0; r < rows; ++r) {
      EXPECT_EQ(out[r], DotTyped(m.bytes.data() + r * rb, t, x.data(), cols)) << r << " " << cols;
    }
    // Starting at row 3 shifts every group.
    MatVec(WeightRef{m.bytes.data() + 3 * rb, t}, x.data(), rows - 3, cols, part.data());
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
    for (int dim : {32, 64}) {
      const int parts = gated ? 3 : 2, records = 23;
      const int64_t part = static_cast<int64_t>(RowBytes(t, dim));
      RecordLayout l{dim, gated ? 0 : -1, gated ? part : 0, gated ? 2 * part : part, Activation{ActivationKind::kRelu, 0}, t};
      const uint64_t row_bytes = parts * part;
      Stored m = Store(t, records * parts, dim, &rng);
      std::vector<float> x(dim), bias(records);
      for (auto& v : x) v = d(rng);
      for (auto& v : bias) v = 0.3f * d(rng);
      const char* base = m.bytes.data();
      for (int n : {0, 3, 4, 9, 17, 23}) {
        std::vector<int32_t> slots;
        for (int k = 0; k < n; ++k) slots.push_back(static_cast<int32_t>((k * 7) % records));
        std::vector<float> out(dim, 0.5f), want(dim, 0.5f), h(n), want_h(n);
        FfnRows(l, base, row_bytes, slots, x.data(), out.data(), h.data(), bias.data());
        for (int k = 0; k < n; ++k) {
          const char* row = base + slots[k] * row_bytes;
          float u = DotTyped(row + l.up_offset, t, x.data(), dim) + bias[k];
          float hk = std::max(u, 0.0f);
          if (gated) hk = std::max(DotTyped(row, t, x.data(), dim), 0.0f) * u;
          want_h[k] = hk;
          if (hk != 0.0f) AxpyTyped(hk, row + l.down_offset, t, dim, want.data());
        }
        EXPECT_EQ(h, want_h) << gated << " " << dim << " " << n;
        EXPECT_EQ(out, want) << gated << " " << dim << " " << n;
      }
    }
  }
}

// A tile of prepared products is the row kernel's product, bit for bit, for
// every shape of tile (quantized types have tiles of their own on x86).
TEST_P(TypedKernels, DotTilePreparedEqualsDotPreparedExactly) {
  const DType t = Type();
  std::mt19937 rng(31);
  std::normal_distribution<float> d;
  const int cols = Traits(t).block_elements == 1 ? 100 : 160;
  Stored m = Store(t, kTileRows, cols, &rng);
  std::vector<float> x(kTileInputs * cols);
  for (auto& v : x) v = d(rng);
  std::vector<KernelInput> in(kTileInputs);
  const KernelInput* ip[kTileInputs];
  for (int b = 0; b < kTileInputs; ++b) {
    in[b].Prepare(t, x.data() + b * cols, cols);
    ip[b] = &in[b];
  }
  const void* rows[kTileRows];
  for (int r = 0; r < kTileRows; ++r) rows[r] = m.bytes.data() + r * RowBytes(t, cols);
  for (int nr = 1; nr <= kTileRows; ++nr) {
    for (int ni = 1; ni <= kTileInputs; ++ni) {
      std::vector<float> out(kTileInputs * 7, -1.0f);
      DotTilePrepared(rows, nr, t, ip, ni, cols, out.data(), 7);
      for (int b = 0; b < kTileInputs; ++b) {
        for (int r = 0; r < 7; ++r) {
          if (b < ni && r < nr) {
            EXPECT_EQ(out[b * 7 + r], DotPrepared(rows[r], t, in[b], cols)) << nr << "x" << ni << " " << b << "," << r;
          } else {
            EXPECT_EQ(out[b * 7 + r], -1.0f) << "wrote outside the tile";
          }
        }
      }
    }
  }
}

// MatMul of a batch: quantized rows give every input exactly MatVec's
// products (the decode step's bits); float rows the same sums in tiles, to
// f32 rounding of the exact products.
TEST_P(TypedKernels, MatMulIsMatVecForEveryInput) {
  const DType t = Type();
  std::mt19937 rng(37);
  std::normal_distribution<float> d;
  const int rows = 2 * 32 + 7, cols = Traits(t).block_elements == 1 ? 1030 : 1056;
  Stored m = Store(t, rows, cols, &rng);
  for (int n : {2, 8, 13}) {
    std::vector<float> x(static_cast<size_t>(n) * cols);
    for (auto& v : x) v = d(rng);
    const int stride = rows + 3;
    std::vector<float> out(static_cast<size_t>(n) * stride, 0.0f), one(rows);
    MatMul(WeightRef{m.bytes.data(), t}, x.data(), n, rows, cols, out.data(), stride);
    for (int b = 0; b < n; ++b) {
      MatVec(WeightRef{m.bytes.data(), t}, x.data() + b * cols, rows, cols, one.data());
      const std::vector<float> xk = AsTheKernelsSeeIt(t, std::vector<float>(x.begin() + b * cols, x.begin() + (b + 1) * cols));
      for (int r = 0; r < rows; ++r) {
        const float got = out[static_cast<size_t>(b) * stride + r];
        if (Traits(t).quantized) {
          EXPECT_EQ(got, one[r]) << n << " input " << b << " row " << r;
        } else {
          double exact = 0, mag = 0;
          for (int c = 0; c < cols; ++c) {
            exact += double(m.values[r * cols + c]) * xk[c];
            mag += std::fabs(double(m.values[r * cols + c]) * xk[c]);
          }
          EXPECT_NEAR(got, exact, 1e-5 * mag + 1e-6) << n << " input " << b << " row " << r;
        }
      }
    }
  }
}

// The FFN of a batch against FfnRows on each input alone, with and without a
// mask, small batches and panels: quantized records give FfnRows' bits (int8
// inputs of the next layer would turn any rounding difference into another
// level), float records agree to rounding.
TEST_P(TypedKernels, FfnRowsBatchIsFfnRowsForEveryInput) {
  const DType t = Type();
  std::mt19937 rng(41);
  std::normal_distribution<float> d;
  std::bernoulli_distribution coin(0.4);
  const int dim = 96, records = 150;  // 150 rows: two full panels and a part
  const int64_t part = static_cast<int64_t>(RowBytes(t, dim));
  for (ActivationKind act : {ActivationKind::kRelu, ActivationKind::kSilu}) {
  for (int n : {5, 11, 32}) {
  RecordLayout l{dim, 0, part, 2 * part, Activation{act, 0}, t};
  const uint64_t row_bytes = 3 * part;
  Stored m = Store(t, records * 3, dim, &rng);
  std::vector<float> x(n * dim), bias(records);
  for (auto& v : x) v = d(rng);
  for (auto& v : bias) v = 0.3f * d(rng);
  std::vector<int32_t> slots, ids;
  for (int k = 0; k < records; ++k) {
    slots.push_back((k * 7) % records);
    ids.push_back(k);
  }
  std::vector<uint8_t> mask(static_cast<size_t>(n) * records);
  for (auto& v : mask) v = coin(rng);
  for (bool masked : {false, true}) {
    std::vector<float> out(n * dim, 0.5f);
    FfnRowsBatch(l, m.bytes.data(), row_bytes, slots, ids, x.data(), n, out.data(), masked ? mask.data() : nullptr,
                 records, bias.data());
    for (int b = 0; b < n; ++b) {
      std::vector<int32_t> own;
      std::vector<float> own_bias;
      for (int k = 0; k < records; ++k) {
        if (masked && mask[b * records + k] == 0) continue;
        own.push_back(slots[k]);
        own_bias.push_back(bias[k]);
      }
      std::vector<float> want(dim, 0.5f), h(own.size());
      FfnRows(l, m.bytes.data(), row_bytes, own, x.data() + b * dim, want.data(), h.data(), own_bias.data());
      for (int i = 0; i < dim; ++i) {
        // Float rows: f32 sums of ~150 terms in two orders, h to rounding.
        double mag = 0.5;
        for (size_t k = 0; k < own.size(); ++k) mag += std::fabs(h[k] * m.values[(own[k] * 3 + 2) * dim + i]);
        if (Traits(t).quantized) {
          EXPECT_EQ(out[b * dim + i], want[i]) << masked << " input " << b << " element " << i;
        } else {
          EXPECT_NEAR(out[b * dim + i], want[i], 1e-4 * mag) << masked << " input " << b << " element " << i;
        }
      }
    }
  }
  }
  }
}

std::vector<KernelPath> AvailablePaths() {
  std::vector<KernelPath> paths;
  for (KernelPath p : {KernelPath::kPortable, KernelPath::kAvx2, KernelPath::kAvx512, KernelPath::kNeon}) {
    if (KernelPathAvailable(p)) paths.push_back(p);
  }
  return paths;
}

INSTANTIATE_TEST_SUITE_P(TypesAndPaths, TypedKernels,
                         ::testing::Combine(::testing::Values(DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0),
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
  for (KernelPath p : {KernelPath::kPortable, KernelPath::kAvx2, KernelPath::kAvx512, KernelPath::kNeon}) {
    EXPECT_EQ(UseKernelPath(p), KernelPathAvailable(p));
    if (KernelPathAvailable(p)) EXPECT_EQ(CurrentKernelPath(), p);
  }
  UseKernelPath(BestKernelPath());
  // The x86-64 machines this project builds on have AVX2 and F16C; losing the
  // SIMD path silently would cost 5-10x in every product.
#if defined(__x86_64__)
  EXPECT_NE(BestKernelPath(), KernelPath::kPortable);
#elif defined(__aarch64__)
  EXPECT_EQ(BestKernelPath(), KernelPath::kNeon);
#endif
}

// x quantized for the integer products is the same on every path, bit for
// bit: ties of x / d (half to even), zeros, tiny and large blocks.
TEST(TypedKernelPaths, InputBlocksAreTheSameOnEveryPath) {
  std::mt19937 rng(23);
  std::normal_distribution<float> d;
  const int n = 32 * 40;
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  for (int j = 0; j < 32; ++j) x[j] = 0.5f * (j - 16);     // x / d lands on halves
  for (int j = 32; j < 64; ++j) x[j] = 0.0f;               // d = 0
  for (int j = 64; j < 96; ++j) x[j] = 1e-40f * (j - 80);  // subnormal
  for (int j = 96; j < 128; ++j) x[j] = 3e37f * d(rng);
  for (int j = 128; j < 160; ++j) x[j] = j % 2 ? -127.0f : 63.5f;  // -max first, exact halves
  std::vector<std::vector<char>> blocks;
  for (KernelPath p : AvailablePaths()) {
    ASSERT_TRUE(UseKernelPath(p));
    KernelInput in;
    in.Prepare(DType::kQ8_0, x.data(), n);
    const char* b = static_cast<const char*>(in.data());
    blocks.emplace_back(b, b + n / 32 * sizeof(InputBlock));
  }
  UseKernelPath(BestKernelPath());
  for (size_t i = 1; i < blocks.size(); ++i) EXPECT_EQ(blocks[i], blocks[0]) << KernelPathName(AvailablePaths()[i]);
  // The portable loop is the published rule: d = max|x| / 127, q = round(x / d).
  const auto* first = reinterpret_cast<const InputBlock*>(blocks[0].data());
  EXPECT_EQ(first[0].d, 8.0f / 127.0f);
  EXPECT_EQ(first[1].d, 0.0f);
  EXPECT_EQ(first[1].q[5], 0);
  EXPECT_EQ(first[4].q[1], -127);
}

// The paths agree with each other to rounding: products of 4096 weights of
// every type on every path are within a few ulps of the portable loop's, and
// so are eight-row sums of down columns.
TEST(TypedKernelPaths, AllPathsAgreeToRounding) {
  std::mt19937 rng(21);
  std::normal_distribution<float> d;
  for (DType t : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    const int rows = 3 * kRowGroup + 5, cols = Traits(t).block_elements == 1 ? 4096 + 7 : 4096;
    Stored m = Store(t, rows, cols, &rng);
    std::vector<float> x(cols);
    for (auto& v : x) v = d(rng);
    std::vector<float> want(rows), want_y(cols, 0.0f);
    const float a[kRowGroup] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f, 3.0f, -2.0f};
    const void* group[kRowGroup];
    for (int k = 0; k < kRowGroup; ++k) group[k] = m.bytes.data() + k * RowBytes(t, cols);
    ASSERT_TRUE(UseKernelPath(KernelPath::kPortable));
    MatVec(WeightRef{m.bytes.data(), t}, x.data(), rows, cols, want.data());
    AxpyRowsTyped(a, group, t, cols, want_y.data());
    for (KernelPath p : AvailablePaths()) {
      ASSERT_TRUE(UseKernelPath(p));
      std::vector<float> got(rows), got_y(cols, 0.0f);
      MatVec(WeightRef{m.bytes.data(), t}, x.data(), rows, cols, got.data());
      AxpyRowsTyped(a, group, t, cols, got_y.data());
      for (int r = 0; r < rows; ++r) {
        EXPECT_NEAR(got[r], want[r], 2e-3f * (1 + std::fabs(want[r]))) << DTypeName(t) << " " << KernelPathName(p) << " row " << r;
      }
      for (int i = 0; i < cols; ++i) {
        EXPECT_NEAR(got_y[i], want_y[i], 1e-5f * (1 + std::fabs(want_y[i]))) << DTypeName(t) << " " << KernelPathName(p);
      }
    }
  }
  UseKernelPath(BestKernelPath());
}

}  // namespace
}  // namespace llmflash

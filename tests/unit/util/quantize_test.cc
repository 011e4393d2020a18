// The storage-type table and the quantizers: q8_0 and q4_0 blocks equal, byte
// for byte, those of the independent reference in
// tests/reference/quant_reference.py (llama.cpp's reference rounding).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "kernels/typed_kernels.h"
#include "util/dtype.h"
#include "util/half.h"
#include "util/quantize.h"

namespace llmflash {
namespace {

std::string Hex(const std::vector<char>& b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (char c : b) {
    s += digits[(static_cast<unsigned char>(c) >> 4) & 0xF];
    s += digits[static_cast<unsigned char>(c) & 0xF];
  }
  return s;
}

TEST(StorageTypes, TableMatchesGgufBlocks) {
  EXPECT_EQ(RowBytes(DType::kF32, 10), 40u);
  EXPECT_EQ(RowBytes(DType::kBF16, 10), 20u);
  EXPECT_EQ(RowBytes(DType::kQ8_0, 4096), 4096u / 32 * 34);
  EXPECT_EQ(RowBytes(DType::kQ4_0, 4096), 4096u / 32 * 18);
  EXPECT_TRUE(FitsBlocks(DType::kQ4_0, 64));
  EXPECT_FALSE(FitsBlocks(DType::kQ4_0, 48));
  EXPECT_TRUE(FitsBlocks(DType::kF16, 7));
  EXPECT_DOUBLE_EQ(BytesPerElement(DType::kQ4_0), 18.0 / 32);
  for (DType t : kAllDTypes) {
    EXPECT_EQ(ParseDType(DTypeName(t)), t) << DTypeName(t);
    EXPECT_EQ(Traits(t).quantized, Traits(t).block_elements > 1) << DTypeName(t);
  }
  EXPECT_FALSE(ParseDType("q4_1").has_value());
  EXPECT_FALSE(ParseDType("").has_value());
}

TEST(Quantize, BlocksEqualTheIndependentReferenceByteForByte) {
  std::ifstream in(std::string(LLMFLASH_TEST_SOURCE_DIR) + "/testdata/quant_reference.json");
  ASSERT_TRUE(in) << "tests/testdata/quant_reference.json";
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_GE(j["cases"].size(), 10u);
  for (const auto& c : j["cases"]) {
    std::vector<float> x;
    for (uint32_t bits : c["x_bits"].get<std::vector<uint32_t>>()) {
      float f;
      std::memcpy(&f, &bits, 4);
      x.push_back(f);
    }
    for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
      std::vector<char> out(RowBytes(t, x.size()));
      QuantizeRow(t, x.data(), static_cast<int64_t>(x.size()), out.data());
      EXPECT_EQ(Hex(out), c[DTypeName(t)].get<std::string>()) << c["name"] << " " << DTypeName(t);
    }
  }
}

// Dequantized blocks are within half a step of the input for q8_0 (d =
// max|x| / 127) and a step for q4_0 (whose grid stops at +7: -m's +8 is
// clamped), plus the f16 rounding of d times the largest level.
TEST(Quantize, RoundTripErrorIsWithinAStep) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d;
  std::vector<float> x(4096), back(4096);
  for (auto& v : x) v = d(rng);
  for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
    std::vector<char> q(RowBytes(t, x.size()));
    QuantizeRow(t, x.data(), 4096, q.data());
    ToFloat(q.data(), t, 4096, back.data());
    for (int b = 0; b < 4096 / 32; ++b) {
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
      const float step = t == DType::kQ8_0 ? amax / 127 : amax / 8;
      for (int i = 0; i < 32; ++i) {
        const float bound = t == DType::kQ8_0 ? (0.5f + 127 / 2048.0f) * step : (1.0f + 8 / 2048.0f) * step;
        EXPECT_LE(std::fabs(back[b * 32 + i] - x[b * 32 + i]), bound * 1.001f)
            << DTypeName(t) << " " << b * 32 + i;
      }
    }
  }
}

}  // namespace
}  // namespace llmflash

// The GGUF reader and dequantizers (unit: also runs under qemu on aarch64).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "format/gguf.h"
#include "testing/gguf_writer.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;
using testing::RelativeRms;
using testing::StatusIs;

std::string GgufDir() { return testing::SharedDir() + "/gguf"; }

// Every GGUF value type, nested arrays, and the typed getters' refusals.
TEST(GgufReader, ReadsEveryValueType) {
  auto raw = [](auto v) { return std::string(reinterpret_cast<const char*>(&v), sizeof v); };
  testing::GgufBuilder b;
  b.RawKv("u8", 0, raw(uint8_t{200}));
  b.RawKv("i8", 1, raw(int8_t{-100}));
  b.RawKv("u16", 2, raw(uint16_t{60000}));
  b.RawKv("i16", 3, raw(int16_t{-30000}));
  b.U32("u32", 4000000000u);
  b.I32("i32", -2000000000);
  b.F32("f32", 0.25f);
  b.Bool("bool", true);
  b.Str("str", std::string("a\0b", 3));
  b.RawKv("u64", 10, raw(uint64_t{1} << 62));
  b.RawKv("i64", 11, raw(int64_t{-5}));
  b.RawKv("f64", 12, raw(1.5));
  b.I32Array("ints", {1, -2, 3});
  b.F32Array("reals", {0.5f, -1});
  b.StrArray("strs", {"x", "", "yz"});
  // [[1, 2], []] as arrays of u16
  std::string nested = raw(uint32_t{9}) + raw(uint64_t{2}) + raw(uint32_t{2}) + raw(uint64_t{2}) +
                       raw(uint16_t{1}) + raw(uint16_t{2}) + raw(uint32_t{2}) + raw(uint64_t{0});
  b.RawKv("nested", 9, nested);
  b.Tensor("t", {32, 2}, testing::kGgmlQ8_0, std::string(2 * 34, '\1'));
  const std::string bytes = b.Bytes(2, 64);
  auto f = GgufFile::Parse(bytes, bytes.size(), "mem.gguf");
  ASSERT_THAT(f.status(), IsOk());
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_start() % 64, 0u);
  EXPECT_EQ(*f->GetInt("u8"), 200);
  EXPECT_EQ(*f->GetInt("i8"), -100);
  EXPECT_EQ(*f->GetInt("u16"), 60000);
  EXPECT_EQ(*f->GetInt("i16"), -30000);
  EXPECT_EQ(*f->GetInt("u32"), 4000000000ll);
  EXPECT_EQ(*f->GetInt("i32"), -2000000000);
  EXPECT_EQ(*f->GetReal("f32"), 0.25);
  EXPECT_EQ(*f->GetReal("u32"), 4e9);  // integers are numbers too
  EXPECT_TRUE(*f->GetBool("bool"));
  EXPECT_EQ(*f->GetString("str"), std::string("a\0b", 3));
  EXPECT_EQ(*f->GetInt("u64"), int64_t{1} << 62);
  EXPECT_EQ(*f->GetInt("i64"), -5);
  EXPECT_EQ(*f->GetReal("f64"), 1.5);
  EXPECT_EQ((*f->GetArray("ints", GgufValueType::kInt32))->ints, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ((*f->GetArray("ints", GgufValueType::kUint32))->ints.size(), 3u);  // any integer type
  EXPECT_EQ((*f->GetArray("reals", GgufValueType::kFloat32))->reals, (std::vector<double>{0.5, -1}));
  EXPECT_EQ((*f->GetArray("strs", GgufValueType::kString))->strings, (std::vector<std::string>{"x", "", "yz"}));
  const GgufValue* n = f->Find("nested");
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->arrays.size(), 2u);
  EXPECT_EQ(n->arrays[0].ints, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(n->arrays[1].ints.empty());
  // Wrong types are refused by name, never converted.
  EXPECT_THAT(f->GetString("u8").status(), StatusIs(StatusCode::kCorruption, HasSubstr("\"u8\" is uint8, not a string")));
  EXPECT_THAT(f->GetBool("u8").status(), StatusIs(StatusCode::kCorruption, ::testing::_));
  EXPECT_THAT(f->GetInt("bool").status(), StatusIs(StatusCode::kCorruption, ::testing::_));
  EXPECT_THAT(f->GetArray("strs", GgufValueType::kInt32).status(), StatusIs(StatusCode::kCorruption, ::testing::_));
  EXPECT_EQ(*f->GetIntOr("missing", 7), 7);
  EXPECT_THAT(f->GetIntOr("str", 7).status(), StatusIs(StatusCode::kCorruption, ::testing::_));
  const GgufTensorInfo* t = f->FindTensor("t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->bytes, 68u);
  EXPECT_EQ(t->rows(), 2u);
  // A prefix of the file asks for more instead of failing.
  auto partial = GgufFile::Parse(std::string_view(bytes).substr(0, 100), bytes.size(), "mem.gguf");
  EXPECT_EQ(partial.status().code(), StatusCode::kResourceExhausted);
}

// Every quantized tensor of the shared files dequantizes to the f16 file's
// weights within its type's error: wrong nibble order, scales or mins
// would give errors of order 1.
TEST(GgufDequantize, EveryTypeInTheSharedFilesMatchesTheF16Weights) {
  auto f16 = GgufFile::Open(GgufDir() + "/tiny-llama-f16.gguf");
  ASSERT_THAT(f16.status(), IsOk());
  const std::map<GgmlType, double> bound = {{GgmlType::kQ8_0, 0.01}, {GgmlType::kQ6_K, 0.02},
                                            {GgmlType::kQ5_0, 0.05}, {GgmlType::kQ4_K, 0.1},
                                            {GgmlType::kQ4_0, 0.12}, {GgmlType::kF32, 1e-7}};
  std::set<GgmlType> seen;
  for (const char* q : {"q8_0", "q4_0", "q4_k_m"}) {
    auto f = GgufFile::Open(GgufDir() + "/tiny-llama-" + q + ".gguf");
    ASSERT_THAT(f.status(), IsOk());
    for (const GgufTensorInfo& t : f->tensors()) {
      const GgufTensorInfo* ref = f16->FindTensor(t.name);
      ASSERT_NE(ref, nullptr) << t.name;
      auto got = f->ReadF32(t);
      auto want = f16->ReadF32(*ref);
      ASSERT_THAT(got.status(), IsOk());
      ASSERT_TRUE(bound.count(t.type)) << t.name << " is " << GgmlTypeName(t.type);
      EXPECT_LE(RelativeRms(*got, *want), bound.at(t.type)) << q << " " << t.name << " " << GgmlTypeName(t.type);
      seen.insert(t.type);
    }
  }
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ5_0, GgmlType::kQ6_K}) {
    EXPECT_TRUE(seen.count(t)) << GgmlTypeName(t) << " is not in the shared files any more";
  }
}

}  // namespace
}  // namespace llmflash

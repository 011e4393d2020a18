// The on-disk model: bundle layout, records against the source checkpoint,
// manifest parsing and the llama2.c importer's checks.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "format/bundle_layout.h"
#include "format/manifest.h"
#include "llmflash/convert.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

TEST(BundleLayout, LayersAreAlignedAndRecordsContiguous) {
  BundleLayout b = ComputeBundleLayout(64, 172, 5, /*gated=*/true, DType::kF32);
  EXPECT_EQ(b.record_bytes, 3u * 64 * 4);
  EXPECT_EQ(b.record_stride, 768u);
  EXPECT_EQ(b.gate_offset, 0);
  EXPECT_EQ(b.up_offset, 64 * 4);  // bytes
  EXPECT_EQ(b.down_offset, 128 * 4);
  ASSERT_EQ(b.layer_offsets.size(), 5u);
  for (size_t l = 0; l < 5; ++l) {
    EXPECT_EQ(b.layer_offsets[l] % 4096, 0u);
    if (l > 0) EXPECT_GE(b.layer_offsets[l] - b.layer_offsets[l - 1], 172u * 768);
  }
  EXPECT_EQ(b.file_bytes % 4096, 0u);
}

// Quantized records: each part is whole blocks (34 bytes per 32 elements for
// q8_0, 18 for q4_0), the parts back to back.
TEST(BundleLayout, QuantizedRecordsAreWholeBlocksPerPart) {
  BundleLayout q8 = ComputeBundleLayout(4096, 11008, 2, /*gated=*/true, DType::kQ8_0);
  EXPECT_EQ(q8.up_offset, 4096 / 32 * 34);
  EXPECT_EQ(q8.down_offset, 2 * 4096 / 32 * 34);
  EXPECT_EQ(q8.record_bytes, 3u * 4096 / 32 * 34);
  EXPECT_EQ(q8.record_stride % 4096, 0u);
  BundleLayout q4 = ComputeBundleLayout(4096, 16384, 2, /*gated=*/false, DType::kQ4_0);
  EXPECT_EQ(q4.gate_offset, -1);
  EXPECT_EQ(q4.down_offset, 4096 / 32 * 18);
  EXPECT_EQ(q4.record_bytes, 2u * 4096 / 32 * 18);  // 4608: padded to 8192 for O_DIRECT
  EXPECT_EQ(q4.record_stride, 8192u);
}

TEST(BundleLayout, LargeRecordsArePaddedForDirectReads) {
  // OPT-6.7B in f16: up row + down column = 2 * 4096 * 2 bytes.
  BundleLayout opt = ComputeBundleLayout(4096, 16384, 32, false, DType::kF16);
  EXPECT_EQ(opt.record_stride, 16384u);
  EXPECT_EQ(opt.gate_offset, -1);
  // An odd size just above 4 KiB rounds up to the next 4 KiB.
  EXPECT_EQ(RecordStrideFor(4100), 8192u);
  EXPECT_EQ(RecordStrideFor(100), 128u);
}

// Each neuron's record holds w1 row i, w3 row i and w2 column i of the source.
TEST(Llama2cImport, RecordsHoldGateUpRowAndDownColumn) {
  const std::string& dir = testing::Stories260KModel();
  auto m = LoadManifest(dir);
  ASSERT_THAT(m.status(), IsOk());
  std::string src = testing::ReadFile(testing::Stories260KBin());
  std::string bundle = testing::ReadFile(dir + "/ffn.bundle");
  const int d = 64, f = 172, L = 5, V = 512, kv = 32;
  auto at = [&](size_t float_index) {
    float v;
    std::memcpy(&v, src.data() + 28 + float_index * 4, 4);
    return v;
  };
  size_t w1 = size_t(V) * d + L * d + L * d * d * 2 + L * kv * d * 2 + L * d;
  size_t w2 = w1 + size_t(L) * f * d, w3 = w2 + size_t(L) * d * f;
  for (int l : {0, 2, 4}) {
    for (int i : {0, 1, 100, 171}) {
      const float* rec = reinterpret_cast<const float*>(bundle.data() + m->RecordOffset(l, i));
      for (int j = 0; j < d; ++j) {
        ASSERT_EQ(rec[j], at(w1 + (size_t(l) * f + i) * d + j));
        ASSERT_EQ(rec[d + j], at(w3 + (size_t(l) * f + i) * d + j));
        ASSERT_EQ(rec[2 * d + j], at(w2 + size_t(l) * d * f + size_t(j) * f + i));
      }
    }
  }
}

TEST(Llama2cImport, VerifyPassesThenCatchesAFlippedBit) {
  testing::TempDir tmp;
  ConvertOptions o{testing::Stories260KBin(), testing::Stories260KTokenizer(), tmp.File("m"), {}};
  ASSERT_THAT(ConvertLlama2c(o), IsOk());
  EXPECT_THAT(VerifyModel(tmp.File("m")), IsOk());
  std::string bundle = testing::ReadFile(tmp.File("m/ffn.bundle"));
  bundle[1000] ^= 0x10;
  testing::WriteFile(tmp.File("m/ffn.bundle"), bundle);
  EXPECT_THAT(VerifyModel(tmp.File("m")),
              StatusIs(StatusCode::kCorruption, HasSubstr("ffn.bundle: checksum mismatch")));
}

TEST(Llama2cImport, RefusesToOverwriteAModel) {
  ConvertOptions o{testing::Stories260KBin(), testing::Stories260KTokenizer(),
                   testing::Stories260KModel(), {}};
  EXPECT_THAT(ConvertLlama2c(o), StatusIs(StatusCode::kInvalidArgument, HasSubstr("already holds")));
}

TEST(Llama2cImport, TruncatedCheckpointIsCorruption) {
  testing::TempDir tmp;
  std::string src = testing::ReadFile(testing::Stories260KBin());
  testing::WriteFile(tmp.File("short.bin"), src.substr(0, src.size() - 4));
  ConvertOptions o{tmp.File("short.bin"), testing::Stories260KTokenizer(), tmp.File("m"), {}};
  EXPECT_THAT(ConvertLlama2c(o), StatusIs(StatusCode::kCorruption, HasSubstr("short.bin")));
  testing::WriteFile(tmp.File("tiny.bin"), "abc");
  o.input = tmp.File("tiny.bin");
  EXPECT_THAT(ConvertLlama2c(o), StatusIs(StatusCode::kCorruption, HasSubstr("too short")));
  o.input = tmp.File("missing.bin");
  EXPECT_THAT(ConvertLlama2c(o), StatusIs(StatusCode::kNotFound, HasSubstr("missing.bin")));
}

TEST(Llama2cImport, MismatchedTokenizerIsCorruption) {
  testing::TempDir tmp;
  std::string tok = testing::ReadFile(testing::Stories260KTokenizer());
  testing::WriteFile(tmp.File("tok.bin"), tok.substr(0, tok.size() / 2));
  ConvertOptions o{testing::Stories260KBin(), tmp.File("tok.bin"), tmp.File("m"), {}};
  EXPECT_THAT(ConvertLlama2c(o), StatusIs(StatusCode::kCorruption, HasSubstr("tok.bin")));
}

TEST(Manifest, RoundTripsAndRejectsBadFields) {
  const std::string& dir = testing::Stories260KModel();
  std::string text = testing::ReadFile(dir + "/manifest.json");
  auto m = ParseManifest(text, "manifest.json");
  ASSERT_THAT(m.status(), IsOk());
  auto again = ParseManifest(SerializeManifest(*m), "again");
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_EQ(SerializeManifest(*again), SerializeManifest(*m));

  struct Case { std::string from, to, error; };
  std::vector<Case> cases = {
      {"\"format_version\": 1", "\"format_version\": 7", "format_version 7"},
      {"\"dim\": 64", "\"dim\": -64", "\"dim\""},
      {"\"dim\": 64", "\"dim\": \"64\"", "\"dim\" must be an integer"},
      {"\"n_kv_heads\": 4", "\"n_kv_heads\": 3", "must divide n_heads"},
      {"\"record_bytes\": 768", "\"record_bytes\": 769", "record_bytes"},
      {"\"name\": \"ffn.bundle\"", "\"name\": \"../etc/passwd\"", "not a plain file name"},
      {"\"dtype\": \"f32\"", "\"dtype\": \"q4\"", "\"q4\""},
  };
  for (const Case& c : cases) {
    std::string bad = text;
    size_t at = bad.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    bad.replace(at, c.from.size(), c.to);
    auto r = ParseManifest(bad, "manifest.json");
    EXPECT_FALSE(r.ok()) << c.to;
    EXPECT_THAT(r.status().message(), HasSubstr(c.error)) << c.to;
    EXPECT_THAT(r.status().message(), HasSubstr("manifest.json")) << c.to;
  }
  EXPECT_THAT(ParseManifest("{not json", "m.json").status(),
              StatusIs(StatusCode::kCorruption, HasSubstr("not valid JSON")));
  EXPECT_THAT(ParseManifest("[1,2]", "m.json").status(), StatusIs(StatusCode::kCorruption, HasSubstr("m.json")));
}

// Storage types in the manifest: rows must be whole blocks of their type,
// the records' size must follow the FFN type, and a manifest written before
// bundle.dtype existed reads as records in the model's dtype.
TEST(Manifest, StorageTypesAreCheckedAndOldManifestsStillRead) {
  const std::string text = testing::ReadFile(testing::Stories260KModel() + "/manifest.json");
  const nlohmann::json good = nlohmann::json::parse(text);
  auto parse = [](const nlohmann::json& j) { return ParseManifest(j.dump(), "manifest.json"); };
  nlohmann::json old = good;
  old["bundle"].erase("dtype");
  auto m = parse(old);
  ASSERT_THAT(m.status(), IsOk());
  EXPECT_EQ(m->ffn_dtype, m->dtype);

  nlohmann::json j = good;
  j["resident"]["tensors"][0]["dtype"] = "q4_0";
  j["resident"]["tensors"][0]["shape"] = {512, 48};
  EXPECT_THAT(parse(j).status(), StatusIs(StatusCode::kCorruption, HasSubstr("not whole blocks of q4_0")));
  j["resident"]["tensors"][0]["shape"] = {512, 64};
  auto q = parse(j);
  ASSERT_THAT(q.status(), IsOk());
  EXPECT_EQ(q->tensors[0].bytes, 512u * 2 * 18);  // two blocks per row
  j = good;
  j["bundle"]["dtype"] = "q8_0";  // the records' size no longer matches
  EXPECT_THAT(parse(j).status(), StatusIs(StatusCode::kCorruption, HasSubstr("record_bytes")));
  j["bundle"]["record_bytes"] = 3 * 2 * 34;
  j["bundle"]["record_stride"] = 256;
  EXPECT_THAT(parse(j).status(), IsOk());
  j["bundle"]["dtype"] = "q3";
  EXPECT_THAT(parse(j).status(), StatusIs(StatusCode::kCorruption, HasSubstr("\"q3\" is not f32, f16, bf16, q8_0 or q4_0")));
  j["bundle"]["dtype"] = 4;
  EXPECT_THAT(parse(j).status(), StatusIs(StatusCode::kCorruption, HasSubstr("dtype")));
}

TEST(Manifest, FileSizesAreCheckedAgainstTheDisk) {
  testing::TempDir tmp;
  ConvertOptions o{testing::Stories260KBin(), testing::Stories260KTokenizer(), tmp.File("m"), {}};
  ASSERT_THAT(ConvertLlama2c(o), IsOk());
  std::string bundle = testing::ReadFile(tmp.File("m/ffn.bundle"));
  testing::WriteFile(tmp.File("m/ffn.bundle"), bundle.substr(0, bundle.size() - 4096));
  EXPECT_THAT(LoadManifest(tmp.File("m")).status(),
              StatusIs(StatusCode::kCorruption, HasSubstr("ffn.bundle: size is")));
}

}  // namespace
}  // namespace llmflash

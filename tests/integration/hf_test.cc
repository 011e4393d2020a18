// Hugging Face checkpoints (tiny OPT pre-/post-LN, Llama single and sharded,
// Mistral) converted and run through the flash path, against the logits of
// an independent implementation (tests/reference/hf_reference.py) and, for
// Llama, the reference logits shipped in ../shared.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "format/safetensors.h"
#include "llmflash/llmflash.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

std::string HfDir(const std::string& name) { return testing::SharedDir() + "/models/hf-tiny/" + name; }

nlohmann::json Reference() {
  return nlohmann::json::parse(
      testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/hf_reference_logits.json"));
}

class HfModel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = tmp_.File("model");
    ConvertOptions o;
    o.input = HfDir(GetParam());
    o.output = dir_;
    ASSERT_THAT(ConvertHuggingFace(o), IsOk());
  }
  std::vector<float> Logits(const std::vector<TokenId>& ids, uint64_t budget) {
    // f32 attention: the reference is exact f32 math.
    auto model = Model::Open(dir_, {.dram_budget_bytes = budget, .kv_cache = KvCacheType::kF32});
    EXPECT_THAT(model.status(), IsOk());
    if (!model.ok()) return {};
    if (budget > 0) EXPECT_TRUE((*model)->info().streams_layers);
    // Untied models then leave the embedding table on flash, a row read per token.
    const bool untied = GetParam() != "opt" && GetParam() != "opt350";
    EXPECT_EQ((*model)->info().embeddings_on_flash, budget > 0 && untied);
    auto session = (*model)->NewSession({});
    auto logits = (*session)->Logits(ids);
    EXPECT_THAT(logits.status(), IsOk());
    if (budget > 0) {
      uint64_t bytes = 0;
      for (const auto& t : (*session)->stats().tokens) bytes += t.bytes_read;
      EXPECT_GT(bytes, 0u);
    }
    return logits.ok() ? *logits : std::vector<float>{};
  }
  testing::TempDir tmp_;
  std::string dir_;
};

TEST_P(HfModel, LogitsMatchTheIndependentImplementation) {
  nlohmann::json ref = Reference();
  const auto& seqs = ref["sequences"];
  const auto& want = ref["models"][GetParam()];
  // The smallest budget Open accepts holds one neuron per layer: every FFN
  // is streamed from flash.
  uint64_t lo = 1, hi = 64 << 20;
  while (lo + 1 < hi) {
    uint64_t mid = (lo + hi) / 2;
    (Model::Open(dir_, {.dram_budget_bytes = mid, .kv_cache = KvCacheType::kF32}).ok() ? hi : lo) = mid;
  }
  for (size_t s = 0; s < seqs.size(); ++s) {
    std::vector<TokenId> ids = seqs[s].get<std::vector<TokenId>>();
    EXPECT_LT(testing::MaxAbsDiff(Logits(ids, 0), want[s]), 1e-4) << "sequence " << s;
    EXPECT_LT(testing::MaxAbsDiff(Logits(ids, hi), want[s]), 1e-4) << "sequence " << s << " streamed";
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, HfModel,
                         ::testing::Values("opt", "opt350", "llama", "llama-sharded", "mistral"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

// f16 and bf16 storage (and q8_0, which these fixtures cannot take: it falls
// back to f16) against the f32 reference. Each weight is rounded
// to the storage type's unit roundoff u (f16: 2^-11, bf16: 2^-8); through a
// few layers of sums the logits move by a few u relative to their scale
// (measured: f16 <= 2.1u, bf16 <= 1.5u on these models). The tolerance is 8u
// times max(1, largest |logit|).
class HfDType : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(HfDType, HalfStorageStaysWithinRoundingOfF32) {
  auto [name, dtype] = GetParam();
  testing::TempDir tmp;
  ConvertOptions o;
  o.input = HfDir(name);
  o.output = tmp.File("m");
  o.dtype = dtype;
  std::vector<std::string> notes;
  o.note = [&](const std::string& n) { notes.push_back(n); };
  ASSERT_THAT(ConvertHuggingFace(o), IsOk());
  auto model = Model::Open(tmp.File("m"), {});
  ASSERT_THAT(model.status(), IsOk());
  if (dtype == "q8_0") {
    // Told once per tensor (and once for the FFN records), and stored as f16.
    ASSERT_FALSE(notes.empty());
    EXPECT_THAT(notes[0], ::testing::HasSubstr("not whole q8_0 blocks of 32; stored as f16"));
    EXPECT_THAT(notes, ::testing::Contains(::testing::HasSubstr("FFN records")));
    EXPECT_EQ((*model)->info().dtype, "f16");
    EXPECT_EQ((*model)->info().ffn_dtype, "f16");
  } else {
    EXPECT_THAT(notes, ::testing::Each(::testing::Not(::testing::HasSubstr("stored as"))));
    EXPECT_EQ((*model)->info().dtype, dtype);
  }
  // These fixtures ship no tokenizer: convert says so rather than dropping it silently.
  EXPECT_THAT(notes, ::testing::Contains(::testing::HasSubstr("no tokenizer.json: the model converts without a tokenizer")));
  nlohmann::json ref = Reference();
  for (size_t s = 0; s < ref["sequences"].size(); ++s) {
    auto session = (*model)->NewSession({});
    auto logits = (*session)->Logits(ref["sequences"][s].get<std::vector<TokenId>>());
    ASSERT_THAT(logits.status(), IsOk());
    double scale = 1;
    for (const auto& row : ref["models"][name][s]) {
      for (const auto& v : row) scale = std::max(scale, std::abs(v.get<double>()));
    }
    // These fixtures' rows (8 to 24 elements) are not whole q8_0 blocks:
    // every matrix stays f16 (checked below).
    const double u = dtype == "bf16" ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    double diff = testing::MaxAbsDiff(*logits, ref["models"][name][s]);
    EXPECT_LT(diff, 8 * u * scale) << name << " " << dtype;
    EXPECT_GT(diff, 0.0) << "suspiciously exact: was the model really stored in " << dtype << "?";
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, HfDType,
                         ::testing::Combine(::testing::Values("opt", "opt350", "llama", "mistral"),
                                            ::testing::Values("f16", "bf16", "q8_0")),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param);
                         });

TEST(HfImport, LlamaMatchesTheSharedReferenceLogits) {
  testing::TempDir tmp;
  ConvertOptions o;
  o.input = HfDir("llama");
  o.output = tmp.File("m");
  ASSERT_THAT(ConvertHuggingFace(o), IsOk());
  auto ref = nlohmann::json::parse(testing::ReadFile(HfDir("llama") + "/reference_logits.json"));
  // f32 attention matches the reference within f32 rounding; the default f16
  // KV cache within f16's (keys and values rounded to 11 bits).
  for (KvCacheType kv : {KvCacheType::kF32, KvCacheType::kF16}) {
    auto model = Model::Open(tmp.File("m"), {.kv_cache = kv});
    ASSERT_THAT(model.status(), IsOk());
    for (size_t s = 0; s < ref["sequences"].size(); ++s) {
      auto session = (*model)->NewSession({});
      auto logits = (*session)->Logits(ref["sequences"][s].get<std::vector<TokenId>>());
      ASSERT_THAT(logits.status(), IsOk());
      double scale = 1;
      for (const auto& row : ref["logits"][s]) {
        for (const auto& v : row) scale = std::max(scale, std::abs(v.get<double>()));
      }
      const double diff = testing::MaxAbsDiff(*logits, ref["logits"][s]);
      if (kv == KvCacheType::kF32) {
        EXPECT_LT(diff, 1e-4);
      } else {
        EXPECT_LT(diff, 8 * std::ldexp(1.0, -11) * scale);
        EXPECT_GT(diff, 0.0) << "an f16 KV cache that changes nothing was not f16";
      }
    }
  }
  // No tokenizer in this checkpoint: generation says so instead of guessing.
  auto model = Model::Open(tmp.File("m"), {});
  ASSERT_THAT(model.status(), IsOk());
  auto session = (*model)->NewSession({});
  EXPECT_THAT((*session)->Generate("hi", {}, nullptr), StatusIs(StatusCode::kUnsupported, HasSubstr("tokenizer")));
}

TEST(HfImport, UnknownArchitectureAndMissingTensorsAreNamed) {
  testing::TempDir tmp;
  std::filesystem::copy(HfDir("llama"), tmp.File("in"));
  std::string cfg = testing::ReadFile(tmp.File("in/config.json"));
  std::string bad = cfg;
  bad.replace(bad.find("LlamaForCausalLM"), 16, "GPTNeoXForCausalLM");
  testing::WriteFile(tmp.File("in/config.json"), bad);
  ConvertOptions o;
  o.input = tmp.File("in");
  o.output = tmp.File("out");
  EXPECT_THAT(ConvertHuggingFace(o), StatusIs(StatusCode::kUnsupported, HasSubstr("GPTNeoXForCausalLM")));
  bad = cfg;
  bad.replace(bad.find("\"num_hidden_layers\": 2"), 22, "\"num_hidden_layers\": 3");
  testing::WriteFile(tmp.File("in/config.json"), bad);
  o.output = tmp.File("out2");
  EXPECT_THAT(ConvertHuggingFace(o), StatusIs(StatusCode::kNotFound, HasSubstr("model.layers.2.")));
}

// safetensors headers with hostile fields give errors naming file and tensor.
TEST(Safetensors, HostileHeadersAreRejected) {
  struct Case { std::string json; uint64_t data; std::string error; };
  std::vector<Case> cases = {
      {"not json", 0, "not a JSON object"},
      {R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})", 8, "outside"},
      {R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 16, "need 16"},
      {R"({"w": {"dtype": "I8", "shape": [4], "data_offsets": [0, 4]}})", 4, "dtype I8"},
      {R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 4]}})", 4, "overflows"},
      {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 16, "outside"},
      {R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4, "non-negative"},
      {R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4, "needs dtype"},
  };
  for (const Case& c : cases) {
    auto r = ParseSafetensorsHeader(c.json, 8, c.data, "x.safetensors");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_THAT(r.status().message(), HasSubstr(c.error)) << c.json;
    EXPECT_THAT(r.status().message(), HasSubstr("x.safetensors"));
  }
  auto ok = ParseSafetensorsHeader(
      R"({"__metadata__": {"format": "pt"}, "w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [4, 16]}})",
      100, 16, "x.safetensors");
  ASSERT_THAT(ok.status(), IsOk());
  EXPECT_EQ(ok->at("w").offset, 104u);
  EXPECT_EQ(ok->at("w").elements(), 6u);
}

TEST(Safetensors, TruncatedShardIsCorruption) {
  testing::TempDir tmp;
  std::filesystem::copy(HfDir("llama"), tmp.File("in"));
  std::string st = testing::ReadFile(tmp.File("in/model.safetensors"));
  testing::WriteFile(tmp.File("in/model.safetensors"), st.substr(0, st.size() / 2));
  SafetensorsCheckpoint ck;
  EXPECT_THAT(ck.Open(tmp.File("in")), StatusIs(StatusCode::kCorruption, HasSubstr("model.safetensors")));
  uint64_t huge = ~0ull;
  std::memcpy(st.data(), &huge, 8);
  testing::WriteFile(tmp.File("in/model.safetensors"), st);
  EXPECT_THAT(ck.Open(tmp.File("in")), StatusIs(StatusCode::kCorruption, HasSubstr("header length")));
}

}  // namespace
}  // namespace llmflash

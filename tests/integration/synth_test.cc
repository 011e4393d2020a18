// llmflash synth: checkpoints that convert, generate and show the requested
// ReLU sparsity; deterministic per seed.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <tuple>

#include "llmflash/llmflash.h"
#include "runtime/evaluator.h"
#include "runtime/predictor_builder.h"
#include "testing/test_util.h"
#include "testing/tiny_model.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

// (architecture, storage type, predictor method): synth -> convert ->
// generate -> eval -> train a predictor -> eval, in f16 and quantized.
class Synth : public ::testing::TestWithParam<std::tuple<std::string, std::string, std::string>> {};

TEST_P(Synth, TinyPresetConvertsGeneratesAndIsSparse) {
  const auto& [arch, dtype, method] = GetParam();
  testing::TempDir tmp;
  SynthOptions s;
  s.arch = arch;
  s.preset = "tiny";
  s.activation = "relu";
  s.activation_sparsity = 0.9;
  ASSERT_THAT(testing::WriteSyntheticModel(tmp.File("m"), s, dtype), IsOk());
  auto model = Model::Open(tmp.File("m"), {});
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_EQ((*model)->info().dim, 64);
  // Llama 3.1 and Qwen2.5 shapes keep their families' features through convert.
  const std::string want_class = arch == "opt" ? "OPTForCausalLM" : arch == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
  EXPECT_EQ((*model)->info().source_architecture, want_class);
  if (arch == "qwen2") EXPECT_EQ((*model)->info().bos_id, -1);
  EXPECT_EQ((*model)->info().ffn_dtype, dtype);
  auto session = (*model)->NewSession({});
  int n = 0;
  ASSERT_THAT((*session)->Generate("Hello", {.max_tokens = 8}, [&](TokenId, std::string_view) { return ++n > 0; }),
              IsOk());
  EXPECT_EQ(n, 8);
  EvalOptions e;
  e.model_dir = tmp.File("m");
  e.text = testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/heldout_stories.txt");
  e.max_tokens = 300;
  auto r = Evaluate(e);
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_GT(r->inactive_fraction, 0.8) << "requested 0.9";
  EXPECT_LT(r->inactive_fraction, 0.97);

  // A predictor (with OPT's fc1 bias in its estimate) reads ~the active tenth.
  BuildPredictorOptions b;
  b.model_dir = tmp.File("m");
  b.calibration_text = "Once upon a time there was a cat who liked to sit in the sun all day long. ";
  for (int i = 0; i < 3; ++i) b.calibration_text += b.calibration_text;
  b.train.method = method;
  ASSERT_THAT(BuildPredictor(b).status(), IsOk());
  auto p = Evaluate(e);
  ASSERT_THAT(p.status(), IsOk());
  // 0.99 on held-out calibration rows; on other text a little lower.
  for (const auto& l : p->layers) EXPECT_GT(l.recall, 0.95);
  EXPECT_LT(p->computed_fraction, 0.25);
  EXPECT_GT(p->greedy_agreement, 0.9);
}

INSTANTIATE_TEST_SUITE_P(Arch, Synth,
                         ::testing::Values(std::make_tuple("opt", "f16", "svd"), std::make_tuple("llama", "f16", "svd"),
                                           std::make_tuple("opt", "q4_0", "svd"),
                                           std::make_tuple("llama", "q8_0", "trained"),
                                           std::make_tuple("opt", "q4_0", "trained"),
                                           std::make_tuple("llama3", "f16", "svd"),
                                           std::make_tuple("qwen2", "q8_0", "trained")),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param) + "_" +
                                  std::get<2>(info.param);
                         });

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
  testing::TempDir tmp;
  auto make = [&](const std::string& dir, uint64_t seed) {
    SynthOptions s;
    s.arch = "opt";
    s.preset = "tiny";
    s.seed = seed;
    s.output = tmp.File(dir);
    EXPECT_THAT(Synthesize(s), IsOk());
    return testing::ReadFile(tmp.File(dir) + "/model.safetensors");
  };
  std::string a = make("a", 7), b = make("b", 7), c = make("c", 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

// Mixture-of-experts shapes: `--format llmflash` writes, without the
// Hugging Face files, the bytes that synth + convert write; the model
// routes each token to k experts.
class SynthMoe : public ::testing::TestWithParam<std::string> {};

TEST_P(SynthMoe, DirectEqualsConvertedAndRoutes) {
  testing::TempDir tmp;
  SynthOptions s;
  s.arch = GetParam();
  s.preset = "tiny";
  s.output = tmp.File("hf");
  ASSERT_THAT(Synthesize(s), IsOk());
  ConvertOptions c{.input = tmp.File("hf"), .output = tmp.File("converted"), .dtype = "q8_0"};
  ASSERT_THAT(ConvertHuggingFace(c), IsOk());
  s.output = tmp.File("direct");
  s.format = "llmflash";
  s.dtype = "q8_0";
  ASSERT_THAT(Synthesize(s), IsOk());
  for (const char* f : {"ffn.bundle", "resident.bin", "tokenizer.json", "manifest.json"}) {
    EXPECT_EQ(testing::ReadFile(tmp.File("direct") + "/" + f), testing::ReadFile(tmp.File("converted") + "/" + f))
        << f;
  }
  EXPECT_FALSE(std::filesystem::exists(tmp.File("direct") + "/.synth-source"));
  auto model = Model::Open(tmp.File("direct"), {});
  ASSERT_THAT(model.status(), IsOk());
  const ModelInfo& i = (*model)->info();
  EXPECT_EQ(i.source_architecture, GetParam() == "mixtral" ? "MixtralForCausalLM" : "Qwen3MoeForCausalLM");
  ASSERT_GT(i.n_experts, i.n_experts_used);
  auto session = (*model)->NewSession({});
  int n = 0;
  ASSERT_THAT((*session)->Generate("Hello", {.max_tokens = 6}, [&](TokenId, std::string_view) { return ++n > 0; }),
              IsOk());
  EXPECT_EQ(n, 6);
  for (const TokenStats& t : (*session)->stats().tokens) {
    EXPECT_EQ(t.neurons_computed, static_cast<uint64_t>(t.batch) * i.n_layers * i.n_experts_used *
                                      (i.ffn_dim / i.n_experts));
  }
}

INSTANTIATE_TEST_SUITE_P(Arch, SynthMoe, ::testing::Values("mixtral", "qwen3-moe"),
                         [](const auto& info) { return info.param == "mixtral" ? "mixtral" : "qwen3_moe"; });

TEST(Synth, BadOptionsAreErrors) {
  SynthOptions s;
  s.output = "/tmp/unused";
  s.preset = "70b";
  EXPECT_THAT(Synthesize(s), StatusIs(StatusCode::kInvalidArgument, HasSubstr("70b")));
  s.preset = "tiny";
  s.arch = "gpt";
  EXPECT_THAT(Synthesize(s), StatusIs(StatusCode::kInvalidArgument, HasSubstr("arch")));
  s.arch = "opt";
  s.activation_sparsity = 1.5;
  EXPECT_THAT(Synthesize(s), StatusIs(StatusCode::kInvalidArgument, HasSubstr("sparsity")));
  s.activation_sparsity = 0.9;
  s.format = "gguf";
  EXPECT_THAT(Synthesize(s), StatusIs(StatusCode::kInvalidArgument, HasSubstr("--format")));
  s.format = "llmflash";
  s.arch = "qwen3-moe";
  s.activation = "relu";
  EXPECT_THAT(Synthesize(s), StatusIs(StatusCode::kInvalidArgument, HasSubstr("silu")));
  s.activation = "";
  s.preset = "8x7b";
  EXPECT_THAT(Synthesize(s), StatusIs(StatusCode::kInvalidArgument, HasSubstr("30b-a3b")));
}

}  // namespace
}  // namespace llmflash

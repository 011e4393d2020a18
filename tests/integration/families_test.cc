// The 2024 Llama-family architectures (Llama 3 RoPE scaling, Qwen2 biases,
// Qwen3 q/k norms, Phi-3 fused weights and sliding window, ProSparse's
// fatrelu): tiny checkpoints written by the test, converted, and run against
// the NumPy reference (tests/reference/families_reference.py); each feature
// switched off moves the logits away from it. Then what a checkpoint's
// tokenizer files say about BOS and end-of-turn tokens.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "llmflash/llmflash.h"
#include "model/chat_template.h"
#include "testing/hf_fixture.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

const nlohmann::json& Reference() {
  static const nlohmann::json* ref = new nlohmann::json(nlohmann::json::parse(
      testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/families_reference.json")));
  return *ref;
}

// Writes the fixture of `name` and converts it (f32) into tmp/model.
std::string Convert(const testing::TempDir& tmp, const std::string& name) {
  const nlohmann::json& m = Reference()["models"][name];
  Status st = testing::WriteHfFixture(tmp.File("hf"), m["config"], Reference()["seed"].get<uint64_t>());
  EXPECT_THAT(st, IsOk());
  ConvertOptions o;
  o.input = tmp.File("hf");
  o.output = tmp.File("model");
  EXPECT_THAT(ConvertHuggingFace(o), IsOk());
  return o.output;
}

// The worst difference from the reference over every sequence and position.
double WorstDiff(const std::string& dir, const std::string& name, uint64_t budget) {
  auto model = Model::Open(dir, {.dram_budget_bytes = budget, .kv_cache = KvCacheType::kF32});
  EXPECT_THAT(model.status(), IsOk());
  if (!model.ok()) return 1e9;
  if (budget > 0) EXPECT_TRUE((*model)->info().streams_layers);
  double worst = 0;
  const auto& seqs = Reference()["sequences"];
  for (size_t s = 0; s < seqs.size(); ++s) {
    auto session = (*model)->NewSession({});
    auto logits = (*session)->Logits(seqs[s].get<std::vector<TokenId>>());
    EXPECT_THAT(logits.status(), IsOk());
    if (!logits.ok()) return 1e9;
    worst = std::max(worst, testing::MaxAbsDiff(*logits, Reference()["models"][name]["logits"][s]));
  }
  return worst;
}

class Family : public ::testing::TestWithParam<std::string> {};

TEST_P(Family, LogitsMatchTheNumPyReference) {
  testing::TempDir tmp;
  const std::string dir = Convert(tmp, GetParam());
  EXPECT_LT(WorstDiff(dir, GetParam(), 0), 1e-4);
  // The smallest budget Open accepts: every FFN streamed from flash.
  uint64_t lo = 1, hi = 64 << 20;
  while (lo + 1 < hi) {
    uint64_t mid = (lo + hi) / 2;
    (Model::Open(dir, {.dram_budget_bytes = mid, .kv_cache = KvCacheType::kF32}).ok() ? hi : lo) = mid;
  }
  EXPECT_LT(WorstDiff(dir, GetParam(), hi), 1e-4) << "streamed";
}

INSTANTIATE_TEST_SUITE_P(Tiny, Family,
                         ::testing::Values("llama3", "qwen2", "qwen3", "phi3", "prosparse", "gemma2", "gemma3"));

// Each family's own feature, switched off in the converted model's manifest,
// moves the logits well away from the reference: the feature is what makes
// them match.
struct Feature {
  const char* fixture;
  const char* key;
  nlohmann::json off;
};

class FamilyFeature : public ::testing::TestWithParam<Feature> {};

TEST_P(FamilyFeature, SwitchedOffTheLogitsLeaveTheReference) {
  testing::TempDir tmp;
  const std::string dir = Convert(tmp, GetParam().fixture);
  const std::string path = dir + "/manifest.json";
  nlohmann::json m = nlohmann::json::parse(testing::ReadFile(path));
  ASSERT_TRUE(m["config"].contains(GetParam().key));
  ASSERT_NE(m["config"][GetParam().key], GetParam().off);
  m["config"][GetParam().key] = GetParam().off;
  testing::WriteFile(path, m.dump());
  EXPECT_GT(WorstDiff(dir, GetParam().fixture, 0), 1e-3) << GetParam().key;
}

INSTANTIATE_TEST_SUITE_P(Tiny, FamilyFeature,
                         ::testing::Values(Feature{"llama3", "rope_scaling", "none"},
                                           Feature{"qwen2", "qkv_bias", false},
                                           Feature{"qwen3", "qk_norm", false},
                                           Feature{"phi3", "sliding_window", 0},
                                           Feature{"prosparse", "activation", "relu"},
                                           Feature{"gemma2", "attn_softcap", 0.0},
                                           Feature{"gemma2", "final_softcap", 0.0},
                                           Feature{"gemma2", "sliding_window_period", 0},
                                           Feature{"gemma2", "sandwich_norm", false},
                                           Feature{"gemma2", "embed_scale", false},
                                           Feature{"gemma2", "query_scale", 0.0},
                                           Feature{"gemma3", "rope_local_theta", 0.0},
                                           Feature{"gemma3", "qk_norm", false}),
                         [](const auto& info) { return std::string(info.param.fixture) + "_" + info.param.key; });

// Phi-3's fused weights: the split at convert takes rows q | k | v and
// gate | up. A checkpoint with the halves of gate_up_proj (or q and k of
// qkv_proj) swapped converts to different logits: the order is what matches.
TEST(Families, Phi3FusedSplitOrderIsWhatMatches) {
  for (const char* which : {"mlp.gate_up_proj", "self_attn.qkv_proj"}) {
    testing::TempDir tmp;
    const nlohmann::json c = Reference()["models"]["phi3"]["config"];
    ASSERT_THAT(testing::WriteHfFixture(tmp.File("hf"), c, Reference()["seed"].get<uint64_t>()), IsOk());
    SafetensorsCheckpoint ck;
    ASSERT_THAT(ck.Open(tmp.File("hf")), IsOk());
    std::vector<TensorSpec> specs;
    std::vector<std::vector<float>> data;
    for (const auto& [name, t] : ck.tensors()) {
      auto v = ck.Read(name, t.shape);
      ASSERT_THAT(v.status(), IsOk());
      if (name.find(which) != std::string::npos) {
        const uint64_t d = t.shape[1], half = std::string(which) == "mlp.gate_up_proj" ? t.shape[0] / 2
                                                                                        : c["hidden_size"].get<uint64_t>();
        // gate <-> up, or q <-> k (q and k have the same rows here: 4 heads, 4 KV heads)
        std::swap_ranges(v->begin(), v->begin() + half * d, v->begin() + half * d);
      }
      specs.push_back({name, DType::kF32, t.shape});
      data.push_back(std::move(*v));
    }
    SafetensorsWriter w;
    ASSERT_THAT(w.Open(tmp.File("hf/model.safetensors"), specs), IsOk());
    for (const auto& v : data) ASSERT_THAT(w.Write(v.data(), v.size() * sizeof(float)), IsOk());
    ASSERT_THAT(w.Close(), IsOk());
    ConvertOptions o;
    o.input = tmp.File("hf");
    o.output = tmp.File("model");
    ASSERT_THAT(ConvertHuggingFace(o), IsOk());
    EXPECT_GT(WorstDiff(o.output, "phi3", 0), 1e-3) << which;
  }
}

// A checkpoint whose tensors its config.json does not describe is refused,
// naming the tensor: a Qwen2 checkpoint relabelled as Llama would lose its
// biases (71% off, measured before this check existed).
TEST(Families, StrayTensorsAreRefusedNotDropped) {
  testing::TempDir tmp;
  nlohmann::json c = Reference()["models"]["qwen2"]["config"];
  ASSERT_THAT(testing::WriteHfFixture(tmp.File("hf"), c, 7), IsOk());
  c["architectures"] = {"LlamaForCausalLM"};
  testing::WriteFile(tmp.File("hf/config.json"), c.dump());
  ConvertOptions o;
  o.input = tmp.File("hf");
  o.output = tmp.File("model");
  EXPECT_THAT(ConvertHuggingFace(o), StatusIs(StatusCode::kUnsupported,
                                              HasSubstr("\"model.layers.0.self_attn.k_proj.bias\" is not part of LlamaForCausalLM")));
}

// Configurations the forward pass cannot run are Unsupported, naming the field.
TEST(Families, UnsupportedConfigsNameTheField) {
  auto convert = [](nlohmann::json c) {
    testing::TempDir tmp;
    EXPECT_THAT(testing::WriteHfFixture(tmp.File("hf"), c, 7), IsOk());
    ConvertOptions o;
    o.input = tmp.File("hf");
    o.output = tmp.File("model");
    return ConvertHuggingFace(o);
  };
  nlohmann::json phi = Reference()["models"]["phi3"]["config"];
  phi["rope_scaling"] = {{"type", "longrope"}, {"short_factor", {1.0}}, {"long_factor", {1.0}}};
  EXPECT_THAT(convert(phi), StatusIs(StatusCode::kUnsupported, HasSubstr("rope_scaling type \"longrope\"")));
  nlohmann::json llama = Reference()["models"]["llama3"]["config"];
  llama["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_THAT(convert(llama), StatusIs(StatusCode::kUnsupported, HasSubstr("rope_scaling type \"yarn\"")));
  llama = Reference()["models"]["llama3"]["config"];
  llama["hidden_act"] = "gelu_new";
  EXPECT_THAT(convert(llama), StatusIs(StatusCode::kUnsupported, HasSubstr("hidden_act \"gelu_new\"")));
  llama["hidden_act"] = "silu";
  llama["mlp_bias"] = true;
  EXPECT_THAT(convert(llama), StatusIs(StatusCode::kUnsupported, HasSubstr("mlp_bias")));
  llama["mlp_bias"] = false;
  llama["architectures"] = {"FalconForCausalLM"};
  EXPECT_THAT(convert(llama), StatusIs(StatusCode::kUnsupported, HasSubstr("\"FalconForCausalLM\" is not supported")));
}

// A Llama-family fixture of config `c` with a shared tokenizer's
// tokenizer.json and tokenizer_config.json, converted into tmp/model.
std::string ConvertWithTokenizer(const testing::TempDir& tmp, const nlohmann::json& c, const std::string& tokenizer,
                                 const nlohmann::json& generation_eos = nullptr) {
  EXPECT_THAT(testing::WriteHfFixture(tmp.File("hf"), c, 7), IsOk());
  const std::string src = testing::TokenizerDir(tokenizer);
  std::filesystem::copy(src + "/tokenizer.json", tmp.File("hf/tokenizer.json"));
  std::filesystem::copy(src + "/tokenizer_config.json", tmp.File("hf/tokenizer_config.json"));
  if (!generation_eos.is_null()) {
    testing::WriteFile(tmp.File("hf/generation_config.json"), nlohmann::json{{"eos_token_id", generation_eos}}.dump());
  }
  ConvertOptions o;
  o.input = tmp.File("hf");
  o.output = tmp.File("model");
  EXPECT_THAT(ConvertHuggingFace(o), IsOk());
  return o.output;
}

// BOS and the tokens that end generation, from the checkpoint's own files.
struct TokenCase {
  const char* name;
  const char* arch;
  const char* tokenizer;  // testing::TokenizerDir name
  nlohmann::json config_eos;
  nlohmann::json generation_eos;  // null: no generation_config.json
  int config_bos;                  // config.json's bos_token_id
  int vocab;
  int want_bos;  // -1: none
  std::vector<int> want_stop;
};

class TokensFromFiles : public ::testing::TestWithParam<TokenCase> {};

TEST_P(TokensFromFiles, BosAndStopIdsAreTheCheckpointsOwn) {
  const TokenCase& t = GetParam();
  testing::TempDir tmp;
  nlohmann::json c = Reference()["models"]["llama3"]["config"];
  c["architectures"] = {t.arch};
  c["vocab_size"] = t.vocab;
  c["num_hidden_layers"] = 1;
  c.erase("rope_scaling");
  c["eos_token_id"] = t.config_eos;
  c["bos_token_id"] = t.config_bos;
  auto model = Model::Open(ConvertWithTokenizer(tmp, c, t.tokenizer, t.generation_eos), {.max_context = 8});
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_EQ((*model)->info().bos_id, t.want_bos);
  EXPECT_EQ((*model)->info().stop_ids, t.want_stop);
  auto ids = (*model)->Encode("Hi", /*add_bos=*/true);
  ASSERT_THAT(ids.status(), IsOk());
  ASSERT_FALSE(ids->empty());
  if (t.want_bos >= 0) EXPECT_EQ((*ids)[0], t.want_bos); else EXPECT_NE((*ids)[0], 1);
}

INSTANTIATE_TEST_SUITE_P(
    Shared, TokensFromFiles,
    ::testing::Values(
        // Llama 3.1: three stop ids in config.json (generation_config adds
        // none new); this tokenizer.json has no TemplateProcessing and
        // tokenizer_config.json no add_bos_token: BOS is config.json's.
        TokenCase{"llama3", "LlamaForCausalLM", "llama3", {128001, 128008, 128009}, {128001, 128009}, 128000,
                  128256, 128000, {128001, 128008, 128009}},
        // Qwen: config.json names a bos_token_id, but tokenizer_config.json
        // says add_bos_token false: no BOS; its eos_token <|im_end|> joins
        // config.json's <|endoftext|>.
        TokenCase{"qwen", "Qwen2ForCausalLM", "qwen3", 151643, nullptr, 151643, 151936, -1, {151643, 151645}},
        // Gemma 3: add_bos_token with bos_token <bos> (2) decides over a
        // config.json that says otherwise; <end_of_turn> (106) stops.
        TokenCase{"gemma", "LlamaForCausalLM", "gemma3", {1, 106}, nullptr, 1, 262144, 2, {1, 106}},
        // Llama 2: add_bos_token and TemplateProcessing's <s> agree.
        TokenCase{"llama2", "LlamaForCausalLM", "llama2", 2, nullptr, 1, 32000, 1, {2}}),
    [](const auto& info) { return std::string(info.param.name); });

// The chat template comes with the model from tokenizer_config.json: a
// conversation renders as the template says, encodes its special tokens as
// tokens, and generates.
TEST(Families, ChatThroughTheModelsOwnTemplate) {
  testing::TempDir tmp;
  nlohmann::json c = Reference()["models"]["llama3"]["config"];
  c["vocab_size"] = 128256;
  c["num_hidden_layers"] = 1;
  c["bos_token_id"] = 128000;
  c["eos_token_id"] = {128001, 128008, 128009};
  c["max_position_embeddings"] = 512;
  const std::string src = testing::TokenizerDir("llama3");
  auto model = Model::Open(ConvertWithTokenizer(tmp, c, "llama3"), {.max_context = 256});
  ASSERT_THAT(model.status(), IsOk());
  std::vector<ChatMessage> messages = {{"system", "Be brief."}, {"user", "Hi!"}};
  auto rendered = (*model)->RenderChat(messages, true);
  ASSERT_THAT(rendered.status(), IsOk());
  EXPECT_EQ(rendered->rfind("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n", 0), 0u) << *rendered;
  EXPECT_THAT(*rendered, ::testing::EndsWith("Hi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"));
  // Same text through the template file itself, as the tokenizer_config gives it.
  auto tc = nlohmann::json::parse(testing::ReadFile(src + "/tokenizer_config.json"));
  auto direct = ChatTemplate::Parse(tc["chat_template"].get<std::string>(), "tc");
  ASSERT_THAT(direct.status(), IsOk());
  EXPECT_EQ(*direct->Apply(messages, true, "<|begin_of_text|>", "<|end_of_text|>"), *rendered);
  // Generated as tokens: BOS from the template text, headers as special tokens.
  auto session = (*model)->NewSession({});
  ASSERT_THAT(session.status(), IsOk());
  int n = 0;
  ASSERT_THAT((*session)->Generate(*rendered, {.max_tokens = 3, .add_bos = false, .parse_special = true},
                                   [&](TokenId, std::string_view) { return ++n > 0; }),
              IsOk());
  const uint64_t special_prompt = (*session)->stats().prompt_tokens;
  EXPECT_EQ(n, 3);
  // "<|start_header_id|>" as text is a dozen tokens; as a special token one.
  session->reset();
  auto text_session = (*model)->NewSession({});
  ASSERT_THAT(text_session.status(), IsOk());
  ASSERT_THAT((*text_session)->Generate(*rendered, {.max_tokens = 0, .add_bos = false}, nullptr), IsOk());
  EXPECT_GT((*text_session)->stats().prompt_tokens, special_prompt + 40);
  // A model without a template says so.
  testing::TempDir plain;
  ConvertOptions p;
  p.input = testing::SharedDir() + "/models/hf-tiny/llama";
  p.output = plain.File("m");
  ASSERT_THAT(ConvertHuggingFace(p), IsOk());
  auto none = Model::Open(p.output, {});
  ASSERT_THAT(none.status(), IsOk());
  EXPECT_THAT((*none)->RenderChat(messages, true).status(), StatusIs(StatusCode::kUnsupported, HasSubstr("no chat template")));
}

}  // namespace
}  // namespace llmflash

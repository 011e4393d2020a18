// Mixture-of-experts models (Mixtral, Qwen3-MoE): tiny checkpoints written by
// the test, converted, and run against the NumPy reference
// (tests/reference/moe_reference.py) at every position, with the whole FFN
// in DRAM and streamed at the smallest budget, one token at a time and in
// batches. Then what the routing reads: only the routed experts' rows.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "llmflash/llmflash.h"
#include "testing/hf_fixture.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

const nlohmann::json& Reference() {
  static const nlohmann::json* ref = new nlohmann::json(nlohmann::json::parse(
      testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/moe_reference.json")));
  return *ref;
}

Status WriteFixture(const std::string& dir, const nlohmann::json& config) {
  return testing::WriteHfFixture(dir, config, Reference()["seed"].get<uint64_t>());
}

// Writes the fixture of `name` and converts it (f32) into tmp/model.
std::string Convert(const testing::TempDir& tmp, const std::string& name) {
  EXPECT_THAT(WriteFixture(tmp.File("hf"), Reference()["models"][name]["config"]), IsOk());
  ConvertOptions o;
  o.input = tmp.File("hf");
  o.output = tmp.File("model");
  EXPECT_THAT(ConvertHuggingFace(o), IsOk());
  return o.output;
}

// The worst difference from the reference over every sequence and position.
double WorstDiff(const std::string& dir, const std::string& name, uint64_t budget, Prefill prefill) {
  auto model = Model::Open(dir, {.dram_budget_bytes = budget, .kv_cache = KvCacheType::kF32});
  EXPECT_THAT(model.status(), IsOk());
  if (!model.ok()) return 1e9;
  if (budget > 0) EXPECT_TRUE((*model)->info().streams_layers);
  double worst = 0;
  const auto& seqs = Reference()["sequences"];
  for (size_t s = 0; s < seqs.size(); ++s) {
    auto session = (*model)->NewSession({});
    auto logits = (*session)->Logits(seqs[s].get<std::vector<TokenId>>(), prefill);
    EXPECT_THAT(logits.status(), IsOk());
    if (!logits.ok()) return 1e9;
    worst = std::max(worst, testing::MaxAbsDiff(*logits, Reference()["models"][name]["logits"][s]));
  }
  return worst;
}

// The smallest budget Open accepts: every layer's experts streamed.
uint64_t SmallestBudget(const std::string& dir) {
  uint64_t lo = 1, hi = 64 << 20;
  while (lo + 1 < hi) {
    uint64_t mid = (lo + hi) / 2;
    (Model::Open(dir, {.dram_budget_bytes = mid, .kv_cache = KvCacheType::kF32}).ok() ? hi : lo) = mid;
  }
  return hi;
}

class Moe : public ::testing::TestWithParam<std::string> {};

TEST_P(Moe, LogitsMatchTheNumPyReference) {
  testing::TempDir tmp;
  const std::string dir = Convert(tmp, GetParam());
  EXPECT_LT(WorstDiff(dir, GetParam(), 0, Prefill::kBatch), 1e-4) << "in DRAM, batched";
  EXPECT_LT(WorstDiff(dir, GetParam(), 0, Prefill::kToken), 1e-4) << "in DRAM, token by token";
  const uint64_t small = SmallestBudget(dir);
  EXPECT_LT(WorstDiff(dir, GetParam(), small, Prefill::kBatch), 1e-4) << "streamed, batched";
  EXPECT_LT(WorstDiff(dir, GetParam(), small, Prefill::kToken), 1e-4) << "streamed, token by token";
}

INSTANTIATE_TEST_SUITE_P(Tiny, Moe, ::testing::Values("mixtral", "qwen3moe", "qwen3moe_unnormalised"));

// The manifest's routing choices are what make the logits match: one
// expert fewer, or no renormalisation of the top-k weights, leaves the
// reference.
TEST(Moe, RoutingChoicesAreWhatMatches) {
  for (auto [key, value] : {std::pair<const char*, nlohmann::json>{"n_experts_used", 2},
                            {"expert_norm_topk", false}}) {
    testing::TempDir tmp;
    const std::string dir = Convert(tmp, "qwen3moe");
    const std::string path = dir + "/manifest.json";
    nlohmann::json m = nlohmann::json::parse(testing::ReadFile(path));
    ASSERT_NE(m["config"][key], value);
    m["config"][key] = value;
    testing::WriteFile(path, m.dump());
    EXPECT_GT(WorstDiff(dir, "qwen3moe", 0, Prefill::kBatch), 1e-3) << key;
  }
}

// One token at a time from an empty window: each layer computes exactly
// its k routed experts' neurons, and at a budget that holds no more than
// that, reads only them.
TEST(Moe, ATokenComputesAndReadsOnlyItsExperts) {
  testing::TempDir tmp;
  const std::string dir = Convert(tmp, "qwen3moe");
  const nlohmann::json& c = Reference()["models"]["qwen3moe"]["config"];
  const uint64_t k = c["num_experts_per_tok"], f = c["moe_intermediate_size"], E = c["num_experts"];
  const uint64_t layers = c["num_hidden_layers"];
  auto model = Model::Open(dir, {.dram_budget_bytes = SmallestBudget(dir), .kv_cache = KvCacheType::kF32});
  ASSERT_THAT(model.status(), IsOk());
  auto session = (*model)->NewSession({.reuse_resident_neurons = false});
  ASSERT_THAT(session.status(), IsOk());
  const auto seq = Reference()["sequences"][0].get<std::vector<TokenId>>();
  ASSERT_THAT((*session)->Logits(seq, Prefill::kToken).status(), IsOk());
  const Stats& stats = (*session)->stats();
  ASSERT_EQ(stats.tokens.size(), seq.size());
  for (const TokenStats& t : stats.tokens) {
    EXPECT_EQ(t.neurons_computed, layers * k * f);
    EXPECT_EQ(t.neurons_loaded, layers * k * f);
    EXPECT_GE(t.bytes_read, layers * k * f * (*model)->info().record_bytes);
    EXPECT_LT(t.neurons_loaded, layers * E * f);
  }
}

// A batch reads the union of its tokens' experts once and computes each
// expert only for the tokens routed to it: (neuron, token) products are k F
// per token and layer.
TEST(Moe, ABatchComputesEachTokensExpertsOnly) {
  testing::TempDir tmp;
  const std::string dir = Convert(tmp, "mixtral");
  const nlohmann::json& c = Reference()["models"]["mixtral"]["config"];
  const uint64_t k = c["num_experts_per_tok"], f = c["intermediate_size"], E = c["num_local_experts"];
  const uint64_t layers = c["num_hidden_layers"];
  auto model = Model::Open(dir, {.kv_cache = KvCacheType::kF32, .prefill_batch = 4});
  ASSERT_THAT(model.status(), IsOk());
  auto session = (*model)->NewSession({});
  ASSERT_THAT(session.status(), IsOk());
  const auto seq = Reference()["sequences"][0].get<std::vector<TokenId>>();
  ASSERT_THAT((*session)->Logits(seq, Prefill::kBatch).status(), IsOk());
  uint64_t tokens = 0, loaded = 0;
  for (const TokenStats& t : (*session)->stats().tokens) {
    EXPECT_EQ(t.neurons_computed, t.batch * layers * k * f);
    tokens += t.batch;
    loaded += t.neurons_loaded;
  }
  EXPECT_EQ(tokens, seq.size());
  EXPECT_LE(loaded, layers * E * f);  // the whole FFN fits: each neuron read at most once
}

// The lookahead: before a layer's attention, the layer's router on the
// guessed FFN input picks experts whose rows are read during attention. The
// logits are unchanged (the exact routing follows), and most of what was
// read ahead is used.
TEST(Moe, TheLookaheadReadsRoutedExpertsAheadAndChangesNoLogit) {
  testing::TempDir tmp;
  const std::string dir = Convert(tmp, "qwen3moe");
  auto model = Model::Open(dir, {.dram_budget_bytes = SmallestBudget(dir), .kv_cache = KvCacheType::kF32});
  ASSERT_THAT(model.status(), IsOk());
  auto session = (*model)->NewSession({.lookahead = Lookahead::kOn});
  ASSERT_THAT(session.status(), IsOk());
  const auto seq = Reference()["sequences"][0].get<std::vector<TokenId>>();
  auto logits = (*session)->Logits(seq, Prefill::kToken);
  ASSERT_THAT(logits.status(), IsOk());
  EXPECT_LT(testing::MaxAbsDiff(*logits, Reference()["models"]["qwen3moe"]["logits"][0]), 1e-4);
  uint64_t prefetched = 0, unused = 0, lookahead = 0;
  for (const TokenStats& t : (*session)->stats().tokens) {
    prefetched += t.neurons_prefetched;
    unused += t.prefetch_unused;
    lookahead += t.lookahead;
  }
  EXPECT_EQ(lookahead, seq.size());
  EXPECT_GT(prefetched, 0u);
  EXPECT_LT(unused, prefetched / 2) << "the router on the guess mostly picks the token's experts";
}

// What the converter refuses, by name.
TEST(Moe, BadCheckpointsGetClearErrors) {
  struct Case {
    const char* fixture;
    const char* key;
    nlohmann::json value;
    StatusCode code;
    const char* says;
  };
  const Case cases[] = {
      {"qwen3moe", "num_experts_per_tok", 9, StatusCode::kCorruption, "num_experts_per_tok"},
      {"qwen3moe", "num_experts", nullptr, StatusCode::kCorruption, "num_experts"},
      {"qwen3moe", "decoder_sparse_step", 2, StatusCode::kUnsupported, "dense MLP layers"},
      {"qwen3moe", "mlp_only_layers", nlohmann::json::array({0}), StatusCode::kUnsupported, "dense MLP layers"},
      {"qwen3moe", "shared_expert_intermediate_size", 12, StatusCode::kUnsupported, "shared experts"},
      {"mixtral", "num_local_experts", 0, StatusCode::kCorruption, "num_local_experts"},
  };
  for (const Case& k : cases) {
    testing::TempDir tmp;
    nlohmann::json c = Reference()["models"][k.fixture]["config"];
    ASSERT_THAT(WriteFixture(tmp.File("hf"), c), IsOk());
    c[k.key] = k.value;  // the checkpoint stays; its config now says otherwise
    testing::WriteFile(tmp.File("hf") + "/config.json", c.dump());
    ConvertOptions o{.input = tmp.File("hf"), .output = tmp.File("model")};
    EXPECT_THAT(ConvertHuggingFace(o), StatusIs(k.code, HasSubstr(k.says))) << k.key;
    EXPECT_FALSE(std::filesystem::exists(tmp.File("model") + "/manifest.json"));
  }
  // A config that says more experts than the checkpoint holds: the error
  // names the file and the first tensor whose shape disagrees.
  testing::TempDir tmp;
  nlohmann::json c = Reference()["models"]["mixtral"]["config"];
  ASSERT_THAT(WriteFixture(tmp.File("hf"), c), IsOk());
  c["num_local_experts"] = 5;  // the checkpoint holds 4
  testing::WriteFile(tmp.File("hf") + "/config.json", c.dump());
  ConvertOptions o{.input = tmp.File("hf"), .output = tmp.File("model")};
  Status st = ConvertHuggingFace(o);
  EXPECT_THAT(st, StatusIs(StatusCode::kCorruption, HasSubstr("model.safetensors: tensor "
                                                              "\"model.layers.0.block_sparse_moe.gate.weight\" has shape")))
      << st.ToString();
}

// A manifest whose experts do not divide its FFN, or that routes to more
// experts than it has, is refused at Open.
TEST(Moe, BadManifestsAreRefused) {
  testing::TempDir tmp;
  const std::string dir = Convert(tmp, "mixtral");
  const std::string path = dir + "/manifest.json";
  const std::string good = testing::ReadFile(path);
  for (auto [key, value] : {std::pair<const char*, int>{"n_experts", 3}, {"n_experts_used", 5}, {"n_experts_used", 0}}) {
    nlohmann::json m = nlohmann::json::parse(good);
    m["config"][key] = value;
    testing::WriteFile(path, m.dump());
    EXPECT_THAT(Model::Open(dir, {}).status(), StatusIs(StatusCode::kCorruption, HasSubstr(key))) << key;
  }
}

}  // namespace
}  // namespace llmflash

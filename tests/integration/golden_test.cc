// stories260K through the flash path against the reference implementation's
// greedy output, at DRAM budgets from the whole model down to less than one
// layer's FFN; window behaviour and the session API.
#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "llmflash/llmflash.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

struct Golden {
  std::string prompt;
  std::vector<int> ids;
  std::string text;
};

std::vector<Golden> LoadGolden() {
  auto j = nlohmann::json::parse(
      testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/stories260K_golden.json"));
  std::vector<Golden> out;
  for (const auto& c : j["cases"]) {
    out.push_back({c["prompt"], c["generated_ids"].get<std::vector<int>>(), c["text"]});
  }
  return out;
}

std::unique_ptr<Model> Open(uint64_t budget, int window = 4) {
  ModelOptions o;
  o.dram_budget_bytes = budget;
  o.window = window;
  o.max_context = 256;  // a smaller KV cache leaves room to test tight budgets
  auto m = Model::Open(testing::Stories260KModel(), o);
  EXPECT_THAT(m.status(), IsOk());
  return m.ok() ? std::move(*m) : nullptr;
}

void ExpectGolden(Model& model) {
  auto session = model.NewSession({});
  ASSERT_THAT(session.status(), IsOk());
  for (const Golden& g : LoadGolden()) {
    (*session)->Reset();  // each prompt on its own (a session is one context)
    std::vector<int> ids;
    std::string text;
    GenerateOptions o;
    o.max_tokens = static_cast<int>(g.ids.size());
    ASSERT_THAT((*session)->Generate(g.prompt, o,
                                     [&](TokenId id, std::string_view piece) {
                                       ids.push_back(id);
                                       text += piece;
                                       return true;
                                     }),
                IsOk());
    EXPECT_EQ(ids, g.ids) << "prompt \"" << g.prompt << "\"";
    EXPECT_EQ(text, g.text) << "prompt \"" << g.prompt << "\"";
  }
}

TEST(Golden, BeginsLikeLlama2c) {
  auto model = Open(0);
  ASSERT_NE(model, nullptr);
  auto session = model->NewSession({});
  ASSERT_THAT(session.status(), IsOk());
  std::string text;
  ASSERT_THAT((*session)->Generate("", {.max_tokens = 60},
                                   [&](TokenId, std::string_view p) { text += p; return true; }),
              IsOk());
  EXPECT_EQ(text.rfind("Once upon a time, there was a little girl named Lily. She loved to play "
                       "outside in the park. One day, she saw a big, red ball.", 0), 0u)
      << text;
}

class GoldenAtBudget : public ::testing::TestWithParam<double> {};

// The budget as a fraction of the model's weight bytes; 0 = unlimited.
TEST_P(GoldenAtBudget, SameTokensAsTheReference) {
  auto whole = ModelWeightBytes(testing::Stories260KModel());
  ASSERT_THAT(whole.status(), IsOk());
  double fraction = GetParam();
  uint64_t budget = static_cast<uint64_t>(fraction * *whole);
  auto model = Open(budget);
  ASSERT_NE(model, nullptr);
  const ModelInfo& info = model->info();
  if (fraction > 0 && fraction < 1.3) {
    EXPECT_TRUE(info.streams_layers);
    EXPECT_LT(info.neuron_capacity, info.ffn_dim);
  }
  if (fraction > 0) EXPECT_LE(info.budget_bytes, budget);
  ExpectGolden(*model);
}

// 1.2 holds the resident weights, a short KV cache and part of each layer;
// 1.05 holds less than one layer's FFN per layer.
INSTANTIATE_TEST_SUITE_P(Budgets, GoldenAtBudget, ::testing::Values(0.0, 6.0, 1.2, 1.05));

TEST(Golden, BudgetBelowOneLayerStillMatches) {
  // Find the smallest budget Open accepts and check it streams every layer.
  auto whole = ModelWeightBytes(testing::Stories260KModel());
  ASSERT_THAT(whole.status(), IsOk());
  ModelOptions o;
  o.max_context = 256;
  o.prefill_batch = 1;  // the budget's arithmetic below counts neurons only
  uint64_t lo = 1, hi = 64 << 20;
  while (lo + 1 < hi) {
    uint64_t mid = (lo + hi) / 2;
    o.dram_budget_bytes = mid;
    (Model::Open(testing::Stories260KModel(), o).ok() ? hi : lo) = mid;
  }
  o.dram_budget_bytes = hi;
  auto model = Model::Open(testing::Stories260KModel(), o);
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_EQ((*model)->info().neuron_capacity, 1);
  o.dram_budget_bytes = hi - 1;
  // A byte short: both figures round to the same MiB, so the message gives bytes.
  EXPECT_THAT(Model::Open(testing::Stories260KModel(), o).status(),
              StatusIs(StatusCode::kResourceExhausted,
                       HasSubstr("(" + std::to_string(hi - 1) + " bytes) is below the minimum of")));
  {
    // The message names the longest context that fits this budget, and it does.
    const Status st = Model::Open(testing::Stories260KModel(), o).status();
    const std::string key = "a context of at most ";
    const size_t at = st.message().find(key);
    ASSERT_NE(at, std::string::npos) << st.ToString();
    ModelOptions shorter = o;
    shorter.max_context = std::stoi(st.message().substr(at + key.size()));
    EXPECT_LT(shorter.max_context, o.max_context);
    EXPECT_THAT(Model::Open(testing::Stories260KModel(), shorter).status(), IsOk());
    ++shorter.max_context;
    EXPECT_THAT(Model::Open(testing::Stories260KModel(), shorter).status(),
                StatusIs(StatusCode::kResourceExhausted, HasSubstr("below the minimum")));
  }
  o.dram_budget_bytes = hi + 39 * 5 * 768;  // 1 + 39 = 40 of 172 neurons per layer
  model = Model::Open(testing::Stories260KModel(), o);
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_EQ((*model)->info().neuron_capacity, 40);
  ExpectGolden(**model);
}

// Stored in f16, stories260K still generates exactly the reference tokens
// (bf16, with 8 mantissa bits, is only held to logit tolerances: hf_test).
TEST(Golden, F16StorageGivesTheSameTokens) {
  testing::TempDir tmp;
  ConvertOptions c{testing::Stories260KBin(), testing::Stories260KTokenizer(), tmp.File("m"), {}};
  c.dtype = "f16";
  ASSERT_THAT(ConvertLlama2c(c), IsOk());
  auto whole = ModelWeightBytes(tmp.File("m"));
  ASSERT_THAT(whole.status(), IsOk());
  auto f32 = ModelWeightBytes(testing::Stories260KModel());
  EXPECT_LT(*whole * 10, *f32 * 6);  // about half the bytes on flash
  for (uint64_t budget : {uint64_t{0}, *whole * 3}) {
    auto model = Model::Open(tmp.File("m"), {.dram_budget_bytes = budget, .max_context = 256});
    ASSERT_THAT(model.status(), IsOk());
    EXPECT_EQ((*model)->info().dtype, "f16");
    ExpectGolden(**model);
  }
}

TEST(Window, ReadsStopOnceTheWindowHoldsTheFfn) {
  auto model = Open(0);
  ASSERT_NE(model, nullptr);
  auto session = model->NewSession({});
  ASSERT_THAT((*session)->Generate("Once upon a time", {.max_tokens = 20}, nullptr), IsOk());
  const Stats& s = (*session)->stats();
  ASSERT_GT(s.tokens.size(), 10u);
  EXPECT_GT(s.tokens[0].bytes_read, 5u * 172 * 768 - 1);
  EXPECT_EQ(s.tokens[0].neurons_loaded, 5u * 172);
  for (size_t i = 1; i < s.tokens.size(); ++i) {
    EXPECT_EQ(s.tokens[i].bytes_read, 0u) << "token " << i;
    EXPECT_EQ(s.tokens[i].bytes_moved, 0u) << "token " << i;  // nothing deleted, nothing moved
    EXPECT_EQ(s.tokens[i].neurons_computed, 5u * 172);
  }
  EXPECT_STREQ(s.io_backend, "io_uring");
  EXPECT_TRUE(s.direct_io);
}

TEST(Window, BudgetBelowTheFfnReadsOnEveryToken) {
  auto whole = ModelWeightBytes(testing::Stories260KModel());
  auto model = Open(static_cast<uint64_t>(1.2 * *whole));
  ASSERT_NE(model, nullptr);
  auto session = model->NewSession({});
  ASSERT_THAT((*session)->Generate("Once upon a time", {.max_tokens = 20}, nullptr), IsOk());
  uint64_t rows = 0;  // without a predictor the layers share the rows evenly
  for (int cap : model->info().layer_neuron_capacity) {
    EXPECT_NEAR(cap, model->info().neuron_capacity, 1);
    rows += cap;
  }
  const auto& tokens = (*session)->stats().tokens;
  EXPECT_EQ(tokens[0].neurons_loaded, 5u * 172);  // nothing resident yet
  for (size_t i = 1; i < tokens.size(); ++i) {
    const TokenStats& t = tokens[i];
    EXPECT_GT(t.bytes_read, 0u);
    // At least half the rows stay resident; the rest of each layer streams
    // through the others, the same neurons every token.
    EXPECT_LE(t.neurons_loaded, 5u * 172 - rows / 2);
    EXPECT_GE(t.neurons_loaded, 5u * 172 - rows);
    EXPECT_EQ(t.neurons_loaded, tokens[1].neurons_loaded);
    EXPECT_EQ(t.rows_rebalanced, 0u);  // every layer needs all its neurons alike
    EXPECT_EQ(t.neurons_computed, 5u * 172);
  }
}

TEST(Session, LogitsAreTheSameStreamedOrResident) {
  auto whole = ModelWeightBytes(testing::Stories260KModel());
  auto full = Open(0), tight = Open(static_cast<uint64_t>(1.05 * *whole));
  std::vector<TokenId> ids = {1, 403, 407, 261, 378, 432, 383};
  auto a = (*full->NewSession({}))->Logits(ids);
  auto b = (*tight->NewSession({}))->Logits(ids);
  ASSERT_THAT(a.status(), IsOk());
  ASSERT_THAT(b.status(), IsOk());
  ASSERT_EQ(a->size(), ids.size() * 512);
  for (size_t i = 0; i < a->size(); ++i) ASSERT_NEAR((*a)[i], (*b)[i], 1e-4) << i;
}

// The mmap baseline computes on the mapped pages instead of copying them:
// the same logits, and no neuron copied into a matrix.
TEST(Session, MmapBaselineComputesOnTheMappingWithTheSameLogits) {
  std::vector<TokenId> ids = {1, 403, 407, 261, 378, 432, 383};
  auto full = Open(0);
  auto a = (*full->NewSession({.use_predictor = false}))->Logits(ids);
  full.reset();
  auto mapped = Model::Open(testing::Stories260KModel(), {.io_backend = IoBackendKind::kMmap});
  ASSERT_THAT(mapped.status(), IsOk());
  auto session = (*mapped)->NewSession({.use_predictor = false, .reuse_resident_neurons = false});
  auto b = (*session)->Logits(ids);
  ASSERT_THAT(a.status(), IsOk());
  ASSERT_THAT(b.status(), IsOk());
  for (size_t i = 0; i < a->size(); ++i) ASSERT_NEAR((*a)[i], (*b)[i], 1e-4) << i;
  for (const TokenStats& t : (*session)->stats().tokens) {
    EXPECT_EQ(t.neurons_loaded, 0u);
    EXPECT_EQ(t.neurons_computed, 5u * 172 * t.batch);  // every neuron for every token of the pass
    EXPECT_EQ(t.bytes_read, 5u * 172 * 768);  // faulted in, not copied: once per pass
  }
}

TEST(Session, OptionsAndLimitsAreChecked) {
  auto model = Open(0);
  auto session = model->NewSession({});
  ASSERT_THAT(session.status(), IsOk());
  EXPECT_THAT(model->NewSession({}).status(),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("max_sessions")));
  auto cb = [](TokenId, std::string_view) { return true; };
  EXPECT_THAT((*session)->Generate("x", {.max_tokens = -1}, cb),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("max_tokens")));
  EXPECT_THAT((*session)->Generate("x", {.temperature = -1}, cb),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("temperature")));
  EXPECT_THAT((*session)->Generate("x", {.top_p = 0}, cb),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("top_p")));
  EXPECT_THAT((*session)->Generate("x", {.top_k = -1}, cb),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("top_k")));
  EXPECT_THAT((*session)->Generate("x", {.min_p = 1.0f}, cb),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("min_p")));
  EXPECT_THAT((*session)->Generate("x", {.repetition_penalty = 0.0f}, cb),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("repetition_penalty")));
  EXPECT_THAT((*session)->Generate("x", {.repetition_window = -1}, cb),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("repetition_window")));
  EXPECT_THAT((*session)->Generate("", {.add_bos = false}, cb),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("empty")));
  std::string long_prompt(5000, 'x');
  EXPECT_THAT((*session)->Generate(long_prompt, {}, cb),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("of its 256")));
  // Any bytes are a valid prompt: NUL, invalid UTF-8, control characters.
  std::string odd("a\0b\xff\xfe\x01 \xe2\x82 end", 14);
  int pieces = 0;
  ASSERT_THAT((*session)->Generate(odd, {.max_tokens = 5}, [&](TokenId, std::string_view) { return ++pieces > 0; }),
              IsOk());
  EXPECT_EQ(pieces, 5);
  ASSERT_THAT((*session)->Generate("x", {.max_tokens = 0}, cb), IsOk());  // evaluates the prompt only
  // Stopping from the callback after 3 tokens.
  int n = 0;
  ASSERT_THAT((*session)->Generate("", {}, [&](TokenId, std::string_view) { return ++n < 3; }), IsOk());
  EXPECT_EQ(n, 3);
  // Running into the context limit ends generation without an error.
  (*session)->Reset();
  ASSERT_THAT((*session)->Generate("", {.max_tokens = 100000, .temperature = 1.0f}, nullptr), IsOk());
  EXPECT_LE((*session)->stats().tokens.size(), 256u);
  // The slot is free again once the session is gone.
  session->reset();
  EXPECT_THAT(model->NewSession({}).status(), IsOk());
}

TEST(Session, SeededSamplingIsReproducible) {
  auto model = Open(0);
  auto run = [&](uint64_t seed) {
    auto session = model->NewSession({});
    std::string text;
    EXPECT_THAT((*session)->Generate("Lily", {.max_tokens = 50, .temperature = 0.9f, .seed = seed},
                                     [&](TokenId, std::string_view p) { text += p; return true; }),
                IsOk());
    return text;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST(Model, OpenReportsBadDirectoriesAndOptions) {
  EXPECT_THAT(Model::Open("/nonexistent/model", {}).status(),
              StatusIs(StatusCode::kNotFound, HasSubstr("/nonexistent/model/manifest.json")));
  EXPECT_THAT(Model::Open(testing::Stories260KModel(), {.window = -1}).status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("window")));
  EXPECT_THAT(Model::Open(testing::Stories260KModel(), {.dram_budget_bytes = 1000}).status(),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("DRAM budget")));
}

// A repetition penalty changes greedy text (stories260K repeats itself
// greedily) and is reproducible; a window of 0 tokens turns it off.
TEST(Session, RepetitionPenaltyChangesGreedyTextReproducibly) {
  auto model = Open(0);
  auto run = [&](GenerateOptions o) {
    auto session = model->NewSession({});
    EXPECT_THAT(session.status(), IsOk());
    std::vector<TokenId> out;
    EXPECT_THAT((*session)->Generate("Once upon a time", o, [&](TokenId t, std::string_view) {
      out.push_back(t);
      return true;
    }), IsOk());
    return out;
  };
  const std::vector<TokenId> greedy = run({.max_tokens = 48});
  const std::vector<TokenId> penalized = run({.max_tokens = 48, .repetition_penalty = 1.5f});
  EXPECT_NE(penalized, greedy);
  EXPECT_EQ(run({.max_tokens = 48, .repetition_penalty = 1.5f}), penalized);
  EXPECT_EQ(run({.max_tokens = 48, .repetition_penalty = 1.5f, .repetition_window = 0}), greedy);
  // Penalized text repeats fewer of its tokens.
  auto distinct = [](const std::vector<TokenId>& v) { return std::set<TokenId>(v.begin(), v.end()).size(); };
  EXPECT_GT(distinct(penalized), distinct(greedy));
  // top-k 1 at any temperature is greedy.
  EXPECT_EQ(run({.max_tokens = 48, .temperature = 1.5f, .top_k = 1}), greedy);
}

}  // namespace
}  // namespace llmflash

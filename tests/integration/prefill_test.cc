// Prompts in batches and conversations that continue, on stories260K and its
// quantized conversions: batched prefill against one decode step per token
// (logits, greedy text, at several micro-batch sizes and budgets, down to
// less than one layer's FFN), each turn of a conversation processed once
// and equal to the whole conversation fed at once, stop strings, a full
// context.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "llmflash/convert.h"
#include "llmflash/llmflash.h"
#include "runtime/stop_strings.h"
#include "testing/test_util.h"
#include "testing/tiny_model.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

std::vector<TokenId> HeldOut(Model& model, size_t n) {
  auto ids = model.Encode(testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/heldout_stories.txt"), true);
  EXPECT_THAT(ids.status(), IsOk());
  ids->resize(std::min(ids->size(), n));
  return *ids;
}

int Argmax(const float* l, int n) { return static_cast<int>(std::max_element(l, l + n) - l); }

// Batched and token-by-token logits of the same tokens; both sessions see
// the same budget.
void ExpectBatchEqualsTokens(const std::string& dir, ModelOptions o, double tolerance,
                             SessionOptions so = {}, size_t n_tokens = 200) {
  auto model = Model::Open(dir, o);
  ASSERT_THAT(model.status(), IsOk());
  const int vocab = (*model)->info().vocab_size;
  const std::vector<TokenId> ids = HeldOut(**model, n_tokens);
  auto token = (*(*model)->NewSession(so))->Logits(ids, Prefill::kToken);
  ASSERT_THAT(token.status(), IsOk());
  auto session = (*model)->NewSession(so);
  auto batch = (*session)->Logits(ids, Prefill::kBatch);
  ASSERT_THAT(batch.status(), IsOk());
  ASSERT_EQ(token->size(), batch->size());
  double worst = 0;
  for (size_t i = 0; i < token->size(); ++i) worst = std::max(worst, std::fabs(double((*token)[i]) - (*batch)[i]));
  EXPECT_LE(worst, tolerance) << "batch " << (*model)->info().prefill_batch;
  for (size_t p = 0; p < ids.size(); ++p) {
    ASSERT_EQ(Argmax(token->data() + p * vocab, vocab), Argmax(batch->data() + p * vocab, vocab)) << p;
  }
  // The passes were batches: ceil(n / B) of them, each reading its FFN once.
  const int b = (*model)->info().prefill_batch;
  EXPECT_EQ((*session)->stats().tokens.size(), (ids.size() + b - 1) / b);
  for (const TokenStats& t : (*session)->stats().tokens) EXPECT_TRUE(t.prompt);
}

struct Case {
  int batch;
  double budget;  // times the minimum budget; 0: the whole model
};

class BatchedPrefill : public ::testing::TestWithParam<Case> {};

uint64_t MinimumBudget(const std::string& dir, ModelOptions o) {
  uint64_t lo = 1, hi = 64 << 20;
  while (lo + 1 < hi) {
    o.dram_budget_bytes = (lo + hi) / 2;
    (Model::Open(dir, o).ok() ? hi : lo) = o.dram_budget_bytes;
  }
  return hi;
}

TEST_P(BatchedPrefill, SameLogitsAsOneTokenAtATime) {
  const Case c = GetParam();
  const std::string& dir = testing::Stories260KModel();
  ModelOptions o{.max_context = 256, .kv_cache = KvCacheType::kF32, .prefill_batch = c.batch};
  if (c.budget > 0) o.dram_budget_bytes = static_cast<uint64_t>(MinimumBudget(dir, o) * c.budget);
  auto model = Model::Open(dir, o);
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_EQ((*model)->info().prefill_batch, c.batch);
  if (c.budget > 0 && c.budget < 1.1) EXPECT_LT((*model)->info().neuron_capacity, (*model)->info().ffn_dim);
  model->reset();
  // Tight budgets read every layer on every pass (one token at a time: ~900
  // synchronous reads per token): fewer tokens there.
  const size_t n = c.budget == 0 ? 200 : c.budget < 1.1 ? 40 : 70;
  ExpectBatchEqualsTokens(dir, o, 1e-4, {}, n);
  ExpectBatchEqualsTokens(dir, o, 1e-4, {.use_predictor = false}, n);
}

// Micro-batches that divide the 200 tokens and ones that leave a remainder;
// the whole model, a tight budget and one below one layer's FFN.
INSTANTIATE_TEST_SUITE_P(SizesAndBudgets, BatchedPrefill,
                         ::testing::Values(Case{2, 0}, Case{7, 0}, Case{64, 0}, Case{200, 0}, Case{16, 1.2},
                                           Case{64, 1.02}, Case{5, 1.02}),
                         [](const auto& info) {
                           return "batch" + std::to_string(info.param.batch) + "_budget" +
                                  std::to_string(static_cast<int>(info.param.budget * 100));
                         });

// Quantized rows: every product of a batch is the decode step's own (int8
// inputs per row), so only the order of the FFN's partial sums differs.
TEST(BatchedPrefillQuantized, SameLogitsAsOneTokenAtATime) {
  testing::TempDir tmp;
  for (const char* dtype : {"q8_0", "q4_0", "f16"}) {
    ConvertOptions c;
    c.input = testing::Stories260KBin();
    c.tokenizer = testing::Stories260KTokenizer();
    c.output = tmp.path() + "/" + dtype;
    c.dtype = dtype;
    ASSERT_THAT(ConvertLlama2c(c), IsOk()) << dtype;
    // f32 KV: an f16 cache would round the two paths' (f32-rounding) differences to f16 steps.
    ExpectBatchEqualsTokens(c.output, {.max_context = 256, .kv_cache = KvCacheType::kF32, .prefill_batch = 32}, 1e-4);
  }
}

TEST(BatchedPrefill, GreedyTextIsTheSame) {
  auto model = Model::Open(testing::Stories260KModel(), {.max_context = 256});
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_GT((*model)->info().prefill_batch, 1);  // the planner batches by default
  const std::string prompt = testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/heldout_stories.txt").substr(0, 400);
  std::string texts[2];
  int i = 0;
  for (Prefill p : {Prefill::kToken, Prefill::kBatch}) {
    auto s = (*model)->NewSession({});
    ASSERT_THAT((*s)->Generate(prompt, {.max_tokens = 40, .prefill = p},
                               [&](TokenId, std::string_view piece) { texts[i] += piece; return true; }),
                IsOk());
    const TurnStats& turn = (*s)->stats().turns.at(0);
    EXPECT_GT(turn.prompt_tokens, 50u);
    EXPECT_EQ(turn.generated_tokens, 40u);
    EXPECT_GT(turn.ttft_ms, 0);
    ++i;
  }
  EXPECT_EQ(texts[0], texts[1]);
  EXPECT_GT(texts[0].size(), 40u);
}

// A conversation of three turns: each call runs only what is new, and the
// result is what the whole conversation fed at once gives.
TEST(Conversation, EachTurnRunsItsNewTokensOnly) {
  auto model = Model::Open(testing::Stories260KModel(), {.max_sessions = 2, .max_context = 512});
  ASSERT_THAT(model.status(), IsOk());
  const char* turns[] = {"Once upon a time, there was a dog.", " The dog was sad.", " Then a girl came"};
  for (float temperature : {0.0f, 0.8f}) {
    auto a = (*model)->NewSession({});
    auto b = (*model)->NewSession({});
    std::vector<TokenId> reply;
    size_t before = 0;
    for (int t = 0; t < 3; ++t) {
      reply.clear();
      const GenerateOptions g{.max_tokens = 12, .temperature = temperature, .seed = 7u + t};
      ASSERT_THAT((*a)->Generate(turns[t], g, [&](TokenId id, std::string_view) { reply.push_back(id); return true; }),
                  IsOk());
      auto encoded = (*model)->Encode(turns[t], t == 0);  // BOS only at the start
      ASSERT_THAT(encoded.status(), IsOk());
      const TurnStats& turn = (*a)->stats().turns.at(t);
      EXPECT_EQ(turn.context_before, before);
      // Its text, plus the previous turn's last sampled token (run first).
      EXPECT_EQ(turn.prompt_tokens, encoded->size() + (t > 0 ? 1 : 0)) << "turn " << t;
      EXPECT_EQ(turn.generated_tokens, 12u);
      ASSERT_EQ(reply.size(), 12u);
      before = (*a)->context().size();
      EXPECT_EQ(before, turn.context_before + encoded->size() + reply.size());
    }
    // Everything before the last reply, fed at once, then the same generation.
    std::vector<TokenId> whole = (*a)->context();
    whole.resize(whole.size() - reply.size());
    ASSERT_THAT((*b)->AppendTokens(whole, Prefill::kBatch, nullptr), IsOk());
    std::vector<TokenId> again;
    const GenerateOptions g{.max_tokens = 12, .temperature = temperature, .seed = 7u + 2};
    ASSERT_THAT((*b)->Generate("", g, [&](TokenId id, std::string_view) { again.push_back(id); return true; }), IsOk());
    EXPECT_EQ(again, reply) << "temperature " << temperature;
    EXPECT_EQ((*b)->stats().prompt_tokens, whole.size());
  }
}

TEST(Conversation, AFullContextIsAClearErrorAndChangesNothing) {
  auto model = Model::Open(testing::Stories260KModel(), {.max_context = 64});
  ASSERT_THAT(model.status(), IsOk());
  auto s = (*model)->NewSession({});
  ASSERT_THAT((*s)->Append("Once upon a time, there was a little girl.", {}), IsOk());
  const std::vector<TokenId> held = (*s)->context();
  const std::string long_text(400, 'x');
  EXPECT_THAT((*s)->Append(long_text, {}),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("of its 64")));
  EXPECT_EQ((*s)->context(), held);
  // Generation runs into the end of the context and stops there.
  ASSERT_THAT((*s)->Generate("", {.max_tokens = 1000}, nullptr), IsOk());
  EXPECT_EQ((*s)->context().size(), 64u);
  (*s)->Reset();
  EXPECT_TRUE((*s)->context().empty());
  ASSERT_THAT((*s)->Append("Once", {}), IsOk());
  EXPECT_EQ((*s)->context().front(), (*model)->info().bos_id);
}

TEST(StopStrings, HoldBackWhatMayStartOne) {
  StopStrings s({"<end>", "ab"});
  EXPECT_EQ(s.Feed("hello <e"), "hello ");
  EXPECT_EQ(s.Feed("n"), "");
  EXPECT_EQ(s.Feed("x a"), "<enx ");
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.Feed("b tail"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.Feed("more"), "");
  StopStrings t({"<end>"});
  EXPECT_EQ(t.Feed("one <en"), "one ");
  EXPECT_EQ(t.Flush(), "<en");
  StopStrings u({"aab"});  // the match may start inside what was held
  EXPECT_EQ(u.Feed("xaa"), "x");
  EXPECT_EQ(u.Feed("ab"), "a");
  EXPECT_TRUE(u.stopped());
}

TEST(StopStrings, GenerationStopsBeforeTheStopString) {
  auto model = Model::Open(testing::Stories260KModel(), {.max_context = 256});
  ASSERT_THAT(model.status(), IsOk());
  auto s = (*model)->NewSession({});
  std::string free_text;
  ASSERT_THAT((*s)->Generate("Once upon a time", {.max_tokens = 60},
                             [&](TokenId, std::string_view p) { free_text += p; return true; }),
              IsOk());
  const size_t at = free_text.find("play");
  ASSERT_NE(at, std::string::npos) << free_text;
  (*s)->Reset();
  std::string stopped;
  ASSERT_THAT((*s)->Generate("Once upon a time", {.max_tokens = 60, .stop = {"play"}},
                             [&](TokenId, std::string_view p) { stopped += p; return true; }),
              IsOk());
  EXPECT_EQ(stopped, free_text.substr(0, at));
  EXPECT_LT((*s)->stats().generated_tokens, 60u);
}

// A q8_0 KV cache: 17/32 of f16's bytes; its logits stay near f32
// attention's, further than f16's (8 bits against 11); a batch gives what
// one token at a time gives; a head that is not whole blocks is refused.
TEST(KvCache, Q8_0HoldsLessAndStaysNearF32) {
  testing::TempDir tmp;
  const std::string dir = tmp.File("m");
  ASSERT_THAT(testing::WriteTinyModel(dir, {.dim = 128, .ffn_dim = 256, .n_layers = 2, .n_heads = 4,
                                            .n_kv_heads = 2, .vocab = 40, .max_seq_len = 64,
                                            .gated = true, .activation = "silu"}),
              IsOk());
  std::vector<TokenId> ids;
  for (int i = 0; i < 48; ++i) ids.push_back((i * 7 + 3) % 40);
  auto run = [&](KvCacheType kv, Prefill prefill, uint64_t* kv_bytes = nullptr) {
    auto model = Model::Open(dir, {.max_context = 64, .kv_cache = kv});
    EXPECT_THAT(model.status(), IsOk());
    if (kv_bytes != nullptr) *kv_bytes = (*model)->info().kv_cache_bytes;
    EXPECT_EQ((*model)->info().kv_cache_dtype,
              kv == KvCacheType::kQ8_0 ? "q8_0" : kv == KvCacheType::kF16 ? "f16" : "f32");
    auto logits = (*(*model)->NewSession({}))->Logits(ids, prefill);
    EXPECT_THAT(logits.status(), IsOk());
    return *logits;
  };
  uint64_t f16_bytes = 0, q8_bytes = 0;
  const std::vector<float> f32 = run(KvCacheType::kF32, Prefill::kToken);
  const std::vector<float> f16 = run(KvCacheType::kF16, Prefill::kToken, &f16_bytes);
  const std::vector<float> q8 = run(KvCacheType::kQ8_0, Prefill::kToken, &q8_bytes);
  const std::vector<float> q8_batch = run(KvCacheType::kQ8_0, Prefill::kBatch);
  EXPECT_EQ(q8_bytes * 32, f16_bytes * 17);
  auto max_diff = [](const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
    return worst;
  };
  double scale = 0;
  for (float v : f32) scale = std::max(scale, std::fabs(double(v)));
  const double d16 = max_diff(f16, f32), d8 = max_diff(q8, f32);
  EXPECT_GT(d8, d16) << "a q8_0 KV cache as close as f16's was not q8_0";
  // Each key and value is off by at most half a step, 1/254 of its block's
  // largest magnitude (the query likewise in the key products): within half
  // a percent of the logits' scale through two layers (measured: 0.15%).
  EXPECT_LT(d8, 0.005 * scale);
  EXPECT_LE(max_diff(q8_batch, q8), 1e-4 * scale);
  auto stories = Model::Open(testing::Stories260KModel(), {.kv_cache = KvCacheType::kQ8_0});
  EXPECT_THAT(stories.status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("head_dim a multiple of 32")));
}

}  // namespace
}  // namespace llmflash

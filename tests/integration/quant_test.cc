// Quality of quantized storage on stories260K's held-out text, with f32 as
// the reference: perplexity and greedy agreement (the f32 model's argmax
// kept) for every type and the mixes convert offers. The table printed here
// is docs/format.md's "Storage types" table.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "llmflash/convert.h"
#include "llmflash/llmflash.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct Quality {
  double perplexity = 0;
  std::vector<int> argmax;  // per predicted position
  std::string dtype, ffn_dtype;
  uint64_t model_bytes = 0;
};

// The held-out text in chunks of at most 256 tokens, each run from position
// 0, every next token scored.
Quality Measure(const std::string& dir) {
  Quality q;
  auto model = Model::Open(dir, {.kv_cache = KvCacheType::kF32});
  EXPECT_THAT(model.status(), testing::IsOk());
  if (!model.ok()) return q;
  q.dtype = (*model)->info().dtype;
  q.ffn_dtype = (*model)->info().ffn_dtype;
  q.model_bytes = (*model)->info().model_bytes;
  auto ids = (*model)->Encode(testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/heldout_stories.txt"), true);
  EXPECT_THAT(ids.status(), testing::IsOk());
  const int vocab = (*model)->info().vocab_size;
  double nll = 0;
  int scored = 0;
  for (size_t at = 0; at + 1 < ids->size(); at += 255) {
    std::vector<TokenId> chunk(ids->begin() + at, ids->begin() + std::min(ids->size(), at + 256));
    auto session = (*model)->NewSession({});
    auto logits = (*session)->Logits(chunk);
    EXPECT_THAT(logits.status(), testing::IsOk());
    for (size_t p = 0; p + 1 < chunk.size(); ++p) {
      const float* l = logits->data() + p * vocab;
      const float m = *std::max_element(l, l + vocab);
      double z = 0;
      for (int v = 0; v < vocab; ++v) z += std::exp(double(l[v]) - m);
      nll += std::log(z) + m - l[chunk[p + 1]];
      ++scored;
      q.argmax.push_back(static_cast<int>(std::max_element(l, l + vocab) - l));
    }
  }
  q.perplexity = std::exp(nll / scored);
  return q;
}

double Agreement(const Quality& a, const Quality& b) {
  int same = 0;
  for (size_t i = 0; i < a.argmax.size(); ++i) same += a.argmax[i] == b.argmax[i];
  return a.argmax.empty() ? 0 : static_cast<double>(same) / a.argmax.size();
}

struct Mix {
  const char* name;
  const char* dtype;
  const char* ffn;
  const char* resident;
  const char* embedding;
  double max_ppl_rise;      // relative to f32
  double min_agreement;
};

TEST(QuantizedQuality, EveryTypeAndMixOnHeldOutText) {
  testing::TempDir tmp;
  const std::vector<Mix> mixes = {
      {"f32", "f32", "", "", "", 0, 1},
      {"f16", "f16", "", "", "", 0.002, 0.99},
      {"bf16", "bf16", "", "", "", 0.01, 0.97},
      {"q8_0", "q8_0", "", "", "", 0.01, 0.98},
      {"q4_0 (embeddings q8_0)", "q4_0", "", "", "", 0.15, 0},
      {"q4_0 everywhere", "q4_0", "", "", "q4_0", 0.15, 0},
      {"q4_0 FFN, q8_0 resident", "q8_0", "q4_0", "", "", 0.15, 0},
      {"q8_0 FFN, q4_0 resident", "q4_0", "q8_0", "", "", 0.15, 0},
  };
  std::vector<Quality> got;
  for (const Mix& m : mixes) {
    ConvertOptions o;
    o.input = testing::Stories260KBin();
    o.tokenizer = testing::Stories260KTokenizer();
    o.output = tmp.File(std::to_string(got.size()));
    o.dtype = m.dtype;
    o.ffn_dtype = m.ffn;
    o.resident_dtype = m.resident;
    o.embedding_dtype = m.embedding;
    std::vector<std::string> notes;
    o.note = [&](const std::string& n) { notes.push_back(n); };
    ASSERT_THAT(ConvertLlama2c(o), testing::IsOk()) << m.name;
    EXPECT_THAT(notes, IsEmpty()) << m.name << ": stories260K's rows are whole blocks";
    got.push_back(Measure(o.output));
  }
  const Quality& ref = got[0];
  std::printf("\n%-26s %-6s %-6s %10s %12s %9s %9s\n", "storage", "dtype", "ffn", "bytes", "perplexity",
              "vs f32", "agree");
  for (size_t i = 0; i < mixes.size(); ++i) {
    const double rise = got[i].perplexity / ref.perplexity - 1;
    const double agree = Agreement(got[i], ref);
    std::printf("%-26s %-6s %-6s %10llu %12.4f %+8.2f%% %8.1f%%\n", mixes[i].name, got[i].dtype.c_str(),
                got[i].ffn_dtype.c_str(), static_cast<unsigned long long>(got[i].model_bytes), got[i].perplexity,
                100 * rise, 100 * agree);
    EXPECT_LE(std::fabs(rise), mixes[i].max_ppl_rise + 1e-12) << mixes[i].name;
    EXPECT_GE(agree, mixes[i].min_agreement) << mixes[i].name;
    if (i > 0) EXPECT_LT(got[i].model_bytes, ref.model_bytes) << mixes[i].name;
  }
  // The types asked for are the types stored.
  EXPECT_EQ(got[3].dtype, "q8_0");
  EXPECT_EQ(got[3].ffn_dtype, "q8_0");
  EXPECT_EQ(got[6].ffn_dtype, "q4_0");
  EXPECT_EQ(got[6].dtype, "q8_0");
  EXPECT_GT(ref.argmax.size(), 400u);
}

}  // namespace
}  // namespace llmflash

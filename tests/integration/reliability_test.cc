// Sessions under I/O faults, files changing underneath, the pread backend and
// concurrent sessions on one model.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "llmflash/llmflash.h"
#include "runtime/model_impl.h"
#include "testing/fault_injector.h"
#include "testing/tiny_model.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using testing::FaultInjector;
using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

struct Golden {
  std::string prompt, text;
  int n;
};

std::vector<Golden> LoadGolden() {
  auto j = nlohmann::json::parse(
      testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/stories260K_golden.json"));
  std::vector<Golden> out;
  for (const auto& c : j["cases"]) {
    out.push_back({c["prompt"], c["text"], static_cast<int>(c["generated_ids"].size())});
  }
  return out;
}

// Each prompt in a new context.
StatusOr<std::string> GenerateText(Session& s, const Golden& g) {
  s.Reset();
  std::string text;
  Status st = s.Generate(g.prompt, {.max_tokens = g.n},
                         [&](TokenId, std::string_view p) { text += p; return true; });
  if (!st.ok()) return st;
  return text;
}

// A budget below the FFN, so that every token reads.
ModelOptions Tight(const std::string& dir, IoBackendKind backend = IoBackendKind::kAuto) {
  ModelOptions o;
  o.dram_budget_bytes = *ModelWeightBytes(dir) * 6 / 5;
  o.max_context = 256;
  o.io_backend = backend;
  return o;
}

TEST(Reliability, EioFailsGenerateAndTheSessionRecovers) {
  const std::string& dir = testing::Stories260KModel();
  FaultInjector faults;
  auto model = ModelImpl::OpenImpl(dir, Tight(dir), &faults);
  ASSERT_THAT(model.status(), IsOk());
  auto session = (*model)->NewSession({});
  Golden g = LoadGolden()[1];
  faults.Set(FaultInjector::Mode::kErrno, 25, EIO, 1);
  auto failed = GenerateText(**session, g);
  EXPECT_THAT(failed.status(), StatusIs(StatusCode::kIOError, HasSubstr("ffn.bundle: read of")));
  EXPECT_THAT(failed.status().message(), HasSubstr("at offset"));
  EXPECT_EQ(faults.injected(), 1);
  auto again = GenerateText(**session, g);  // the same session, faults spent
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_EQ(*again, g.text);
}

TEST(Reliability, ShortReadsAndEagainDoNotChangeTheOutput) {
  const std::string& dir = testing::Stories260KModel();
  FaultInjector faults;
  auto model = ModelImpl::OpenImpl(dir, Tight(dir), &faults);
  ASSERT_THAT(model.status(), IsOk());
  auto session = (*model)->NewSession({});
  Golden g = LoadGolden()[2];
  faults.Set(FaultInjector::Mode::kErrno, 4, EAGAIN, 10);
  auto text = GenerateText(**session, g);
  ASSERT_THAT(text.status(), IsOk());
  EXPECT_EQ(*text, g.text);
  EXPECT_EQ(faults.injected(), 10);
  (*session)->Reset();  // nothing resident: the first token reads whole layers
  faults.Set(FaultInjector::Mode::kShortRead, 1);
  Golden g2 = LoadGolden()[3];
  text = GenerateText(**session, g2);
  ASSERT_THAT(text.status(), IsOk());
  EXPECT_EQ(*text, g2.text);
  EXPECT_GT(faults.injected(), 10);
}

TEST(Reliability, TruncatedWhileOpenIsAnIoErrorAndRecoversWhenRestored) {
  testing::TempDir tmp;
  std::string dir = tmp.File("m");
  std::filesystem::copy(testing::Stories260KModel(), dir);
  auto model = Model::Open(dir, Tight(dir));
  ASSERT_THAT(model.status(), IsOk());
  auto session = (*model)->NewSession({});
  std::string bundle = dir + "/ffn.bundle", saved = testing::ReadFile(bundle);
  ASSERT_EQ(truncate(bundle.c_str(), 4096), 0);
  Golden g = LoadGolden()[0];
  EXPECT_THAT(GenerateText(**session, g).status(),
              StatusIs(StatusCode::kIOError, HasSubstr("ffn.bundle: file ends before offset")));
  testing::WriteFile(bundle, saved);  // same inode: the open file sees it again
  auto text = GenerateText(**session, g);
  ASSERT_THAT(text.status(), IsOk());
  EXPECT_EQ(*text, g.text);
}

TEST(Reliability, PreadBackendGivesIdenticalOutput) {
  const std::string& dir = testing::Stories260KModel();
  auto model = Model::Open(dir, Tight(dir, IoBackendKind::kPread));
  ASSERT_THAT(model.status(), IsOk());
  auto session = (*model)->NewSession({});
  EXPECT_STREQ((*session)->stats().io_backend, "pread");
  for (const Golden& g : LoadGolden()) {
    auto text = GenerateText(**session, g);
    ASSERT_THAT(text.status(), IsOk());
    EXPECT_EQ(*text, g.text) << g.prompt;
  }
}

// A model with layers big enough for the thread pool (split products) and
// for reading a layer's missing neurons while its resident ones compute:
// results match one thread to float rounding, and the overlap is reported.
// Run under TSan in CI.
TEST(Concurrency, BigLayersSplitOverThreadsAndOverlapReads) {
  testing::TempDir tmp;
  const std::string dir = tmp.File("wide");
  testing::TinyModelSpec spec;
  spec.dim = 512;
  spec.ffn_dim = 1024;
  spec.n_heads = 8;
  spec.n_kv_heads = 8;
  spec.gated = true;
  spec.activation = "silu";
  ASSERT_THAT(testing::WriteTinyModel(dir, spec), IsOk());
  auto whole = ModelWeightBytes(dir);
  ASSERT_THAT(whole.status(), IsOk());
  auto logits = [&](int threads, double* hidden, uint64_t* loaded) {
    auto model = Model::Open(dir, {.dram_budget_bytes = *whole * 3 / 4, .max_context = 16,
                                   .threads = threads});
    EXPECT_THAT(model.status(), IsOk());
    EXPECT_LT((*model)->info().neuron_capacity, spec.ffn_dim);
    auto s = (*model)->NewSession({});
    auto out = (*s)->Logits({1, 5, 9, 3, 7, 2});
    EXPECT_THAT(out.status(), IsOk());
    *hidden = 0;
    *loaded = 0;
    for (const TokenStats& t : (*s)->stats().tokens) {
      *hidden += t.io_hidden_ms;
      *loaded += t.neurons_loaded;
    }
    return *out;
  };
  double hidden1, hidden2;
  uint64_t loaded1, loaded2;
  std::vector<float> one = logits(1, &hidden1, &loaded1), two = logits(2, &hidden2, &loaded2);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) ASSERT_NEAR(one[i], two[i], 1e-3f * (1 + std::fabs(one[i]))) << i;
  EXPECT_EQ(loaded1, loaded2);  // the same reads either way
  EXPECT_GT(loaded2, 0u);
  EXPECT_GE(hidden2, 0.0);
}

// One model, four sessions on four threads, each with its own KV cache and
// window inside the shared budget; run under TSan in CI.
TEST(Concurrency, FourSessionsOnOneModel) {
  const std::string& dir = testing::Stories260KModel();
  ModelOptions o = Tight(dir);
  o.max_sessions = 4;
  o.dram_budget_bytes *= 3;
  auto model = Model::Open(dir, o);
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_LE((*model)->info().resident_bytes + 4 * (*model)->info().session_bytes, o.dram_budget_bytes);
  EXPECT_TRUE((*model)->info().streams_layers);
  std::vector<Golden> golden = LoadGolden();
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto session = (*model)->NewSession({});
      if (!session.ok()) { errors[t] = session.status().ToString(); return; }
      for (int round = 0; round < 2; ++round) {
        const Golden& g = golden[(t + round) % golden.size()];
        auto text = GenerateText(**session, g);
        if (!text.ok()) errors[t] = text.status().ToString();
        else if (*text != g.text) errors[t] = "thread " + std::to_string(t) + " diverged on \"" + g.prompt + "\"";
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  EXPECT_THAT((*model)->NewSession({}).status(), IsOk());  // all four returned their slots
}

}  // namespace
}  // namespace llmflash

// The sparsity predictor: exactness on a tiny ReLU model, quality and I/O on
// stories260K.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "llmflash/llmflash.h"
#include "format/manifest.h"
#include "predictor/low_rank_predictor.h"
#include "runtime/evaluator.h"
#include "runtime/predictor_builder.h"
#include "testing/test_util.h"
#include "testing/tiny_model.h"
#include "util/heap_usage.h"
#include "util/macros.h"

namespace llmflash {
namespace {

using testing::IsOk;

std::string CalibrationText(int n, int seed) {
  std::mt19937 rng(seed);
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>('!' + 3 + rng() % 37);
  return s;
}

std::vector<float> LogitsOf(const std::string& dir, bool use_predictor,
                            const std::vector<TokenId>& ids, uint64_t budget = 0,
                            Prefill prefill = Prefill::kBatch) {
  auto model = Model::Open(dir, {.dram_budget_bytes = budget});
  EXPECT_THAT(model.status(), IsOk());
  auto session = (*model)->NewSession({.use_predictor = use_predictor});
  auto logits = (*session)->Logits(ids, prefill);
  EXPECT_THAT(logits.status(), IsOk());
  return *logits;
}

// A tiny ReLU model in `dir` with an svd predictor built by `o`.
class TinyReluPredictor : public ::testing::Test {
 protected:
  Status Build(const testing::TinyModelSpec& spec = {}) {
    RETURN_IF_ERROR(testing::WriteTinyModel(dir, spec));
    o.model_dir = dir;
    o.calibration_text = CalibrationText(400, 4);
    return BuildPredictor(o).status();
  }

  testing::TempDir tmp;
  const std::string dir = tmp.File("tiny");
  BuildPredictorOptions o;
};

// Opens `dir` (max_context 64) at about half of its FFN rows: the fixed part
// plus half the rows, stepped down while the first layer still holds all of
// its neurons (tight budgets also get smaller I/O buffers).
StatusOr<std::unique_ptr<Model>> OpenWithShortRows(const std::string& dir) {
  auto full = Model::Open(dir, {.max_context = 64});
  if (!full.ok()) return full.status();
  const ModelInfo& i = (*full)->info();
  const uint64_t rows = static_cast<uint64_t>(i.ffn_dim) * i.n_layers * i.record_bytes;
  uint64_t budget = i.resident_bytes + i.session_bytes - rows / 2;
  auto model = Model::Open(dir, {.dram_budget_bytes = budget, .max_context = 64});
  while (model.ok() && (*model)->info().layer_neuron_capacity[0] == i.ffn_dim) {
    budget -= rows / 32;
    model = Model::Open(dir, {.dram_budget_bytes = budget, .max_context = 64});
  }
  return model;
}

class TinyRelu : public ::testing::TestWithParam<std::string> {};

// With a full-rank svd predictor (recall 1 on ReLU), skipping the neurons it
// rules out skips only zero activations: the logits equal dense bit for bit.
TEST_P(TinyRelu, SparseEqualsDenseWhenNoActiveNeuronIsMissed) {
  testing::TempDir tmp;
  std::string dir = tmp.File("tiny");
  ASSERT_THAT(testing::WriteTinyModel(dir, {}), IsOk());
  BuildPredictorOptions o;
  o.model_dir = dir;
  o.calibration_text = CalibrationText(600, 1);
  o.train.method = GetParam();
  o.train.rank = 16;
  o.train.target_recall = 1.0f;
  auto layers = BuildPredictor(o);
  ASSERT_THAT(layers.status(), IsOk());
  for (const auto& l : *layers) EXPECT_GE(l.recall, 0.99);

  EvalOptions e;
  e.model_dir = dir;
  e.text = CalibrationText(60, 2);  // held out: another seed
  auto report = Evaluate(e);
  ASSERT_THAT(report.status(), IsOk());
  EXPECT_GT(report->inactive_fraction, 0.3);  // ReLU zeroes a good share
  bool missed = false;
  for (const auto& l : report->layers) {
    // Full rank: the svd scores are the pre-activations up to rounding, so
    // only a neuron within rounding of zero can be missed.
    EXPECT_GE(l.recall, GetParam() == "svd" ? 0.999 : 0.99);
    missed |= l.recall < 1.0;
  }
  EXPECT_LT(report->computed_fraction, 1.0);
  if (!missed) {  // on these very tokens: then the sparse pass equals dense exactly
    EXPECT_EQ(report->greedy_agreement, 1.0);
    auto model = Model::Open(dir, {});
    ASSERT_THAT(model.status(), IsOk());
    auto ids = (*model)->Encode(e.text, true);
    ASSERT_THAT(ids.status(), IsOk());
    model->reset();
    EXPECT_EQ(LogitsOf(dir, true, *ids), LogitsOf(dir, false, *ids));
  }
}

// The lookahead reads guessed neurons early and the exact prediction reads
// the rest: what is computed, and so the logits, must not change; with a
// tight budget the guesses are really read (and some go unused).
TEST_F(TinyReluPredictor, LookaheadChangesReadsNotResults) {
  ASSERT_THAT(Build(), IsOk());
  auto model = OpenWithShortRows(dir);
  ASSERT_THAT(model.status(), IsOk());
  ASSERT_LT((*model)->info().neuron_capacity, (*model)->info().ffn_dim);
  auto ids = (*model)->Encode(CalibrationText(40, 9), true);
  ASSERT_THAT(ids.status(), IsOk());
  ids->resize(std::min<size_t>(ids->size(), 60));
  auto run = [&](Lookahead lookahead, uint64_t* prefetched) {
    auto s = (*model)->NewSession({.lookahead = lookahead});
    auto logits = (*s)->Logits(*ids, Prefill::kToken);  // the lookahead is a decode step's
    EXPECT_THAT(logits.status(), IsOk());
    *prefetched = 0;
    for (const TokenStats& t : (*s)->stats().tokens) *prefetched += t.neurons_prefetched;
    return *logits;
  };
  uint64_t with = 0, without = 0;
  auto a = run(Lookahead::kOn, &with);
  auto b = run(Lookahead::kOff, &without);
  EXPECT_EQ(a, b);
  uint64_t automatic = 0;  // whichever tokens kAuto gives it to
  EXPECT_EQ(run(Lookahead::kAuto, &automatic), b);
  // Nor does the budget: rows re-shared between layers, streamed parts.
  EXPECT_EQ(a, LogitsOf(dir, true, *ids, 0, Prefill::kToken));
  EXPECT_GT(with, 0u);
  EXPECT_EQ(without, 0u);
}

// Rows are first shared by the predictor's stored per-layer fractions; a
// session then follows the active neurons it sees. Here the stored fractions
// are made wrong (layer 0 "needs" 50x layer 1), so the session must move rows
// to layer 1, and nothing it computes may change.
TEST_F(TinyReluPredictor, SessionsMoveRowsToTheLayersThatNeedThem) {
  testing::TinyModelSpec spec;
  spec.n_layers = 3;
  ASSERT_THAT(Build(spec), IsOk());
  const std::string manifest = dir + "/manifest.json";
  auto j = nlohmann::json::parse(testing::ReadFile(manifest));
  auto& layers = j["predictor"]["layers"];
  ASSERT_EQ(layers.size(), 3u);
  layers[0]["predicted_fraction"] = 0.5;
  layers[1]["predicted_fraction"] = 0.01;
  layers[2]["predicted_fraction"] = 0.2;
  testing::WriteFile(manifest, j.dump(1));

  auto model = OpenWithShortRows(dir);
  ASSERT_THAT(model.status(), IsOk());
  const std::vector<int> planned = (*model)->info().layer_neuron_capacity;
  ASSERT_EQ(planned.size(), 3u);
  EXPECT_GT(planned[0], 5 * planned[1]);  // as the (wrong) manifest says
  auto ids = (*model)->Encode(CalibrationText(40, 9), true);
  ASSERT_THAT(ids.status(), IsOk());
  auto s = (*model)->NewSession({});
  auto logits = (*s)->Logits(*ids);
  ASSERT_THAT(logits.status(), IsOk());
  std::vector<uint64_t> moves;
  uint64_t bytes_moved = 0;
  for (const TokenStats& t : (*s)->stats().tokens) {
    moves.push_back(t.rows_rebalanced);
    bytes_moved += t.bytes_moved;
  }
  EXPECT_GT(std::accumulate(moves.begin(), moves.end(), uint64_t{0}), 0u);
  // Rows given to other layers move in DRAM, and the cost model is told.
  EXPECT_GT(bytes_moved, 0u);
  // The next session on the same state starts from the planned split again,
  // not from where this one left the rows: it moves them the same way.
  s->reset();
  auto again = (*model)->NewSession({});
  auto logits_again = (*again)->Logits(*ids);
  ASSERT_THAT(logits_again.status(), IsOk());
  std::vector<uint64_t> moves_again;
  for (const TokenStats& t : (*again)->stats().tokens) moves_again.push_back(t.rows_rebalanced);
  EXPECT_EQ(moves_again, moves);
  EXPECT_EQ(*logits_again, *logits);
  // As with an unlimited budget, up to the order of the sums: streamed layers
  // add their resident neurons first (a moved row holding the wrong neuron
  // would be off by far more).
  const std::vector<float> roomy = LogitsOf(dir, true, *ids);
  ASSERT_EQ(logits->size(), roomy.size());
  for (size_t k = 0; k < roomy.size(); ++k) {
    EXPECT_NEAR((*logits)[k], roomy[k], 1e-4f * (1 + std::fabs(roomy[k]))) << k;
  }
}

// f16 and bf16 models hold their predictor's matrices in f16: half the DRAM,
// scores within f16 rounding of the f32 file's, nearly the same neurons.
TEST_F(TinyReluPredictor, HeldInF16ScoresAsTheF32File) {
  ASSERT_THAT(Build(), IsOk());
  auto m = LoadManifest(dir);
  ASSERT_THAT(m.status(), IsOk());
  EXPECT_LT(Predictors::MemoryBytes(*m, DType::kF16), 0.6 * Predictors::MemoryBytes(*m, DType::kF32));
  Predictors f32, f16;
  ASSERT_THAT(f32.Load(*m, dir, DType::kF32), IsOk());
  ASSERT_THAT(f16.Load(*m, dir, DType::kF16), IsOk());
  EXPECT_EQ(f16.bytes(), Predictors::MemoryBytes(*m, DType::kF16));
  EXPECT_THAT(f16.Load(*m, dir, DType::kBF16),
              testing::StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("f32 or f16")));
  ASSERT_THAT(f16.Load(*m, dir, DType::kF16), IsOk());
  const int n = m->config.ffn_dim, d = m->config.dim;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(d), a(n), b(n), scratch(2 * f32.max_rank());
  size_t same = 0, total = 0;
  for (int trial = 0; trial < 50; ++trial) {
    for (float& v : x) v = normal(rng);
    for (int l = 0; l < m->config.n_layers; ++l) {
      f32.layer(l).Scores(x.data(), a.data(), scratch.data());
      f16.layer(l).Scores(x.data(), b.data(), scratch.data());
      float scale = 0;
      for (float v : a) scale = std::max(scale, std::fabs(v));
      for (int i = 0; i < n; ++i) ASSERT_NEAR(a[i], b[i], 4e-3f * scale) << "layer " << l << " neuron " << i;
      for (int i = 0; i < n; ++i) {
        const float t = f32.layer(l).threshold();
        same += (a[i] > t) == (b[i] > t);
        ++total;
      }
    }
  }
  EXPECT_GT(static_cast<double>(same) / total, 0.995);
}

// A damaged predictor is reported at Open, and train-predictor replaces it.
TEST_F(TinyReluPredictor, RetrainingReplacesADamagedPredictor) {
  ASSERT_THAT(Build(), IsOk());
  std::string bin = testing::ReadFile(dir + "/predictor.bin");
  testing::WriteFile(dir + "/predictor.bin", bin.substr(0, bin.size() / 2));
  EXPECT_THAT(Model::Open(dir, {}).status(),
              testing::StatusIs(StatusCode::kCorruption, ::testing::HasSubstr("predictor.bin")));
  ASSERT_THAT(BuildPredictor(o).status(), IsOk());
  auto model = Model::Open(dir, {});
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_TRUE((*model)->info().has_predictor);
}

// The miss curve the planner reads: recorded with the predictor, checked at
// Open like every manifest field; a predictor without one still opens.
TEST_F(TinyReluPredictor, MissCurveIsRecordedAndChecked) {
  ASSERT_THAT(Build(), IsOk());
  const std::string path = dir + "/manifest.json";
  const std::string good = testing::ReadFile(path);
  auto j = nlohmann::json::parse(good);
  for (const auto& l : j["predictor"]["layers"]) {
    ASSERT_EQ(l["lru_misses"].size(), 25u);
    // More rows never read more.
    std::vector<float> c = l["lru_misses"].get<std::vector<float>>();
    EXPECT_TRUE(std::is_sorted(c.rbegin(), c.rend()));
    EXPECT_GT(c.front(), c.back());
  }
  auto open_with = [&](const nlohmann::json& curve) {
    auto bad = j;
    bad["predictor"]["layers"][0]["lru_misses"] = curve;
    testing::WriteFile(path, bad.dump());
    return Model::Open(dir, {}).status();
  };
  std::vector<float> twenty_five(25, 0.5f);
  EXPECT_THAT(open_with(std::vector<float>(24, 0.5f)),
              testing::StatusIs(StatusCode::kCorruption, ::testing::HasSubstr("lru_misses")));
  twenty_five[3] = 1.5f;
  EXPECT_THAT(open_with(twenty_five),
              testing::StatusIs(StatusCode::kCorruption, ::testing::HasSubstr("lru_misses")));
  EXPECT_THAT(open_with("many"),
              testing::StatusIs(StatusCode::kCorruption, ::testing::HasSubstr("manifest.json")));
  auto old = j;  // written before the curve existed
  for (auto& l : old["predictor"]["layers"]) l.erase("lru_misses");
  testing::WriteFile(path, old.dump());
  EXPECT_THAT(Model::Open(dir, {}).status(), IsOk());
}

// --method auto fits both per layer and keeps, per layer, the one that
// predicts fewer neurons at the target recall; the manifest records each
// layer's method and form, inspect counts them, and a manifest from before
// layers could differ (no per-layer fields) still opens as its one method.
TEST_F(TinyReluPredictor, AutoChoosesPerLayerAndRecordsIt) {
  ASSERT_THAT(testing::WriteTinyModel(dir, {}), IsOk());
  o.model_dir = dir;
  o.calibration_text = CalibrationText(400, 4);
  o.train.rank = 4;  // low rank: the two fits differ
  std::map<std::string, std::vector<PredictorLayerInfo>> by;
  for (const char* method : {"svd", "trained", "auto"}) {
    o.train.method = method;
    auto layers = BuildPredictor(o);
    ASSERT_THAT(layers.status(), IsOk()) << method;
    by[method] = *layers;
  }
  const auto& svd = by["svd"];
  const auto& trained = by["trained"];
  const auto& chosen = by["auto"];
  ASSERT_EQ(chosen.size(), svd.size());
  for (size_t l = 0; l < chosen.size(); ++l) {
    EXPECT_EQ(svd[l].method, "svd");
    EXPECT_EQ(svd[l].form, "gated");
    EXPECT_EQ(trained[l].method, "trained");
    EXPECT_EQ(trained[l].form, "logit");
    const PredictorLayerInfo& same = chosen[l].method == "svd" ? svd[l] : trained[l];
    const PredictorLayerInfo& other = chosen[l].method == "svd" ? trained[l] : svd[l];
    EXPECT_EQ(chosen[l].form, same.form);
    EXPECT_EQ(chosen[l].predicted_fraction, same.predicted_fraction) << "layer " << l;
    EXPECT_EQ(chosen[l].recall, same.recall) << "layer " << l;
    if (other.recall >= o.train.target_recall && same.recall >= o.train.target_recall) {
      EXPECT_LE(same.predicted_fraction, other.predicted_fraction) << "layer " << l;
    }
  }
  auto model = Model::Open(dir, {});
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_EQ((*model)->info().predictor_method, "auto");
  std::vector<std::string> methods;
  for (const auto& l : chosen) methods.push_back(l.method);
  EXPECT_EQ((*model)->info().predictor_layer_methods, methods);
  model->reset();

  const std::string path = dir + "/manifest.json";
  auto j = nlohmann::json::parse(testing::ReadFile(path));
  for (const char* field : {"method", "form"}) {
    auto bad = j;
    bad["predictor"]["layers"][1][field] = "lowrank";
    testing::WriteFile(path, bad.dump());
    EXPECT_THAT(Model::Open(dir, {}).status(),
                testing::StatusIs(StatusCode::kCorruption, ::testing::HasSubstr(field)));
  }
  // Written before layers could differ: one method and form for all (and a
  // damaged predictor section, left by the loop above, does not stop its
  // own replacement).
  BuildPredictorOptions one = o;
  one.train.method = "trained";
  ASSERT_THAT(BuildPredictor(one).status(), IsOk());
  const std::vector<float> now = LogitsOf(dir, true, {1, 5, 9, 13});
  auto old = nlohmann::json::parse(testing::ReadFile(path));
  for (auto& l : old["predictor"]["layers"]) {
    l.erase("method");
    l.erase("form");
  }
  testing::WriteFile(path, old.dump());
  model = Model::Open(dir, {});
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_EQ((*model)->info().predictor_layer_methods, std::vector<std::string>(methods.size(), "trained"));
  model->reset();
  EXPECT_EQ(LogitsOf(dir, true, {1, 5, 9, 13}), now);
  // A method nobody knows is refused before anything is dropped.
  one.train.method = "lowrank";
  EXPECT_THAT(BuildPredictor(one).status(),
              testing::StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("lowrank")));
  EXPECT_THAT(Model::Open(dir, {}).status(), IsOk());
}

INSTANTIATE_TEST_SUITE_P(Methods, TinyRelu, ::testing::Values("svd", "trained", "auto"));

// What the resident set grew by from `before` to `peak`. The two are read
// at different moments from counters the kernel keeps per thread and folds
// in lazily, so a peak can read a few pages below an earlier resident set
// (CI saw 92 KiB): that is no growth, not a wrap to 2^64.
uint64_t Growth(uint64_t peak, uint64_t before) { return peak > before ? peak - before : 0; }

// Under AddressSanitizer the RSS holds its shadow memory and its quarantine
// of freed blocks, so a peak says nothing of the library; the memory bounds
// are checked in the plain build and everything else in both.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPlainRss = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kPlainRss = false;
#else
constexpr bool kPlainRss = true;
#endif
#else
constexpr bool kPlainRss = true;
#endif

std::string FileBytes(const std::string& path) { return testing::ReadFile(path); }

class PredictorWithinBudget : public ::testing::TestWithParam<std::string> {};

// train-predictor on a model three times its budget: the calibration runs
// inside the budget (rows streamed, activations spilled to a file) and
// training holds one layer, so the peak RSS grows by the budget plus one
// layer's working set, where it used to hold the whole model and every
// layer's samples. The predictor is the one the whole model gives.
TEST_P(PredictorWithinBudget, PeakRssIsTheBudgetPlusOneLayer) {
  testing::TempDir tmp;
  testing::TinyModelSpec spec;
  spec.dim = 128;
  spec.ffn_dim = 2048;
  spec.n_layers = 24;
  spec.n_heads = 4;
  spec.n_kv_heads = 4;
  spec.max_seq_len = 256;
  const std::string a = tmp.File("a"), b = tmp.File("b");
  ASSERT_THAT(testing::WriteTinyModel(a, spec), IsOk());
  ASSERT_THAT(testing::WriteTinyModel(b, spec), IsOk());
  auto whole = ModelWeightBytes(a);
  ASSERT_THAT(whole.status(), IsOk());
  BuildPredictorOptions o;
  o.calibration_text = CalibrationText(600, 7);
  o.train.method = GetParam();
  o.train.rank = 32;
  o.model.max_context = 128;  // both: the calibration's windows
  o.model_dir = a;  // the whole model in DRAM
  ASSERT_THAT(BuildPredictor(o).status(), IsOk());

  o.model_dir = b;
  o.model.dram_budget_bytes = *whole / 3;
  ResetPeakResidentBytes();
  const uint64_t before = ResidentBytes();
  auto layers = BuildPredictor(o);
  const uint64_t peak = PeakResidentBytes();
  ASSERT_THAT(layers.status(), IsOk());
  {
    auto model = Model::Open(b, o.model);
    ASSERT_THAT(model.status(), IsOk());
    EXPECT_TRUE((*model)->info().streams_layers);  // the budget really streams the FFN
  }
  // One layer's training: its f32 rows and samples (~600 tokens of x and h),
  // a few copies of each, and the allocator's and threads' slack.
  const uint64_t tokens = 600;
  const uint64_t layer_set = 4ull * spec.ffn_dim * spec.dim * 4 + 6 * tokens * (spec.dim + spec.ffn_dim) * 4;
  const uint64_t all_samples = tokens * spec.n_layers * (spec.dim + spec.ffn_dim) * 4;
  if (kPlainRss) {
    EXPECT_LE(Growth(peak, before), o.model.dram_budget_bytes + layer_set + (4 << 20))
        << "model " << *whole << " B, every layer's samples " << all_samples << " B";
  }
  EXPECT_GT(*whole + all_samples, o.model.dram_budget_bytes + layer_set + (4 << 20));  // the old way could not pass
  EXPECT_FALSE(std::filesystem::exists(b + "/predictor-calibration.tmp"));

  // Calibrated in a stream of rows or with the whole FFN resident: the same
  // activations up to the order of float sums, so the same factors and
  // thresholds to float rounding.
  auto ma = LoadManifest(a), mb = LoadManifest(b);
  ASSERT_THAT(ma.status(), IsOk());
  ASSERT_THAT(mb.status(), IsOk());
  ASSERT_EQ(ma->predictor.layers.size(), mb->predictor.layers.size());
  for (size_t l = 0; l < ma->predictor.layers.size(); ++l) {
    const PredictorLayerInfo &x = ma->predictor.layers[l], &y = mb->predictor.layers[l];
    EXPECT_EQ(x.rank, y.rank);
    // Adam's steps amplify the rounding of its samples; a truncated SVD does not.
    const float tolerance = GetParam() == "svd" ? 1e-4f : 1e-2f;
    EXPECT_NEAR(x.threshold, y.threshold, tolerance * (1 + std::fabs(x.threshold))) << "layer " << l;
    EXPECT_NEAR(x.recall, y.recall, 0.01) << "layer " << l;
  }
  const std::string pa = FileBytes(a + "/predictor.bin"), pb = FileBytes(b + "/predictor.bin");
  ASSERT_EQ(pa.size(), pb.size());
  if (GetParam() == "svd") {  // the factors come from the weights alone
    const auto* fa = reinterpret_cast<const float*>(pa.data());
    const auto* fb = reinterpret_cast<const float*>(pb.data());
    size_t differ = 0;
    for (size_t i = 0; i < pa.size() / sizeof(float); ++i) differ += fa[i] != fb[i];
    EXPECT_EQ(differ, 0u);
  }

  // eval within the same budget gives the whole model's figures (once: its
  // sparse run, a decode step per token through small reads, is the slow part).
  if (GetParam() != "svd") return;
  EvalOptions e;
  e.text = CalibrationText(40, 8);
  e.model_dir = b;
  e.model.max_context = 128;
  auto full = Evaluate(e);
  ASSERT_THAT(full.status(), IsOk());
  e.model.dram_budget_bytes = o.model.dram_budget_bytes;
  ResetPeakResidentBytes();
  const uint64_t eval_before = ResidentBytes();
  auto bounded = Evaluate(e);
  const uint64_t eval_peak = PeakResidentBytes();
  ASSERT_THAT(bounded.status(), IsOk());
  if (kPlainRss) EXPECT_LE(Growth(eval_peak, eval_before), o.model.dram_budget_bytes + (4 << 20));
  EXPECT_EQ(bounded->tokens, full->tokens);
  EXPECT_NEAR(bounded->ppl_dense, full->ppl_dense, 1e-3 * full->ppl_dense);
  EXPECT_NEAR(bounded->greedy_agreement, full->greedy_agreement, 0.02);
  EXPECT_NEAR(bounded->computed_fraction, full->computed_fraction, 0.01);
}

INSTANTIATE_TEST_SUITE_P(Methods, PredictorWithinBudget, ::testing::Values("svd", "trained"));

// stories260K with an svd predictor, built once per process. A failure here
// fails every test that uses it (a suite-level setup failure would only
// skip them).
class Stories260KPredictor : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_THAT(Built(), IsOk()); }
  static const Status& Built() {
    static Status* status = [] {
      ConvertOptions c{testing::Stories260KBin(), testing::Stories260KTokenizer(), Dir(), {}};
      Status st = ConvertLlama2c(c);
      if (st.ok()) {
        BuildPredictorOptions o;
        o.model_dir = Dir();
        o.self_generate = 3000;  // calibration the model samples itself
        o.train.method = "svd";
        o.train.activation_sparsity = 0.45f;
        st = BuildPredictor(o).status();
      }
      return new Status(st);
    }();
    return *status;
  }
  static std::string Dir() {
    static testing::TempDir* dir = new testing::TempDir();
    return dir->File("m");
  }
};

TEST_F(Stories260KPredictor, AgreesWithDenseOnHeldOutTextWhileComputingLess) {
  EvalOptions e;
  e.model_dir = Dir();
  e.text = testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/heldout_stories.txt");
  auto r = Evaluate(e);
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_GT(r->tokens, 1000);
  EXPECT_GE(r->greedy_agreement, 0.90);
  EXPECT_LE(r->computed_fraction, 0.60);
  EXPECT_LT(r->ppl_sparse, r->ppl_dense * 1.05);
  ASSERT_EQ(r->windows.size(), 8u);
  for (size_t k = 1; k < r->windows.size(); ++k) {  // a wider window reads less, holds more
    EXPECT_LT(r->windows[k].bytes_read_per_token, r->windows[k - 1].bytes_read_per_token);
    EXPECT_GT(r->windows[k].resident_fraction, r->windows[k - 1].resident_fraction);
  }
}

// The curve: each point cuts every layer where the dense run's scores put
// the asked-for share of neurons, so it computes about that share; fewer
// neurons agree less and score worse; the stored point is as without a sweep.
TEST_F(Stories260KPredictor, CurveTradesNeuronsForAgreement) {
  EvalOptions e;
  e.model_dir = Dir();
  e.text = testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/heldout_stories.txt");
  e.max_tokens = 400;
  auto plain = Evaluate(e);
  ASSERT_THAT(plain.status(), IsOk());
  EXPECT_TRUE(plain->curve.empty());
  e.fractions = {0.7, 0.4, 0.15};
  auto r = Evaluate(e);
  ASSERT_THAT(r.status(), IsOk());
  ASSERT_EQ(r->curve.size(), 3u);
  for (size_t i = 0; i < r->curve.size(); ++i) {
    const CurvePoint& p = r->curve[i];
    EXPECT_EQ(p.target_fraction, e.fractions[i]);
    EXPECT_NEAR(p.computed_fraction, p.target_fraction, 0.03);
    ASSERT_EQ(p.windows.size(), 8u);
    if (i == 0) continue;
    EXPECT_LT(p.greedy_agreement, r->curve[i - 1].greedy_agreement);
    EXPECT_GT(p.ppl_sparse, r->curve[i - 1].ppl_sparse);
    EXPECT_LT(p.windows[0].bytes_read_per_token, r->curve[i - 1].windows[0].bytes_read_per_token);
  }
  // The stored point is the stored thresholds' run, sweep or not.
  EXPECT_EQ(r->greedy_agreement, plain->greedy_agreement);
  EXPECT_EQ(r->computed_fraction, plain->computed_fraction);
  EXPECT_EQ(r->ppl_sparse, plain->ppl_sparse);
  e.fractions = {1.5};
  EXPECT_THAT(Evaluate(e).status(), testing::StatusIs(StatusCode::kInvalidArgument, ::testing::HasSubstr("(0, 1]")));
}

TEST_F(Stories260KPredictor, GenerationReadsFewerBytesThanDense) {
  auto whole = ModelWeightBytes(Dir());
  ASSERT_THAT(whole.status(), IsOk());
  // Resident weights and predictors fit; the FFN does not.
  auto model = Model::Open(Dir(), {.dram_budget_bytes = *whole * 8 / 5, .max_context = 128});
  ASSERT_THAT(model.status(), IsOk());
  EXPECT_TRUE((*model)->info().has_predictor);
  auto bytes = [&](bool predictor) {
    auto s = (*model)->NewSession({.use_predictor = predictor, .lookahead = Lookahead::kOff});
    EXPECT_THAT((*s)->Generate("Once upon a time", {.max_tokens = 40}, nullptr), IsOk());
    uint64_t total = 0;
    for (const TokenStats& t : (*s)->stats().tokens) total += t.bytes_read;
    return total;
  };
  uint64_t dense = bytes(false), sparse = bytes(true);
  EXPECT_LT(sparse * 4, dense * 3) << "sparse " << sparse << " dense " << dense;
}

TEST_F(Stories260KPredictor, VerifyCoversThePredictorFile) {
  EXPECT_THAT(VerifyModel(Dir()), IsOk());
}

}  // namespace
}  // namespace llmflash

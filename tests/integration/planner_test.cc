// The planner's a-priori figures against a measured run: a synthetic model
// with a trained predictor, a budget that holds part of each layer, the
// benchmark's text teacher-forced. Bytes and neurons, not milliseconds: the
// cost model is tested against what a run does, not against its own formula.
#include <gtest/gtest.h>

#include "llmflash/llmflash.h"
#include "runtime/predictor_builder.h"
#include "testing/test_util.h"
#include "testing/tiny_model.h"

namespace llmflash {
namespace {

using testing::IsOk;

TEST(Planner, APrioriReadsAndComputeMatchAMeasuredRun) {
  testing::TempDir tmp;
  SynthOptions s;
  s.arch = "opt";
  s.preset = "tiny";
  s.activation_sparsity = 0.9;
  ASSERT_THAT(testing::WriteSyntheticModel(tmp.File("m"), s, "f16"), IsOk());
  BuildPredictorOptions b;
  b.model_dir = tmp.File("m");
  b.calibration_text = testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/../bench/corpus/calibration.txt");
  b.train.method = "trained";
  b.train.target_recall = 0.98f;
  ASSERT_THAT(BuildPredictor(b).status(), IsOk());

  // A third of each layer's rows: the matrix cannot keep every recent neuron.
  uint64_t budget = 64 << 10;
  ModelOptions o;
  o.max_context = 256;
  o.window = 4;
  o.prefill_batch = 1;  // a decode run: every byte above the state to neurons, as the loop counts them
  for (;; budget += budget / 64) {  // fine steps: the tokenizer is a fixed part of the budget
    o.dram_budget_bytes = budget;
    auto m = Model::Open(tmp.File("m"), o);
    if (m.ok() && (*m)->info().neuron_capacity * 3 >= (*m)->info().ffn_dim) break;
    ASSERT_LT(budget, 64ull << 20);
  }
  auto model = Model::Open(tmp.File("m"), o);
  ASSERT_THAT(model.status(), IsOk());
  const ModelInfo& info = (*model)->info();
  ASSERT_TRUE(info.has_predictor);
  ASSERT_LT(info.neuron_capacity, info.ffn_dim / 2);

  auto text = testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/../bench/corpus/workload.txt");
  auto ids = (*model)->Encode(text, true);
  ASSERT_THAT(ids.status(), IsOk());
  ASSERT_GE(ids->size(), 250u);
  ids->resize(250);
  auto session = (*model)->NewSession({.lookahead = Lookahead::kOff});
  ASSERT_THAT((*session)->Run(*ids, nullptr), IsOk());
  double bytes = 0, computed = 0;
  const auto& tokens = (*session)->stats().tokens;
  const size_t warmup = 20;
  for (size_t t = warmup; t < tokens.size(); ++t) {
    bytes += tokens[t].bytes_read;
    computed += tokens[t].neurons_computed;
  }
  bytes /= tokens.size() - warmup;
  computed /= tokens.size() - warmup;
  EXPECT_GT(bytes, 0.0);
  EXPECT_GT(info.planned_bytes_per_token, bytes / 2) << "measured " << bytes;
  EXPECT_LT(info.planned_bytes_per_token, bytes * 2) << "measured " << bytes;
  EXPECT_GT(info.planned_reads_per_token, 0.0);
  // Sparse: the predictor keeps the computed neurons well below the layer.
  EXPECT_GT(computed, 0.0);
  EXPECT_LT(computed, info.ffn_dim * info.n_layers * 0.6);
}

}  // namespace
}  // namespace llmflash

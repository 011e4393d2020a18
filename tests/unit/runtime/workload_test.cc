// The workload's statistics against direct counts, and the oracle's reads
// against a brute-force search over every eviction choice.
#include "runtime/workload.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <functional>
#include <limits>
#include <map>
#include <random>

#include "llmflash/llmflash.h"
#include "runtime/calibration.h"
#include "testing/test_util.h"
#include "testing/tiny_model.h"

namespace llmflash {
namespace {

using testing::IsOk;

NeuronSets RandomSets(int tokens, int layers, int n, double p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution on(p);
  NeuronSets s(tokens, std::vector<std::vector<int32_t>>(layers));
  for (auto& token : s) {
    for (auto& layer : token) {
      for (int i = 0; i < n; ++i) {
        if (on(rng)) layer.push_back(i);
      }
    }
  }
  return s;
}

uint32_t Mask(const std::vector<int32_t>& ids) {
  uint32_t m = 0;
  for (int32_t id : ids) m |= 1u << id;
  return m;
}

// The fewest reads over tokens >= skip: every cache content reachable after
// each token (any subset of what was resident plus what the token used, of
// at most `cap` neurons), by dynamic programming over bitmasks.
double BruteForceReads(const NeuronSets& sets, int layer, int cap, int skip) {
  std::map<uint32_t, double> states = {{0u, 0.0}};
  for (size_t t = 0; t < sets.size(); ++t) {
    const uint32_t need = Mask(sets[t][layer]);
    std::map<uint32_t, double> next;
    for (const auto& [have, cost] : states) {
      const double c = cost + (static_cast<int>(t) >= skip ? std::popcount(need & ~have) : 0);
      const uint32_t pool = have | need;
      for (uint32_t sub = pool;; sub = (sub - 1) & pool) {  // every subset of pool
        if (std::popcount(sub) <= cap) {
          auto it = next.find(sub);
          if (it == next.end() || c < it->second) next[sub] = c;
        }
        if (sub == 0) break;
      }
    }
    states.swap(next);
  }
  double best = std::numeric_limits<double>::max();
  for (const auto& [s, c] : states) best = std::min(best, c);
  return best;
}

TEST(Oracle, MatchesBruteForceOnSmallTraces) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const int n = 9, tokens = 7, cap = 1 + static_cast<int>(seed % 5), skip = static_cast<int>(seed % 3);
    NeuronSets s = RandomSets(tokens, 1, n, 0.35, seed);
    const double want = BruteForceReads(s, 0, cap, skip);
    EXPECT_DOUBLE_EQ(OracleReadsPerToken(s, 1, {cap}, skip) * (tokens - skip), want)
        << "seed " << seed << " capacity " << cap;
  }
}

TEST(Oracle, ColdStartAndUnlimitedRows) {
  // With room for everything, each neuron is read once: at its first use.
  NeuronSets s = {{{0, 1}}, {{1, 2}}, {{0, 2, 3}}};
  EXPECT_DOUBLE_EQ(OracleReadsPerToken(s, 1, {100}, 0), 4.0 / 3);
  // One row: 6 is streamed past it and 5 stays for its next use.
  EXPECT_DOUBLE_EQ(OracleReadsPerToken({{{5}}, {{5}}, {{6}}, {{5}}}, 1, {1}, 0), 2.0 / 4);
  // Reads before `skip` are free: the row should hold, when counting starts,
  // what is used first after it (6), not what is used next (5).
  EXPECT_DOUBLE_EQ(OracleReadsPerToken({{{6}}, {{5}}, {{5}}, {{6}}}, 1, {1}, 3), 0.0);
}

TEST(WorkloadStats, MatchDirectCounts) {
  const int T = 12, L = 2, n = 20, k = 3, skip = 2;
  ActivationTrace trace;
  trace.n_layers = L;
  trace.ffn_dim = n;
  trace.active = RandomSets(T, L, n, 0.3, 7);
  trace.predicted = RandomSets(T, L, n, 0.4, 8);
  WorkloadStats w = SummarizeTrace(trace, k, skip);
  double active = 0, fresh = 0, covered = 0, overlap = 0, size = 0, tp = 0, guessed = 0;
  for (int t = skip; t < T; ++t) {
    for (int l = 0; l < L; ++l) {
      const auto& a = trace.active[t][l];
      const auto& p = trace.predicted[t][l];
      active += a.size();
      std::vector<bool> seen(n), window(n);
      for (int u = std::max(0, t - k); u < t; ++u) for (int id : trace.active[u][l]) seen[id] = true;
      for (int u = std::max(0, t - k + 1); u <= t; ++u) for (int id : trace.active[u][l]) window[id] = true;
      for (int id : a) {
        fresh += !seen[id];
        overlap += std::count(trace.active[t - 1][l].begin(), trace.active[t - 1][l].end(), id);
        tp += std::count(p.begin(), p.end(), id);
      }
      covered += std::count(window.begin(), window.end(), true);
      size += a.size();
      guessed += p.size();
    }
  }
  const double per = double(T - skip) * L * n;
  EXPECT_EQ(w.tokens, T - skip);
  EXPECT_NEAR(w.active_fraction, active / per, 1e-12);
  EXPECT_NEAR(w.new_fraction, fresh / per, 1e-12);
  EXPECT_NEAR(w.window_coverage, covered / per, 1e-12);
  EXPECT_NEAR(w.consecutive_overlap, overlap / size, 1e-12);
  EXPECT_NEAR(w.predictor_recall, tp / size, 1e-12);
  EXPECT_NEAR(w.predictor_precision, tp / guessed, 1e-12);
  EXPECT_NEAR(w.predicted_fraction, guessed / per, 1e-12);
}

// A mixture of experts' trace: whole experts, k per token. Routed-per-token
// and the popularity of the top tenth against a direct count.
TEST(WorkloadStats, ExpertsMatchDirectCounts) {
  const int T = 30, L = 2, E = 20, f = 3, k = 4, skip = 5;
  std::mt19937_64 rng(5);
  ActivationTrace trace;
  trace.n_layers = L;
  trace.ffn_dim = E * f;
  trace.expert_dim = f;
  std::vector<std::vector<int>> uses(L, std::vector<int>(E, 0));
  for (int t = 0; t < T; ++t) {
    trace.active.emplace_back(L);
    for (int l = 0; l < L; ++l) {
      std::vector<int> experts;
      while (static_cast<int>(experts.size()) < k) {
        // Skewed: low ids far more often.
        const int e = std::min<int>(E - 1, static_cast<int>(std::exponential_distribution<>(0.3)(rng)));
        if (std::find(experts.begin(), experts.end(), e) == experts.end()) experts.push_back(e);
      }
      std::sort(experts.begin(), experts.end());
      for (int e : experts) {
        for (int i = 0; i < f; ++i) trace.active[t][l].push_back(e * f + i);
        if (t >= skip) ++uses[l][e];
      }
    }
  }
  WorkloadStats w = SummarizeTrace(trace, 2, skip);
  EXPECT_DOUBLE_EQ(w.experts_per_token, k);
  double share = 0;
  for (auto& u : uses) {
    std::sort(u.begin(), u.end(), std::greater<int>());
    share += static_cast<double>(u[0] + u[1]) / ((T - skip) * k) / L;  // the top tenth of 20: 2 experts
  }
  EXPECT_NEAR(w.expert_top_tenth_share, share, 1e-12);
  EXPECT_GT(w.expert_top_tenth_share, 0.1 * 1.5) << "skewed routing";
  EXPECT_NEAR(w.active_fraction, static_cast<double>(k) / E, 1e-12);
}

// A tiny mixture of experts' trace: each token's sets are exactly k whole
// experts per layer.
TEST(TraceActivations, MixtureOfExpertsGivesWholeRoutedExperts) {
  testing::TempDir tmp;
  SynthOptions s{.arch = "qwen3-moe", .preset = "tiny", .output = tmp.File("m"), .format = "llmflash"};
  ASSERT_THAT(Synthesize(s), IsOk());
  auto model = Model::Open(tmp.File("m"), {});
  ASSERT_THAT(model.status(), IsOk());
  const ModelInfo& i = (*model)->info();
  const int f = i.ffn_dim / i.n_experts;
  auto trace = TraceActivations(model->get(), {1, 40, 41, 42, 43, 44, 45, 46});
  ASSERT_THAT(trace.status(), IsOk());
  EXPECT_EQ(trace->expert_dim, f);
  ASSERT_EQ(trace->active.size(), 8u);
  for (const auto& token : trace->active) {
    for (const auto& layer : token) {
      ASSERT_EQ(static_cast<int>(layer.size()), i.n_experts_used * f);
      for (size_t j = 0; j < layer.size(); j += f) {
        EXPECT_EQ(layer[j] % f, 0);
        EXPECT_EQ(layer[j + f - 1], layer[j] + f - 1);  // the whole expert
      }
    }
  }
}

// The trace of a real (tiny) model: its active sets are what a dense
// session computes, whatever the budget streams, and they change with the
// token.
TEST(TraceActivations, TinyModelAtTwoBudgetsGivesTheSameSets) {
  testing::TempDir tmp;
  testing::TinyModelSpec spec;
  spec.ffn_dim = 96;
  ASSERT_THAT(testing::WriteTinyModel(tmp.File("m"), spec), IsOk());
  std::vector<TokenId> tokens = {1, 5, 9, 13, 17, 21, 25, 29};
  std::vector<NeuronSets> traces;
  // The smallest budget that opens (one row per layer), plus a quarter of
  // the FFN's rows: every layer is streamed.
  uint64_t streaming_budget = 64 << 10;
  while (!Model::Open(tmp.File("m"), {.dram_budget_bytes = streaming_budget}).ok()) {
    streaming_budget += streaming_budget / 64;  // fine steps: the tokenizer is a fixed part of the budget
  }
  {
    auto full = Model::Open(tmp.File("m"), {});
    ASSERT_THAT(full.status(), IsOk());
    const ModelInfo& i = (*full)->info();
    streaming_budget += static_cast<uint64_t>(i.ffn_dim) * i.n_layers * i.record_bytes / 4;
  }
  for (uint64_t budget : {uint64_t{0}, uint64_t{1}}) {
    ModelOptions o;
    o.dram_budget_bytes = budget ? streaming_budget : 0;
    auto model = Model::Open(tmp.File("m"), o);
    ASSERT_THAT(model.status(), IsOk());
    if (budget) {
      ASSERT_TRUE((*model)->info().streams_layers)
          << "budget " << o.dram_budget_bytes << " capacity " << (*model)->info().neuron_capacity;
    }
    auto trace = TraceActivations(model->get(), tokens);
    ASSERT_THAT(trace.status(), IsOk());
    ASSERT_EQ(trace->active.size(), tokens.size());
    traces.push_back(trace->active);
  }
  EXPECT_EQ(traces[0], traces[1]);
  // A direct count: the dense activations h the calibration recorder keeps,
  // nonzero where ReLU let a neuron through.
  auto analysis = OpenForAnalysis(tmp.File("m"), 1);
  ASSERT_THAT(analysis.status(), IsOk());
  auto rec = ActivationRecorder::Create(tmp.File("spill"), spec.n_layers, spec.dim, spec.ffn_dim,
                                       static_cast<int64_t>(tokens.size()));
  ASSERT_THAT(rec.status(), IsOk());
  {
    auto s = (*analysis)->NewSession({.use_predictor = false});
    ASSERT_THAT(s.status(), IsOk());
    auto* session = static_cast<SessionImpl*>(s->get());
    session->state()->ffn.set_observer(rec->get());
    ASSERT_THAT(session->Run(tokens, nullptr), IsOk());
    session->state()->ffn.set_observer(nullptr);
  }
  ASSERT_THAT((*rec)->Finish(), IsOk());
  ASSERT_EQ((*rec)->tokens(), static_cast<int64_t>(tokens.size()));
  for (int l = 0; l < spec.n_layers; ++l) {
    auto samples = (*rec)->ReadLayer(l);
    ASSERT_THAT(samples.status(), IsOk());
    for (size_t t = 0; t < tokens.size(); ++t) {
      std::vector<int32_t> nonzero;
      for (int i = 0; i < spec.ffn_dim; ++i) {
        if (samples->h[t * spec.ffn_dim + i] != 0.0f) nonzero.push_back(i);
      }
      EXPECT_EQ(traces[0][t][l], nonzero) << "token " << t << " layer " << l;
    }
  }
  size_t active = 0;
  for (const auto& token : traces[0]) {
    for (const auto& layer : token) {
      EXPECT_TRUE(std::is_sorted(layer.begin(), layer.end()));
      active += layer.size();
    }
  }
  EXPECT_GT(active, 0u);
  EXPECT_LT(active, tokens.size() * 2 * 96);
  EXPECT_NE(traces[0][1], traces[0][2]);
}

}  // namespace
}  // namespace llmflash

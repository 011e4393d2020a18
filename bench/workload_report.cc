// The bench's workload, its statistics and the oracle floor.
#include "bench/workload_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace llmflash::tools {

StatusOr<BenchWorkload> MakeWorkload(const Model& model, const std::string& text,
                                     const std::string& source, int warmup, int tokens) {
  auto ids = model.Encode(text, true);
  if (!ids.ok()) return ids.status();
  const size_t want = static_cast<size_t>(warmup) + tokens;
  if (ids->size() < want) {
    return Status::InvalidArgument(source + " gives " + std::to_string(ids->size()) +
                                   " tokens (with BOS); the run needs " + std::to_string(want) +
                                   " (--warmup " + std::to_string(warmup) + " + --tokens " +
                                   std::to_string(tokens) + ")");
  }
  BenchWorkload w;
  w.source = source;
  w.tokens.assign(ids->begin(), ids->begin() + want);
  w.warmup = warmup;
  w.distinct = static_cast<int>(std::set<TokenId>(w.tokens.begin() + warmup, w.tokens.end()).size());
  for (size_t i = warmup; i < w.tokens.size() && i < static_cast<size_t>(warmup) + 24; ++i) {
    w.sample += model.Decode(i > 0 ? w.tokens[i - 1] : -1, w.tokens[i]);
  }
  std::replace(w.sample.begin(), w.sample.end(), '\n', ' ');
  return w;
}

OracleFloor ComputeOracleFloor(const ActivationTrace& trace, const ModelInfo& info,
                               const DeviceProfile& best, int warmup, int queue_depth) {
  OracleFloor f;
  f.reads_per_token = OracleReadsPerToken(trace.active, trace.n_layers, info.layer_neuron_capacity, warmup);
  f.io_bytes_per_token = f.reads_per_token * info.record_bytes;
  // A neuron is a record read on its own; an expert is a run of records,
  // read in requests of up to 1 MiB.
  const double read_size = info.n_experts > 0
                               ? std::min(1048576.0, static_cast<double>(info.ffn_dim / info.n_experts) * info.record_bytes)
                               : static_cast<double>(info.record_bytes);
  const double rate = best.ReadThroughput(read_size, queue_depth);
  f.read_size = read_size;
  f.read_rate = rate;
  f.io_ms = rate > 0 ? 1e3 * f.io_bytes_per_token / rate : 0;
  const WorkloadStats s = SummarizeTrace(trace, 1, warmup);
  const double active = s.active_fraction * trace.ffn_dim * trace.n_layers;  // neurons per token
  f.weight_bytes_per_token = info.weight_bytes_per_token + active * info.record_bytes;
  f.compute_ms = 1e3 * f.weight_bytes_per_token / DramReadBytesPerSecond(best);
  f.ms = std::max(f.io_ms, f.compute_ms);
  return f;
}

nlohmann::json ReportWorkload(const BenchWorkload& w, const ActivationTrace& trace,
                              const ModelInfo& info, double trace_seconds) {
  const int k = std::max(1, info.window);
  const WorkloadStats s = SummarizeTrace(trace, k, w.warmup);
  const WorkloadStats s5 = SummarizeTrace(trace, 5, w.warmup);
  const bool pred = !trace.predicted.empty();
  std::printf("workload: %zu tokens of %s teacher-forced (%d warm-up, %d timed, %d distinct): \"%s...\"\n",
              w.tokens.size(), w.source.c_str(), w.warmup, s.tokens, w.distinct, w.sample.c_str());
  std::printf("measured on a dense pass over the same tokens (%.1f s, outside the timed runs):\n\n",
              trace_seconds);
  std::printf("| per token, %% of FFN neurons             | this run (k = %d) | k = 5   | OPT-6.7B (paper) |\n", k);
  std::printf("|-----------------------------------------|------------------|---------|------------------|\n");
  std::printf("| truly active                            | %15.2f%% | %6.2f%% | ~3%% (97%% inactive) |\n",
              100 * s.active_fraction, 100 * s5.active_fraction);
  std::printf("| new: active, unused by the k before     | %15.2f%% | %6.2f%% | 2.4%% (k = 5)      |\n",
              100 * s.new_fraction, 100 * s5.new_fraction);
  std::printf("| window: union of the last k active sets | %15.2f%% | %6.2f%% | ~24%% (k = 5)      |\n",
              100 * s.window_coverage, 100 * s5.window_coverage);
  if (pred) {
    std::printf("| predicted                               | %15.2f%% | %6.2f%% |                  |\n",
                100 * s.predicted_fraction, 100 * s5.predicted_fraction);
    std::printf("| new among the predicted                 | %15.2f%% | %6.2f%% |                  |\n",
                100 * s.predicted_new_fraction, 100 * s5.predicted_new_fraction);
    std::printf("| window of the predicted sets            | %15.2f%% | %6.2f%% |                  |\n",
                100 * s.predicted_window_coverage, 100 * s5.predicted_window_coverage);
  }
  std::printf("\nconsecutive tokens share %.1f%% of their active neurons; ", 100 * s.consecutive_overlap);
  if (pred) {
    std::printf("predictor recall %.3f, precision %.3f on these tokens\n", s.predictor_recall,
                s.predictor_precision);
  } else {
    std::printf(trace.expert_dim > 0 ? "the router is the predictor (exact)\n" : "no predictor stored\n");
  }
  nlohmann::json experts = nullptr;
  if (trace.expert_dim > 0) {
    const double e = static_cast<double>(trace.ffn_dim) / trace.expert_dim;
    auto hit = [](const WorkloadStats& x) { return x.active_fraction > 0 ? 1 - x.new_fraction / x.active_fraction : 0; };
    std::printf("experts: %.2f of %.0f routed per token and layer; of them %.1f%% were routed by one of the %d tokens "
                "before (k = 5: %.1f%%; uniform, independent routing: %.1f%%); %.1f%% shared with the token before "
                "(uniform: %.1f%%); the most used tenth of each layer's experts take %.1f%% of the routings "
                "(uniform: %.1f%%)\n",
                s.experts_per_token, e, 100 * hit(s), k, 100 * hit(s5),
                100 * (1 - std::pow(1 - s.experts_per_token / e, k)), 100 * s.consecutive_overlap,
                100 * s.experts_per_token / e, 100 * s.expert_top_tenth_share, 100 * std::ceil(e / 10) / e);
    experts = {{"count", e},
               {"routed_per_token", s.experts_per_token},
               {"window_hit_rate", hit(s)},
               {"window_hit_rate_k5", hit(s5)},
               {"consecutive_overlap", s.consecutive_overlap},
               {"top_tenth_share", s.expert_top_tenth_share}};
  }
  std::printf("active per layer:");
  for (double a : s.active_fraction_per_layer) std::printf(" %.1f", 100 * a);
  std::printf(" %%\n\n");
  return {{"corpus_tokens", s.tokens},
          {"warmup_tokens", w.warmup},
          {"distinct_tokens", w.distinct},
          {"source", w.source},
          {"window", k},
          {"active_fraction_per_token", s.active_fraction},
          {"active_fraction_per_layer", s.active_fraction_per_layer},
          {"new_fraction_per_token", s.new_fraction},
          {"window_coverage", s.window_coverage},
          {"consecutive_overlap", s.consecutive_overlap},
          {"predicted_fraction_per_token", pred ? nlohmann::json(s.predicted_fraction) : nlohmann::json(nullptr)},
          {"predicted_new_fraction_per_token", pred ? nlohmann::json(s.predicted_new_fraction) : nlohmann::json(nullptr)},
          {"predictor_recall", pred ? nlohmann::json(s.predictor_recall) : nlohmann::json(nullptr)},
          {"predictor_precision", pred ? nlohmann::json(s.predictor_precision) : nlohmann::json(nullptr)},
          {"predicted_window_coverage", pred ? nlohmann::json(s.predicted_window_coverage) : nlohmann::json(nullptr)},
          {"experts", experts},
          {"k5", {{"new_fraction_per_token", s5.new_fraction}, {"window_coverage", s5.window_coverage},
                  {"predicted_new_fraction_per_token", s5.predicted_new_fraction},
                  {"predicted_window_coverage", s5.predicted_window_coverage}}}};
}

}  // namespace llmflash::tools

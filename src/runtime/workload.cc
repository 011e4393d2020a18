// Activation traces, their statistics and the oracle's reads.
#include "runtime/workload.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <unordered_map>

#include "model/flash_ffn.h"
#include "runtime/model_impl.h"
#include "runtime/session_impl.h"
#include "util/macros.h"

namespace llmflash {
namespace {

// Sees the dense FFN of every layer (possibly in several streamed parts) and
// records the true active set and the predictor's set for the current token.
class TraceProbe final : public FfnObserver {
 public:
  TraceProbe(const ModelImpl& m, ActivationTrace* trace) : m_(m), trace_(trace) {
    const ModelConfig& c = m.manifest().config;
    scores_.resize(c.ffn_dim);
    scratch_.resize(2 * std::max(1, m.has_predictor() ? m.predictors().max_rank() : 1));
    NextToken();
  }
  void NextToken() {
    trace_->active.emplace_back(trace_->n_layers);
    if (m_.has_predictor()) trace_->predicted.emplace_back(trace_->n_layers);
    scored_.assign(trace_->n_layers, false);
  }
  void DropLastToken() {  // the token opened after the last one ran
    trace_->active.pop_back();
    if (m_.has_predictor()) trace_->predicted.pop_back();
  }
  void OnFfn(int l, int64_t, const float* x, std::span<const int32_t> ids, const float* h) override {
    const Manifest& man = m_.manifest();
    const float tau = man.predictor.present ? man.predictor.layers[l].activation_threshold : 0.0f;
    std::vector<int32_t>& active = trace_->active.back()[l];
    for (size_t i = 0; i < ids.size(); ++i) {
      if (std::fabs(h[i]) > tau) active.push_back(ids[i]);
    }
    if (m_.has_predictor() && !scored_[l]) {  // every part of a layer sees the same x
      scored_[l] = true;
      const LowRankPredictor& p = m_.predictors().layer(l);
      p.Scores(x, scores_.data(), scratch_.data());
      std::vector<int32_t>& guess = trace_->predicted.back()[l];
      for (int i = 0; i < trace_->ffn_dim; ++i) {
        if (scores_[i] > p.threshold()) guess.push_back(i);
      }
    }
  }

 private:
  const ModelImpl& m_;
  ActivationTrace* trace_;
  std::vector<float> scores_, scratch_;
  std::vector<bool> scored_;
};

size_t IntersectionSize(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    if (a[i] < b[j]) {
      ++i;
    } else if (b[j] < a[i]) {
      ++j;
    } else {
      ++n, ++i, ++j;
    }
  }
  return n;
}

// Per layer: neurons of set t that none of sets t-k..t-1 holds, summed over
// tokens >= skip, and the size of the union of sets t-k+1..t.
void WindowCounts(const NeuronSets& sets, int layer, int n, int k, int skip, double* fresh,
                  double* covered) {
  std::vector<int64_t> last(n, std::numeric_limits<int64_t>::min() / 2);
  for (size_t t = 0; t < sets.size(); ++t) {
    const int64_t now = static_cast<int64_t>(t);
    for (int32_t id : sets[t][layer]) {
      if (now >= skip && last[id] < now - k) *fresh += 1;
      last[id] = now;
    }
    if (now >= skip) {
      for (int i = 0; i < n; ++i) *covered += last[i] > now - k;
    }
  }
}

// Per layer, how often each expert was routed to (an expert counts once
// per token, however many of its neurons the set holds).
void ExpertPopularity(const ActivationTrace& trace, int skip, WorkloadStats* w) {
  const int L = trace.n_layers, f = trace.expert_dim, experts = trace.ffn_dim / f;
  const int T = static_cast<int>(trace.active.size());
  const int top = std::max(1, (experts + 9) / 10);
  double share = 0, routed = 0;
  for (int l = 0; l < L; ++l) {
    std::vector<double> count(experts, 0);
    double total = 0;
    for (int t = skip; t < T; ++t) {
      int last = -1;
      for (int32_t id : trace.active[t][l]) {
        if (id / f == last) continue;
        last = id / f;
        count[last] += 1;
        total += 1;
      }
    }
    std::sort(count.begin(), count.end(), std::greater<double>());
    double top_sum = 0;
    for (int e = 0; e < top; ++e) top_sum += count[e];
    share += total > 0 ? top_sum / total / L : 0;
    routed += total;
  }
  w->expert_top_tenth_share = share;
  w->experts_per_token = T > skip ? routed / (static_cast<double>(T - skip) * L) : 0;
}

}  // namespace

StatusOr<ActivationTrace> TraceActivations(Model* model, const std::vector<TokenId>& tokens) {
  auto* impl = static_cast<ModelImpl*>(model);
  ActivationTrace trace;
  trace.n_layers = impl->manifest().config.n_layers;
  trace.ffn_dim = impl->manifest().config.ffn_dim;
  if (impl->manifest().config.moe()) trace.expert_dim = impl->manifest().config.ExpertDim();
  ASSIGN_OR_RETURN(std::unique_ptr<Session> s, impl->NewSession({.use_predictor = false}));
  auto* session = static_cast<SessionImpl*>(s.get());
  TraceProbe probe(*impl, &trace);
  session->state()->ffn.set_observer(&probe);
  Status st = session->Run(tokens, [&](int, const float*) {
    for (auto& layer : trace.active.back()) std::sort(layer.begin(), layer.end());
    probe.NextToken();
    return true;
  });
  session->state()->ffn.set_observer(nullptr);
  RETURN_IF_ERROR(st);
  probe.DropLastToken();
  return trace;
}

WorkloadStats SummarizeTrace(const ActivationTrace& trace, int window, int skip) {
  WorkloadStats w;
  const int L = trace.n_layers, n = trace.ffn_dim;
  const int T = static_cast<int>(trace.active.size());
  skip = std::clamp(skip, 0, T);
  w.tokens = T - skip;
  w.window = window;
  w.active_fraction_per_layer.assign(L, 0);
  if (w.tokens == 0 || L == 0 || n == 0) return w;
  const bool predictor = !trace.predicted.empty();
  double overlap = 0, overlap_den = 0, tp = 0, truth = 0, guessed = 0;
  for (int t = skip; t < T; ++t) {
    for (int l = 0; l < L; ++l) {
      const auto& a = trace.active[t][l];
      w.active_fraction_per_layer[l] += static_cast<double>(a.size()) / n;
      if (t > 0) {
        overlap += IntersectionSize(a, trace.active[t - 1][l]);
        overlap_den += a.size();
      }
      if (predictor) {
        const auto& p = trace.predicted[t][l];
        tp += IntersectionSize(a, p);
        truth += a.size();
        guessed += p.size();
      }
    }
  }
  for (double& f : w.active_fraction_per_layer) f /= w.tokens;
  for (double f : w.active_fraction_per_layer) w.active_fraction += f / L;
  w.consecutive_overlap = overlap_den > 0 ? overlap / overlap_den : 0;
  if (predictor) {
    w.predictor_recall = truth > 0 ? tp / truth : 1;
    w.predictor_precision = guessed > 0 ? tp / guessed : 1;
    w.predicted_fraction = guessed / (static_cast<double>(w.tokens) * L * n);
  }
  if (trace.expert_dim > 0) ExpertPopularity(trace, skip, &w);
  double fresh = 0, covered = 0, fresh_predicted = 0, covered_predicted = 0;
  for (int l = 0; l < L; ++l) {
    WindowCounts(trace.active, l, n, window, skip, &fresh, &covered);
    if (predictor) WindowCounts(trace.predicted, l, n, window, skip, &fresh_predicted, &covered_predicted);
  }
  const double per = static_cast<double>(w.tokens) * L * n;
  w.new_fraction = fresh / per;
  w.window_coverage = covered / per;
  w.predicted_new_fraction = fresh_predicted / per;
  w.predicted_window_coverage = covered_predicted / per;
  return w;
}

double OracleReadsPerToken(const NeuronSets& sets, int n_layers, const std::vector<int>& capacity,
                           int skip) {
  const int T = static_cast<int>(sets.size());
  if (T <= skip) return 0;
  constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  double reads = 0;
  for (int l = 0; l < n_layers; ++l) {
    const size_t cap = static_cast<size_t>(std::max(0, capacity[l]));
    // next[t][i]: the next token after t that uses sets[t][l][i].
    std::vector<std::vector<int64_t>> next(T);
    std::unordered_map<int32_t, int64_t> seen;
    for (int t = T - 1; t >= 0; --t) {
      const auto& a = sets[t][l];
      next[t].resize(a.size());
      for (size_t i = 0; i < a.size(); ++i) {
        auto it = seen.find(a[i]);
        next[t][i] = it == seen.end() ? kNever : it->second;
      }
      for (int32_t id : a) seen[id] = t;
    }
    // Before `skip` reads are free, so what counts is only what is resident
    // when counting starts: rank neurons by their first use from `skip` on.
    std::unordered_map<int32_t, int64_t> from_skip;
    for (int t = T - 1; t >= skip; --t) {
      for (int32_t id : sets[t][l]) from_skip[id] = t;
    }
    auto key = [&](int t, int32_t id, int64_t next_use) {
      if (t >= skip - 1) return next_use;  // from the token before skip on: the real next use
      auto it = from_skip.find(id);
      return it == from_skip.end() ? kNever : it->second;
    };
    // Resident neurons with their next use.
    std::unordered_map<int32_t, int64_t> resident;
    std::vector<std::pair<int64_t, int32_t>> candidates;
    for (int t = 0; t < T; ++t) {
      const auto& a = sets[t][l];
      size_t misses = 0;
      for (int32_t id : a) misses += resident.count(id) == 0;
      if (t >= skip) reads += misses;
      // Everything resident or just used may stay; keep the `cap` used soonest.
      for (size_t i = 0; i < a.size(); ++i) resident[a[i]] = key(t, a[i], next[t][i]);
      if (resident.size() > cap) {
        candidates.clear();
        for (const auto& [id, when] : resident) candidates.emplace_back(when, id);
        std::nth_element(candidates.begin(), candidates.begin() + cap, candidates.end());
        resident.clear();
        for (size_t i = 0; i < cap; ++i) resident[candidates[i].second] = candidates[i].first;
      }
    }
  }
  return reads / (T - skip);
}

}  // namespace llmflash

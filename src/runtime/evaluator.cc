// Teacher-forced evaluation of the predictor.
#include "runtime/evaluator.h"

#include <cmath>

#include "runtime/calibration.h"
#include "util/macros.h"

namespace llmflash {
namespace {

double LogSoftmaxAt(const float* logits, int n, int target) {
  double max = logits[0];
  for (int i = 1; i < n; ++i) max = std::max<double>(max, logits[i]);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(logits[i] - max);
  return logits[target] - max - std::log(sum);
}

int Argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) if (x[i] > x[best]) best = i;
  return best;
}

// Dense run: the true active sets and the predictor's guesses on them.
class PredictorProbe final : public FfnObserver {
 public:
  PredictorProbe(const ModelImpl& m, const Predictors* p) : m_(m), p_(p) {
    const ModelConfig& c = m.manifest().config;
    counts_.assign(c.n_layers, {});
    scores_.resize(c.ffn_dim);
    scratch_.resize(2 * (p ? std::max(1, p->max_rank()) : 1));
  }
  void OnFfn(int l, const float* x, std::span<const int32_t> ids, const float* h) override {
    const ModelConfig& c = m_.manifest().config;
    float tau = m_.manifest().predictor.present ? m_.manifest().predictor.layers[l].activation_threshold : 0;
    if (p_ != nullptr && !p_->empty()) p_->layer(l).Scores(x, scores_.data(), scratch_.data());
    Counts& k = counts_[l];
    for (size_t i = 0; i < ids.size(); ++i) {
      bool truth = std::fabs(h[i]) > tau;
      bool guess = p_ != nullptr && !p_->empty() && scores_[ids[i]] > p_->layer(l).threshold();
      k.tp += truth && guess;
      k.fp += !truth && guess;
      k.fn += truth && !guess;
      k.active += truth;
      k.total += 1;
    }
    (void)c;
  }
  struct Counts { double tp = 0, fp = 0, fn = 0, active = 0, total = 0; };
  std::vector<Counts> counts_;

 private:
  const ModelImpl& m_;
  const Predictors* p_;
  std::vector<float> scores_, scratch_;
};

// Sparse run: which neurons each token computed, per layer.
class ComputedSets final : public FfnObserver {
 public:
  explicit ComputedSets(int layers) : sets_(layers) {}
  void OnFfn(int l, const float*, std::span<const int32_t> ids, const float*) override {
    sets_[l].emplace_back(ids.begin(), ids.end());
  }
  std::vector<std::vector<std::vector<int32_t>>> sets_;  // [layer][token] ids
};

std::vector<WindowEval> SimulateWindows(const ComputedSets& s, int n, uint64_t stride, int max_k) {
  std::vector<WindowEval> out;
  const size_t layers = s.sets_.size(), tokens = layers ? s.sets_[0].size() : 0;
  for (int k = 1; k <= max_k; ++k) {
    double bytes = 0, resident = 0;
    for (size_t l = 0; l < layers; ++l) {
      std::vector<int64_t> last(n, -1000000);
      for (size_t t = 0; t < tokens; ++t) {
        for (int32_t id : s.sets_[l][t]) {
          if (last[id] <= static_cast<int64_t>(t) - k) bytes += stride;
          last[id] = t;
        }
        int in = 0;
        for (int i = 0; i < n; ++i) in += last[i] > static_cast<int64_t>(t) - k;
        resident += static_cast<double>(in) / n;
      }
    }
    out.push_back({k, tokens ? bytes / tokens : 0, tokens ? resident / (tokens * layers) : 0});
  }
  return out;
}

}  // namespace

StatusOr<EvalReport> Evaluate(const EvalOptions& o) {
  ASSIGN_OR_RETURN(std::unique_ptr<ModelImpl> model, OpenForAnalysis(o.model_dir, 1));
  const Manifest& m = model->manifest();
  const int vocab = m.config.vocab_size, context = model->info().max_context;
  ASSIGN_OR_RETURN(std::vector<int> tokens, model->Encode(o.text, true));
  if (o.max_tokens > 0 && static_cast<int>(tokens.size()) > o.max_tokens + 1) tokens.resize(o.max_tokens + 1);
  if (tokens.size() < 2) return Status::InvalidArgument("eval: the text gives fewer than 2 tokens");

  EvalReport r;
  r.has_predictor = model->has_predictor();
  std::vector<int> dense_argmax(tokens.size(), -1);
  double nll = 0;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<Session> s, model->NewSession({.use_predictor = false}));
    auto* session = static_cast<SessionImpl*>(s.get());
    PredictorProbe probe(*model, r.has_predictor ? &model->predictors() : nullptr);
    session->state()->ffn.set_observer(&probe);
    RETURN_IF_ERROR(RunTeacherForced(session, vocab, tokens, context, [&](size_t p, const float* l) {
      nll -= LogSoftmaxAt(l, vocab, tokens[p + 1]);
      dense_argmax[p] = Argmax(l, vocab);
      ++r.tokens;
    }));
    session->state()->ffn.set_observer(nullptr);
    double inactive = 0;
    for (const auto& k : probe.counts_) {
      LayerEval e;
      e.recall = k.tp + k.fn > 0 ? k.tp / (k.tp + k.fn) : 1;
      e.precision = k.tp + k.fp > 0 ? k.tp / (k.tp + k.fp) : 1;
      e.predicted_fraction = k.total > 0 ? (k.tp + k.fp) / k.total : 0;
      e.true_active_fraction = k.total > 0 ? k.active / k.total : 0;
      inactive += 1 - e.true_active_fraction;
      r.layers.push_back(e);
    }
    r.inactive_fraction = inactive / std::max<size_t>(1, probe.counts_.size());
  }
  r.ppl_dense = std::exp(nll / r.tokens);
  r.dense_bytes_per_token = static_cast<double>(m.bundle.record_stride) * m.config.ffn_dim * m.config.n_layers;
  if (!r.has_predictor) {
    r.ppl_sparse = r.ppl_dense;
    r.greedy_agreement = 1;
    return r;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Session> s,
                   model->NewSession({.use_predictor = true, .compute_window = o.compute_window}));
  auto* session = static_cast<SessionImpl*>(s.get());
  ComputedSets sets(m.config.n_layers);
  session->state()->ffn.set_observer(&sets);
  double nll_sparse = 0, agree = 0;
  RETURN_IF_ERROR(RunTeacherForced(session, vocab, tokens, context, [&](size_t p, const float* l) {
    nll_sparse -= LogSoftmaxAt(l, vocab, tokens[p + 1]);
    agree += Argmax(l, vocab) == dense_argmax[p];
  }));
  session->state()->ffn.set_observer(nullptr);
  r.ppl_sparse = std::exp(nll_sparse / r.tokens);
  r.greedy_agreement = agree / r.tokens;
  double computed = 0, passes = 0;
  for (const auto& layer : sets.sets_) {
    for (const auto& ids : layer) { computed += ids.size(); passes += 1; }
  }
  r.computed_fraction = passes > 0 ? computed / (passes * m.config.ffn_dim) : 1;
  r.windows = SimulateWindows(sets, m.config.ffn_dim, m.bundle.record_stride, o.max_window);
  return r;
}

}  // namespace llmflash

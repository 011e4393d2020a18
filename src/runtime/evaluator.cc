// Teacher-forced evaluation of the predictor.
#include "runtime/evaluator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

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
  // Keeps about `keep` of each layer's scores (a stride over tokens x
  // neurons) for the thresholds of a sweep.
  PredictorProbe(const ModelImpl& m, const Predictors* p, uint64_t tokens, uint64_t keep) : m_(m), p_(p) {
    const ModelConfig& c = m.manifest().config;
    counts_.assign(c.n_layers, {});
    sampled_.resize(c.n_layers);
    seen_.assign(c.n_layers, 0);
    stride_ = std::max<uint64_t>(1, tokens * c.ffn_dim / std::max<uint64_t>(1, keep));
    scratch_.resize(2 * (p ? std::max(1, p->max_rank()) : 1));
  }
  void OnFfn(int l, int64_t t, const float* x, std::span<const int32_t> ids, const float* h) override {
    float tau = m_.manifest().predictor.present ? m_.manifest().predictor.layers[l].activation_threshold : 0;
    const bool predict = p_ != nullptr && !p_->empty();
    std::vector<float>& scores = scores_[t];  // once per token of the layer, whatever its parts
    if (predict && scores.empty()) {
      scores.resize(m_.manifest().config.ffn_dim);
      p_->layer(l).Scores(x, scores.data(), scratch_.data());
      for (float v : scores) {
        if (seen_[l]++ % stride_ == 0) sampled_[l].push_back(v);
      }
    }
    Counts& k = counts_[l];
    for (size_t i = 0; i < ids.size(); ++i) {
      bool truth = std::fabs(h[i]) > tau;
      bool guess = predict && scores[ids[i]] > p_->layer(l).threshold();
      k.tp += truth && guess;
      k.fp += !truth && guess;
      k.fn += truth && !guess;
      k.active += truth;
      k.total += 1;
    }
  }
  void OnLayerEnd(int) override { scores_.clear(); }
  struct Counts { double tp = 0, fp = 0, fn = 0, active = 0, total = 0; };
  std::vector<Counts> counts_;
  std::vector<std::vector<float>> sampled_;  // [layer]: scores, for a sweep's thresholds

 private:
  const ModelImpl& m_;
  const Predictors* p_;
  std::map<int64_t, std::vector<float>> scores_;  // the layer's, by token
  std::vector<float> scratch_;
  std::vector<uint64_t> seen_;  // scores computed per layer
  uint64_t stride_ = 1;
};

// The threshold above which `fraction` of `scores` lie.
float CutFor(std::vector<float> scores, double fraction) {
  if (scores.empty()) return 0;
  const size_t above = std::min(scores.size(), static_cast<size_t>(std::llround(fraction * scores.size())));
  if (above == 0) return *std::max_element(scores.begin(), scores.end());
  auto nth = scores.end() - above;  // the smallest of the `above` largest
  std::nth_element(scores.begin(), nth, scores.end());
  return std::nextafter(*nth, -std::numeric_limits<float>::infinity());  // score > cut keeps it
}

// Sparse run: which neurons each token computed, per layer, and what a
// window of k = 1..max_k tokens would read and hold for them (each neuron's
// last use, updated as the tokens come: nothing kept per token).
class WindowSimulator final : public FfnObserver {
 public:
  WindowSimulator(int layers, int n, uint64_t stride, int max_k)
      : n_(n), stride_(stride), max_k_(max_k), last_(layers, std::vector<int64_t>(n, -(int64_t{1} << 40))),
        count_(layers, 0), bytes_(max_k + 1, 0.0), resident_(max_k + 1, 0.0), ages_(max_k + 1, 0) {}
  void OnFfn(int, int64_t t, const float*, std::span<const int32_t> ids, const float*) override {
    std::vector<int32_t>& set = held_[t];  // a streamed layer comes in parts
    set.insert(set.end(), ids.begin(), ids.end());
  }
  void OnLayerEnd(int l) override {
    std::vector<int64_t>& last = last_[l];
    for (const auto& [t, set] : held_) {
      const int64_t now = count_[l]++;
      for (int32_t id : set) {  // read unless one of the k tokens before used it
        const int64_t age = now - last[id];
        for (int k = 1; k <= max_k_ && k <= age; ++k) bytes_[k] += stride_;
        last[id] = now;
      }
      std::fill(ages_.begin(), ages_.end(), 0);
      for (int i = 0; i < n_; ++i) {
        const int64_t age = now - last[i];
        if (age < max_k_) ++ages_[age];
      }
      double within = 0;  // neurons used by one of the last k tokens
      for (int k = 1; k <= max_k_; ++k) {
        within += ages_[k - 1];
        resident_[k] += within / n_;
      }
      computed_ += set.size();
      ++passes_;
    }
    held_.clear();
  }
  double computed_fraction() const { return passes_ > 0 ? computed_ / (passes_ * n_) : 1; }
  std::vector<WindowEval> windows() const {
    std::vector<WindowEval> out;
    const double tokens = count_.empty() ? 0 : count_[0];
    for (int k = 1; k <= max_k_; ++k) {
      out.push_back({k, tokens > 0 ? bytes_[k] / tokens : 0,
                     tokens > 0 ? resident_[k] / (tokens * last_.size()) : 0});
    }
    return out;
  }

 private:
  const int n_;
  const uint64_t stride_;
  const int max_k_;
  std::vector<std::vector<int64_t>> last_;  // [layer][neuron]: the token that last used it
  std::vector<int64_t> count_;              // tokens seen per layer
  std::vector<double> bytes_, resident_;    // by k
  std::vector<int64_t> ages_;
  double computed_ = 0, passes_ = 0;
  std::map<int64_t, std::vector<int32_t>> held_;
};

}  // namespace

StatusOr<EvalReport> Evaluate(const EvalOptions& o) {
  ASSIGN_OR_RETURN(std::unique_ptr<ModelImpl> model, OpenForAnalysis(o.model_dir, 1, o.model));
  const Manifest& m = model->manifest();
  const int vocab = m.config.vocab_size, context = model->info().max_context;
  ASSIGN_OR_RETURN(std::vector<int> tokens, model->Encode(o.text, true));
  if (o.max_tokens > 0 && static_cast<int>(tokens.size()) > o.max_tokens + 1) tokens.resize(o.max_tokens + 1);
  if (tokens.size() < 2) return Status::InvalidArgument("eval: the text gives fewer than 2 tokens");
  for (double f : o.fractions) {
    if (!(f > 0 && f <= 1)) {
      return Status::InvalidArgument("eval: a fraction to sweep must be in (0, 1], got " + std::to_string(f));
    }
  }
  if (!o.fractions.empty() && !model->has_predictor()) {
    return Status::InvalidArgument("eval: " + o.model_dir + " has no predictor to sweep; run llmflash train-predictor");
  }

  auto say = [&](const std::string& line) { if (o.progress) o.progress(line); };
  EvalReport r;
  r.has_predictor = model->has_predictor();
  std::vector<int> dense_argmax(tokens.size(), -1);
  std::vector<std::vector<float>> sampled;
  double nll = 0;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<Session> s, model->NewSession({.use_predictor = false}));
    auto* session = static_cast<SessionImpl*>(s.get());
    PredictorProbe probe(*model, r.has_predictor ? &model->predictors() : nullptr, tokens.size(),
                         o.fractions.empty() ? 0 : 1 << 16);
    session->state()->ffn.set_observer(&probe);
    say("eval: dense pass over " + std::to_string(tokens.size() - 1) + " positions in micro-batches");
    RETURN_IF_ERROR(RunTeacherForced(session, tokens, context, Prefill::kBatch, [&](size_t p, const float* l) {
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
    sampled = std::move(probe.sampled_);
  }
  r.ppl_dense = std::exp(nll / r.tokens);
  r.dense_bytes_per_token = static_cast<double>(m.bundle.record_stride) * m.config.ffn_dim * m.config.n_layers;
  if (!r.has_predictor) {
    r.ppl_sparse = r.ppl_dense;
    r.greedy_agreement = 1;
    return r;
  }
  // The sparse run: a decode step per token, as generation runs.
  auto sparse = [&](CurvePoint* point, const std::string& what) -> Status {
    ASSIGN_OR_RETURN(std::unique_ptr<Session> s,
                     model->NewSession({.use_predictor = true, .compute_window = o.compute_window}));
    auto* session = static_cast<SessionImpl*>(s.get());
    WindowSimulator sets(m.config.n_layers, m.config.ffn_dim, m.bundle.record_stride, o.max_window);
    session->state()->ffn.set_observer(&sets);
    double nll_sparse = 0, agree = 0;
    const std::string n = std::to_string(tokens.size() - 1);
    say("eval: sparse pass, " + what + ", a decode step per position");
    Status st = RunTeacherForced(session, tokens, context, Prefill::kToken, [&](size_t p, const float* l) {
      nll_sparse -= LogSoftmaxAt(l, vocab, tokens[p + 1]);
      agree += Argmax(l, vocab) == dense_argmax[p];
      if ((p + 1) % 16 == 0) say("eval: " + std::to_string(p + 1) + " of " + n + " positions");
    });
    session->state()->ffn.set_observer(nullptr);
    RETURN_IF_ERROR(st);
    point->ppl_sparse = std::exp(nll_sparse / r.tokens);
    point->greedy_agreement = agree / r.tokens;
    point->computed_fraction = sets.computed_fraction();
    point->windows = sets.windows();
    return Status::OK();
  };
  CurvePoint stored;
  RETURN_IF_ERROR(sparse(&stored, "stored thresholds"));
  r.ppl_sparse = stored.ppl_sparse;
  r.greedy_agreement = stored.greedy_agreement;
  r.computed_fraction = stored.computed_fraction;
  r.windows = stored.windows;
  Predictors& predictors = model->mutable_predictors();
  std::vector<float> thresholds;
  for (int l = 0; l < m.config.n_layers; ++l) thresholds.push_back(predictors.layer(l).threshold());
  for (double f : o.fractions) {
    CurvePoint point;
    point.target_fraction = f;
    for (int l = 0; l < m.config.n_layers; ++l) predictors.mutable_layer(l).set_threshold(CutFor(sampled[l], f));
    Status st = sparse(&point, std::to_string(static_cast<int>(std::lround(100 * f))) + "% predicted");
    for (int l = 0; l < m.config.n_layers; ++l) predictors.mutable_layer(l).set_threshold(thresholds[l]);
    RETURN_IF_ERROR(st);
    r.curve.push_back(point);
  }
  return r;
}

}  // namespace llmflash

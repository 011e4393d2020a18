// Evaluator: the quality and I/O cost of a model's predictor, teacher-forced
// on a text: perplexity dense vs sparse, greedy agreement, per-layer recall
// and precision (on the dense trajectory), neurons computed per token, and
// for window sizes k the FFN bytes read per token and the resident fraction.
#ifndef LLMFLASH_RUNTIME_EVALUATOR_H_
#define LLMFLASH_RUNTIME_EVALUATOR_H_

#include <functional>
#include <string>
#include <vector>

#include "llmflash/options.h"
#include "llmflash/status.h"

namespace llmflash {

struct EvalOptions {
  std::string model_dir;
  std::string text;
  int max_tokens = 0;  // 0: the whole text
  int max_window = 8;
  bool compute_window = false;  // SessionOptions::compute_window for the sparse run
  // How the model is opened: its DRAM budget (0: the whole model) bounds both
  // runs. The dense run goes in micro-batches; the sparse one a decode step
  // per token, as generation runs.
  ModelOptions model;
  // Predicted fractions (0, 1] at which to run the sparse pass again, each
  // layer's threshold moved to predict that share of its neurons.
  std::vector<double> fractions;
  // One line per pass and every 16 tokens of a sparse pass (each token is a
  // decode step through the flash reads: minutes on a large model).
  std::function<void(const std::string&)> progress;
};

struct LayerEval {
  double recall = 0, precision = 0, predicted_fraction = 0, true_active_fraction = 0;
};

struct WindowEval {
  int k = 0;
  double bytes_read_per_token = 0;
  double resident_fraction = 0;
};

// The sparse run again with each layer's predictor cut where it predicts
// `target_fraction` of the neurons (on the dense run's scores): a point of
// the curve computed fraction vs quality vs reads.
struct CurvePoint {
  double target_fraction = 0;
  double computed_fraction = 0;
  double greedy_agreement = 0;
  double ppl_sparse = 0;
  std::vector<WindowEval> windows;
};

struct EvalReport {
  int tokens = 0;                 // positions scored
  bool has_predictor = false;
  double ppl_dense = 0, ppl_sparse = 0;
  double greedy_agreement = 0;    // fraction of positions with equal argmax
  double computed_fraction = 1;   // mean fraction of FFN neurons computed per token
  double inactive_fraction = 0;   // mean fraction of neurons that are not active
  double dense_bytes_per_token = 0;  // all FFN records, for scale
  std::vector<LayerEval> layers;
  std::vector<WindowEval> windows;
  std::vector<CurvePoint> curve;  // one per EvalOptions::fractions, in order
};

StatusOr<EvalReport> Evaluate(const EvalOptions& options);

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_EVALUATOR_H_

// Training one layer's predictor from calibration samples (the FFN inputs
// and the activations they produced), by one of two methods:
//
//   svd:     data-free; truncated SVDs of the gate and up matrices give the
//            "gated" form, a low-rank estimate of each neuron's activation.
//   trained: the paper's classifier, logits = B·(A·x) + bias, learned from
//            the recorded inputs: A starts as their top-r principal
//            directions and B as W·Aᵀ (the gate or up matrix restricted to
//            the subspace the inputs occupy), then both are trained with a
//            weighted binary cross-entropy that favours recall, Adam, a
//            held-out split and early stopping.
//
// Either way the decision threshold is then set on held-out rows to reach the
// target recall, and recall, precision and the predicted-active fraction are
// measured there.
//
// Thread-safety: pure functions.
#ifndef LLMFLASH_PREDICTOR_TRAINER_H_
#define LLMFLASH_PREDICTOR_TRAINER_H_

#include <functional>
#include <string>
#include <vector>

#include "format/manifest.h"
#include "llmflash/status.h"
#include "predictor/low_rank_predictor.h"

namespace llmflash {

// Row-major samples of one layer: m rows of x (dim) and h (n).
struct LayerSamples {
  std::vector<float> x;
  std::vector<float> h;
};

// The layer's FFN matrices, row-major n x dim (gate empty when ungated).
struct FfnMatrices {
  std::vector<float> gate;
  std::vector<float> up;
  std::vector<float> up_bias;  // n, or empty when the FFN has no biases
};

struct PredictorTrainOptions {
  // "svd", "trained", or "auto": both, and per layer the one that predicts
  // fewer neurons at the target recall on the held-out rows.
  std::string method = "svd";
  int rank = 128;              // capped at min(dim, n)
  float target_recall = 0.99f;
  // SiLU/GELU models: the fraction of neurons that count as inactive; the
  // magnitude threshold is the quantile of |h| that achieves it. Ignored for
  // ReLU models, where active means h != 0.
  float activation_sparsity = 0.5f;
  float holdout = 0.2f;  // fraction of rows held out
  int max_epochs = 80;
  float learning_rate = 3e-3f;
  uint64_t seed = 1;
};

// Whether `method` is one PredictorTrainOptions::method takes.
inline bool IsPredictorMethod(const std::string& method) {
  return method == "svd" || method == "trained" || method == "auto";
}

struct TrainedLayer {
  std::vector<float> data;  // the layer's arrays, in file order (docs/format.md)
  PredictorLayerInfo info;  // offset left 0; method and form say which fit it is
};

// Rank-r factors of W (n x d, row-major): W ~ B (n x r) * A (r x d), both
// row-major. Exact SVD for small W, randomized SVD for large ones.
void LowRankFactorize(const std::vector<float>& w, int n, int d, int r, std::vector<float>* a,
                      std::vector<float>* b);

StatusOr<TrainedLayer> TrainLayerPredictor(const PredictorShape& shape, const FfnMatrices& w,
                                           const LayerSamples& samples,
                                           const PredictorTrainOptions& options);

}  // namespace llmflash

#endif  // LLMFLASH_PREDICTOR_TRAINER_H_

// The workload a benchmark runs, measured rather than assumed: which FFN
// neurons each token truly activates (a dense pass over the same tokens),
// which ones the predictor picks on the same inputs, and what follows from
// that alone — active and new neurons per token at a window k, window
// coverage, token-to-token overlap, the predictor's recall and precision,
// and the oracle's reads: the fewest neuron reads any schedule could make
// with the same neuron-matrix rows, knowing every future active set
// (Belady's MIN). None of it depends on what a run chose to do.
//
// Thread-safety: TraceActivations uses one session of `model`; the rest are
// pure functions.
#ifndef LLMFLASH_RUNTIME_WORKLOAD_H_
#define LLMFLASH_RUNTIME_WORKLOAD_H_

#include <cstdint>
#include <vector>

#include "llmflash/model.h"
#include "llmflash/status.h"

namespace llmflash {

// [token][layer] -> sorted neuron ids.
using NeuronSets = std::vector<std::vector<std::vector<int32_t>>>;

struct ActivationTrace {
  int n_layers = 0;
  int ffn_dim = 0;
  int expert_dim = 0;    // a mixture of experts: neurons per expert (its active sets are whole experts); 0: dense
  NeuronSets active;     // truly active: h != 0 (ReLU) or |h| above the predictor's threshold
  NeuronSets predicted;  // the stored predictor's guess on the same input; empty without one
};

// Runs `tokens` teacher-forced through a dense session of `model` (a model
// from Model::Open) and records both sets at every token and layer.
StatusOr<ActivationTrace> TraceActivations(Model* model, const std::vector<TokenId>& tokens);

struct WorkloadStats {
  int tokens = 0;                    // tokens averaged (after `skip`)
  int window = 0;                    // k
  double active_fraction = 0;        // truly active neurons per token ÷ ffn_dim, mean over layers
  std::vector<double> active_fraction_per_layer;
  // Truly active neurons that none of the k previous tokens used, per token,
  // ÷ ffn_dim (mean over layers): what a window of k must read at best.
  double new_fraction = 0;
  double predicted_new_fraction = 0;  // the same for the predicted sets
  double predicted_window_coverage = 0;  // union of the last k predicted sets ÷ ffn_dim
  double window_coverage = 0;         // union of the active sets of the last k tokens ÷ ffn_dim
  double consecutive_overlap = 0;     // |A_t ∩ A_t-1| ÷ |A_t|
  double predictor_recall = 0, predictor_precision = 0;  // 0 without a predictor
  double predicted_fraction = 0;      // predicted neurons per token ÷ ffn_dim
  // A mixture of experts (expert_dim > 0): the experts are runs of neurons,
  // so new_fraction ÷ active_fraction is the share of routed experts the
  // window misses and consecutive_overlap the share a token shares with
  // the one before. Popularity: the share of all routings that go to the
  // most used tenth of a layer's experts (a tenth if routing were uniform),
  // mean over layers.
  double expert_top_tenth_share = 0;
  double experts_per_token = 0;       // routed experts per token and layer
};

// Statistics over the tokens from `skip` on (earlier ones still count as
// history for the window).
WorkloadStats SummarizeTrace(const ActivationTrace& trace, int window, int skip);

// Neuron reads per token (tokens from `skip` on) of the optimal offline
// schedule: layer l holds at most capacity[l] neurons between tokens, a token
// needs its active set in DRAM (streamed past the rows when larger), and
// whatever is evicted is the neuron used furthest in the future. Starts cold
// at token 0.
double OracleReadsPerToken(const NeuronSets& sets, int n_layers, const std::vector<int>& capacity,
                           int skip);

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_WORKLOAD_H_

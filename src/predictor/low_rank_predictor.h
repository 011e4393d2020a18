// LowRankPredictor: guesses which FFN neurons a token activates from the FFN
// input x, at the cost of two thin matrix-vector products (the paper's
// Section 3.1). Two forms, chosen at training time (docs/architecture.md):
//
//   "logit": score = B·(A·x) + bias                 (trained classifier)
//   "gated": a low-rank estimate of the neuron's activation, with
//            g = Bg·Ag·x and u = Bu·Au·x + b (b: the up projection's bias):
//            SiLU: |silu(g)·u| (gated) or |silu(u)| (ungated);
//            ReLU: g·|u| (gated) or u (ungated), kept signed so that
//            neurons estimated inactive still rank by how far they are.
//
// A neuron is predicted active when score > threshold.
//
// Thread-safety: immutable after Load; Predict uses caller-owned scratch.
#ifndef LLMFLASH_PREDICTOR_LOW_RANK_PREDICTOR_H_
#define LLMFLASH_PREDICTOR_LOW_RANK_PREDICTOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "format/manifest.h"
#include "kernels/typed_kernels.h"
#include "util/aligned_buffer.h"
#include "util/thread_pool.h"

namespace llmflash {

struct PredictorShape {
  std::string form;  // "logit" or "gated"
  bool gated = true;
  Activation act;  // the FFN's
  int dim = 0, n = 0, rank = 0;
};

// One layer's arrays, in file order: matrices as stored in DRAM (f32 as in
// the file, or f16), biases f32.
struct PredictorWeights {
  WeightRef a;   // logit: A [r, d]         gated: Ag [r, d] (if gated FFN)
  WeightRef b;   // logit: B [n, r]         gated: Bg [n, r]
  const float* bias = nullptr;  // logit: [n]
  WeightRef au;  // gated: Au [r, d]
  WeightRef bu;  // gated: Bu [n, r]
  const float* up_bias = nullptr;  // gated: [n] (zeros when the FFN has none)
};

// Floats one layer's arrays take in the file.
uint64_t PredictorLayerFloats(const PredictorShape& shape);

// Lays out `data` (PredictorLayerFloats long, f32 as in the file) for `shape`.
PredictorWeights MapPredictorWeights(const PredictorShape& shape, const float* data);

class LowRankPredictor {
 public:
  LowRankPredictor(PredictorShape shape, PredictorWeights w, float threshold)
      : shape_(std::move(shape)), w_(w), threshold_(threshold) {}

  // scores[n]; scratch must hold 2 * rank floats. `pool` (optional) splits
  // the products.
  void Scores(const float* x, float* scores, float* scratch, ThreadPool* pool = nullptr) const;
  // Sorted ids with score > threshold; `scores` (n) and `scratch` (2 rank) are work space.
  void Predict(const float* x, std::vector<int32_t>* active, float* scores, float* scratch,
               ThreadPool* pool = nullptr) const;

  const PredictorShape& shape() const { return shape_; }
  float threshold() const { return threshold_; }
  // Moves the cut (eval's sweep over computed fractions).
  void set_threshold(float t) { threshold_ = t; }

 private:
  PredictorShape shape_;
  PredictorWeights w_;
  float threshold_;
};

// All layers' predictors, loaded from the model directory into DRAM.
class Predictors {
 public:
  // `dtype` (f32 or f16) is how the matrices are held: f16 halves their DRAM
  // and the time to stream them; the file stays f32.
  Status Load(const Manifest& m, const std::string& dir, DType dtype = DType::kF32);
  // The DRAM Load(m, dir, dtype) allocates.
  static uint64_t MemoryBytes(const Manifest& m, DType dtype);
  bool empty() const { return layers_.empty(); }
  const LowRankPredictor& layer(int l) const { return layers_[l]; }
  LowRankPredictor& mutable_layer(int l) { return layers_[l]; }
  uint64_t bytes() const { return data_.size(); }
  int max_rank() const { return max_rank_; }

 private:
  AlignedBuffer data_;
  std::vector<LowRankPredictor> layers_;
  int max_rank_ = 0;
};

}  // namespace llmflash

#endif  // LLMFLASH_PREDICTOR_LOW_RANK_PREDICTOR_H_

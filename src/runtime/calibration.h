// Calibration: runs a model densely over tokens and records, per layer, the
// FFN inputs and the activations they produced. The raw material for
// training predictors (train-predictor) and for measuring them (eval).
//
// Thread-safety: one Recorder per session.
#ifndef LLMFLASH_RUNTIME_CALIBRATION_H_
#define LLMFLASH_RUNTIME_CALIBRATION_H_

#include <functional>
#include <string>
#include <vector>

#include "model/flash_ffn.h"
#include "predictor/trainer.h"
#include "runtime/model_impl.h"
#include "runtime/session_impl.h"

namespace llmflash {

// Records x and h (dense, in neuron order) of every FFN evaluation.
class ActivationRecorder final : public FfnObserver {
 public:
  ActivationRecorder(int n_layers, int dim, int n) : layers_(n_layers), dim_(dim), n_(n) {}
  void OnFfn(int layer, const float* x, std::span<const int32_t> ids, const float* h) override;
  std::vector<LayerSamples>& layers() { return layers_; }
  int64_t tokens() const { return layers_.empty() ? 0 : layers_[0].x.size() / dim_; }

 private:
  std::vector<LayerSamples> layers_;
  int dim_, n_;
};

// Opens `dir` with an unlimited budget for offline work (calibration, eval).
StatusOr<std::unique_ptr<ModelImpl>> OpenForAnalysis(const std::string& dir, int max_sessions);

// Runs `tokens` teacher-forced in windows of at most the context length.
// `on_logits(pos_in_tokens, logits)` sees the logits predicting tokens[pos+1].
Status RunTeacherForced(SessionImpl* session, int vocab, const std::vector<int>& tokens,
                        int context, const std::function<void(size_t, const float*)>& on_logits);

// Tokens the model samples itself: stories from BOS at temperature 1 until
// `count` tokens were seen.
StatusOr<std::vector<int>> SelfGenerate(ModelImpl* model, int count, uint64_t seed);

// Reads layer l's gate and up matrices (n x dim, row-major) from the bundle.
StatusOr<FfnMatrices> ReadFfnMatrices(const Manifest& m, const std::string& dir, int layer);

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_CALIBRATION_H_

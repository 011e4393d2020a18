// Calibration: runs a model densely over tokens and records, per layer, the
// FFN inputs and the activations they produced. The raw material for
// training predictors (train-predictor) and for measuring them (eval).
//
// Thread-safety: one Recorder per session.
#ifndef LLMFLASH_RUNTIME_CALIBRATION_H_
#define LLMFLASH_RUNTIME_CALIBRATION_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "model/flash_ffn.h"
#include "predictor/trainer.h"
#include "runtime/model_impl.h"
#include "runtime/session_impl.h"

namespace llmflash {

// Records x and h (dense, in neuron order) of every FFN evaluation of a
// calibration run, one row per token and layer, in a spill file: DRAM holds
// only the token being recorded per layer, so recording a long calibration
// text on a 7B model (x and h: 60 KiB per token and layer) stays inside the
// run's budget. A layer's samples are read back one layer at a time.
class ActivationRecorder final : public FfnObserver {
 public:
  // The file (created, or truncated) holds up to `max_tokens` tokens per
  // layer; the destructor removes it.
  static StatusOr<std::unique_ptr<ActivationRecorder>> Create(const std::string& path, int n_layers,
                                                              int dim, int n, int64_t max_tokens);
  ~ActivationRecorder() override;
  void OnFfn(int layer, int64_t t, const float* x, std::span<const int32_t> ids, const float* h) override;
  void OnLayerEnd(int layer) override;  // writes the layer's tokens, in order
  // The first error of any write, or of a layer given more than max_tokens
  // tokens or a token twice.
  Status Finish();
  // Tokens recorded for layer 0 (every layer sees the same ones).
  int64_t tokens() const { return layers_.empty() ? 0 : layers_[0].count; }
  // Layer l's samples: tokens() rows of x (dim) and h (n). After Finish.
  StatusOr<LayerSamples> ReadLayer(int layer) const;
  uint64_t file_bytes() const;

 private:
  ActivationRecorder(std::string path, int fd, int n_layers, int dim, int n, int64_t max_tokens);
  struct Layer {
    int64_t count = 0;  // tokens written
  };
  std::string path_;
  int fd_ = -1;
  int dim_, n_;
  int64_t max_tokens_;
  std::vector<Layer> layers_;
  // The layer being computed: x then h of each of its tokens (a batch), by
  // position, until OnLayerEnd writes them.
  std::map<int64_t, std::vector<float>> held_;
  Status error_;
};

// Opens `dir` for offline work (calibration, eval) with `options` (its
// budget: the default, 0, holds the whole model) and `max_sessions`.
StatusOr<std::unique_ptr<ModelImpl>> OpenForAnalysis(const std::string& dir, int max_sessions,
                                                     ModelOptions options = {});

// Runs `tokens` teacher-forced in windows of at most the context length, in
// micro-batches (each layer's rows read once per batch) or one decode step per
// token (`prefill`). `on_logits(pos_in_tokens, logits)` sees the logits
// predicting tokens[pos+1].
Status RunTeacherForced(SessionImpl* session, const std::vector<int>& tokens, int context,
                        Prefill prefill, const std::function<void(size_t, const float*)>& on_logits);

// Tokens the model samples itself: stories from BOS at temperature 1 until
// `count` tokens were seen.
// `progress` (optional) hears every 16th token: within a budget each is a
// dense decode step, reading whatever of the FFN is not resident.
StatusOr<std::vector<int>> SelfGenerate(ModelImpl* model, int count, uint64_t seed,
                                        const std::function<void(const std::string&)>& progress = nullptr);

// Reads layer l's gate and up matrices (n x dim, row-major) from the bundle.
StatusOr<FfnMatrices> ReadFfnMatrices(const Manifest& m, const std::string& dir, int layer);

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_CALIBRATION_H_

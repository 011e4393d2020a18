// Building a model's predictors: calibrate (text or self-generated tokens),
// train each layer (predictor/trainer.h), write predictor.bin and record it
// in the manifest.
#ifndef LLMFLASH_RUNTIME_PREDICTOR_BUILDER_H_
#define LLMFLASH_RUNTIME_PREDICTOR_BUILDER_H_

#include <functional>
#include <string>
#include <vector>

#include "format/manifest.h"
#include "llmflash/options.h"
#include "predictor/trainer.h"

namespace llmflash {

struct BuildPredictorOptions {
  std::string model_dir;
  std::string calibration_text;  // used when self_generate == 0
  int self_generate = 0;         // tokens the model samples itself
  PredictorTrainOptions train;
  // How the model is opened for the calibration run: its DRAM budget (0:
  // the whole model, as Model::Open) bounds the run. Recorded activations go
  // to a spill file in the model directory, and the model is closed before
  // the layers are trained one at a time.
  ModelOptions model;
  std::function<void(const std::string&)> progress;  // one line per step
};

// Returns the per-layer measurements that were stored.
StatusOr<std::vector<PredictorLayerInfo>> BuildPredictor(const BuildPredictorOptions& options);

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_PREDICTOR_BUILDER_H_

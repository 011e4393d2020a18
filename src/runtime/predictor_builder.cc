// train-predictor: calibration, per-layer training, predictor.bin, manifest.
#include "runtime/predictor_builder.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "cache/miss_curve.h"
#include "format/predictor_info.h"
#include "runtime/calibration.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash {
namespace {

constexpr char kPredictorFile[] = "predictor.bin";

constexpr char kSpillFile[] = "predictor-calibration.tmp";

StatusOr<std::vector<int>> CalibrationTokens(ModelImpl* model, const BuildPredictorOptions& o) {
  std::vector<int> tokens;
  if (o.self_generate > 0) {
    ASSIGN_OR_RETURN(tokens, SelfGenerate(model, o.self_generate, o.train.seed, o.progress));
  } else {
    ASSIGN_OR_RETURN(tokens, model->Encode(o.calibration_text, true));
  }
  if (tokens.size() < 16) {
    return Status::InvalidArgument("calibration needs at least 16 tokens, got " +
                                   std::to_string(tokens.size()));
  }
  return tokens;
}

// The dense model over the tokens in micro-batches, every FFN's x and h to
// the recorder.
Status Collect(ModelImpl* model, const std::vector<int>& tokens, ActivationRecorder* rec,
               const std::function<void(const std::string&)>& say) {
  ASSIGN_OR_RETURN(std::unique_ptr<Session> s, model->NewSession({.use_predictor = false}));
  auto* session = static_cast<SessionImpl*>(s.get());
  session->state()->ffn.set_observer(rec);
  size_t shown = 0;
  Status st = RunTeacherForced(session, tokens, model->info().max_context,
                               Prefill::kBatch, [&](size_t p, const float*) {
                                 if (p + 1 >= shown + 256 && say) {
                                   shown = p + 1;
                                   say("calibrating: " + std::to_string(p + 1) + " of " +
                                       std::to_string(tokens.size()) + " tokens");
                                 }
                               });
  session->state()->ffn.set_observer(nullptr);
  RETURN_IF_ERROR(st);
  return rec->Finish();
}

// The LRU miss curve of the sets the new predictor picks on the calibration
// tokens, in order: what the planner expects a layer to read per token.
std::vector<float> PredictedMissCurve(PredictorShape shape, const TrainedLayer& t, const LayerSamples& s) {
  shape.form = t.info.form;
  shape.rank = t.info.rank;
  LowRankPredictor p(shape, MapPredictorWeights(shape, t.data.data()), t.info.threshold);
  const int d = shape.dim, n = shape.n;
  const size_t tokens = s.x.size() / d;
  std::vector<std::vector<int32_t>> sets(tokens);
  std::vector<float> scores(n), scratch(2 * std::max(1, shape.rank));
  for (size_t i = 0; i < tokens; ++i) {
    p.Scores(s.x.data() + i * d, scores.data(), scratch.data());
    for (int k = 0; k < n; ++k) {
      if (scores[k] > p.threshold()) sets[i].push_back(k);
    }
  }
  return LruMissCurve(sets, n);
}

}  // namespace

// A new predictor replaces the old one, which is dropped from the manifest
// first: a stale or damaged predictor must not stop its own replacement, so
// the predictor section is cut out of the JSON before the rest is checked
// (a damaged section would fail the parse of the whole manifest).
static Status DropPredictor(const std::string& dir) {
  std::string path = JoinPath(dir, kManifestName);
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxManifestBytes));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("predictor")) {
    return ParseManifest(text, path).status();  // nothing to drop; a damaged manifest says so
  }
  const nlohmann::json& p = j["predictor"];
  if (p.is_object() && p.contains("file") && p["file"].is_string() && j.contains("files") && j["files"].is_array()) {
    const std::string file = p["file"].get<std::string>();
    nlohmann::json& files = j["files"];
    for (auto it = files.begin(); it != files.end();) {
      const bool drop = it->is_object() && it->contains("name") && (*it)["name"] == file;
      it = drop ? files.erase(it) : it + 1;
    }
  }
  j.erase("predictor");
  ASSIGN_OR_RETURN(Manifest m, ParseManifest(j.dump(), path));
  return WriteManifest(m, dir);
}

StatusOr<std::vector<PredictorLayerInfo>> BuildPredictor(const BuildPredictorOptions& o) {
  auto say = [&](const std::string& line) { if (o.progress) o.progress(line); };
  // Checked before anything is dropped or run: a typo must not cost the old
  // predictor or a calibration.
  if (!IsPredictorMethod(o.train.method)) {
    return Status::InvalidArgument("unknown predictor method \"" + o.train.method + "\" (svd, trained or auto)");
  }
  RETURN_IF_ERROR(DropPredictor(o.model_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<ModelImpl> model, OpenForAnalysis(o.model_dir, 1, o.model));
  Manifest m = model->manifest();
  const ModelConfig& c = m.config;
  if (c.moe()) {
    return Status::Unsupported(o.model_dir + ": a mixture-of-experts model picks its neurons with its router "
                               "(whole experts); predictors inside experts are not built yet");
  }
  ASSIGN_OR_RETURN(std::vector<int> tokens, CalibrationTokens(model.get(), o));
  ASSIGN_OR_RETURN(std::unique_ptr<ActivationRecorder> rec,
                   ActivationRecorder::Create(JoinPath(o.model_dir, kSpillFile), c.n_layers, c.dim, c.ffn_dim,
                                              static_cast<int64_t>(tokens.size())));
  say("calibrating: running the dense model over " + std::to_string(tokens.size()) + " tokens within " +
      std::to_string(model->info().budget_bytes >> 20) + " MiB (activations spilled to " + kSpillFile + ", " +
      std::to_string(rec->file_bytes() >> 20) + " MiB)");
  RETURN_IF_ERROR(Collect(model.get(), tokens, rec.get(), say));
  say("calibrating: " + std::to_string(rec->tokens()) + " tokens recorded");
  std::vector<std::vector<float>> up_bias(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    if (const float* b = model->weights().layers[l].ffn_up_bias) up_bias[l].assign(b, b + c.ffn_dim);
  }
  model.reset();  // training holds one layer at a time, not the model

  PredictorInfo info;
  info.present = true;
  info.file = kPredictorFile;
  info.method = o.train.method;
  info.activation_sparsity = c.Act().exact_zeros() ? 0.0f : o.train.activation_sparsity;
  WritableFile out;
  RETURN_IF_ERROR(out.Open(JoinPath(o.model_dir, kPredictorFile) + ".tmp"));
  for (int l = 0; l < c.n_layers; ++l) {
    ASSIGN_OR_RETURN(FfnMatrices w, ReadFfnMatrices(m, o.model_dir, l));
    w.up_bias = std::move(up_bias[l]);
    ASSIGN_OR_RETURN(LayerSamples samples, rec->ReadLayer(l));
    PredictorShape shape{"", c.ffn_gated, c.Act(), c.dim, c.ffn_dim, 0};
    ASSIGN_OR_RETURN(TrainedLayer t, TrainLayerPredictor(shape, w, samples, o.train));
    t.info.lru_misses = PredictedMissCurve(shape, t, samples);
    RETURN_IF_ERROR(out.PadTo(64));
    t.info.offset = out.size();
    RETURN_IF_ERROR(out.Append(t.data.data(), t.data.size() * sizeof(float)));
    if (l == 0) info.form = t.info.form;
    info.layers.push_back(t.info);
    char line[160];
    std::snprintf(line, sizeof(line),
                  "layer %2d: rank %d, recall %.3f, precision %.3f, predicted active %.1f%%%s", l,
                  t.info.rank, t.info.recall, t.info.precision, 100 * t.info.predicted_fraction,
                  o.train.method == "auto" ? (" (" + t.info.method + ")").c_str() : "");
    say(line);
  }
  RETURN_IF_ERROR(out.Close());
  std::string final_path = JoinPath(o.model_dir, kPredictorFile);
  if (std::rename((final_path + ".tmp").c_str(), final_path.c_str()) != 0) {
    return Status::IOError(final_path + ": rename failed");
  }
  std::erase_if(m.files, [](const FileEntry& f) { return f.name == kPredictorFile; });
  m.files.push_back({kPredictorFile, out.size(), out.crc32c()});
  m.predictor = info;
  RETURN_IF_ERROR(WriteManifest(m, o.model_dir));
  return info.layers;
}

}  // namespace llmflash

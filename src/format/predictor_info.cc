// Parsing the manifest's predictor section with range checks.
#include "format/predictor_info.h"

#include <cmath>

#include "format/json_reader.h"

namespace llmflash {

uint64_t PredictorInfo::LayerBytes(const std::string& form, bool gated, int dim, int n,
                                   int rank) {
  const uint64_t pair = static_cast<uint64_t>(rank) * dim + static_cast<uint64_t>(n) * rank;
  if (form == "logit") return (pair + n) * sizeof(float);
  return ((gated ? 2 : 1) * pair + n) * sizeof(float);  // + the up bias
}

Status ParsePredictorInfo(const nlohmann::json& j, const std::string& path, const Manifest& m,
                          PredictorInfo* out) {
  JsonReader r(j, path + ": predictor");
  PredictorInfo p;
  p.present = true;
  RETURN_IF_ERROR(r.String("file", &p.file));
  if (!m.FindFile(p.file)) return r.Bad("file", "is not listed in files");
  RETURN_IF_ERROR(r.String("method", &p.method));
  RETURN_IF_ERROR(r.String("form", &p.form));
  if (p.method != "svd" && p.method != "trained" && p.method != "auto") {
    return r.Bad("method", "must be \"svd\", \"trained\" or \"auto\"");
  }
  if (p.form != "gated" && p.form != "logit") return r.Bad("form", "must be \"gated\" or \"logit\"");
  RETURN_IF_ERROR(r.Float("activation_sparsity", &p.activation_sparsity));
  const nlohmann::json* layers;
  RETURN_IF_ERROR(r.Get("layers", &layers));
  if (!layers->is_array() || layers->size() != static_cast<size_t>(m.config.n_layers)) {
    return r.Bad("layers", "must list one entry per layer");
  }
  const int max_rank = std::min(m.config.dim, m.config.ffn_dim);
  for (const nlohmann::json& lj : *layers) {
    JsonReader lr(lj, path + ": predictor.layers[]");
    PredictorLayerInfo l;
    RETURN_IF_ERROR(lr.U64("offset", &l.offset));
    // Optional: older predictors have one method and form for all layers.
    l.method = p.method;
    l.form = p.form;
    if (lj.is_object() && lj.contains("method")) RETURN_IF_ERROR(lr.String("method", &l.method));
    if (lj.is_object() && lj.contains("form")) RETURN_IF_ERROR(lr.String("form", &l.form));
    if (l.method != "svd" && l.method != "trained") return lr.Bad("method", "must be \"svd\" or \"trained\"");
    if (l.form != "gated" && l.form != "logit") return lr.Bad("form", "must be \"gated\" or \"logit\"");
    RETURN_IF_ERROR(lr.Int("rank", 1, max_rank, &l.rank));
    RETURN_IF_ERROR(lr.Float("threshold", &l.threshold));
    RETURN_IF_ERROR(lr.Float("activation_threshold", &l.activation_threshold));
    RETURN_IF_ERROR(lr.Float("recall", &l.recall));
    RETURN_IF_ERROR(lr.Float("precision", &l.precision));
    RETURN_IF_ERROR(lr.Float("predicted_fraction", &l.predicted_fraction));
    if (!std::isfinite(l.threshold) || !std::isfinite(l.activation_threshold)) {
      return lr.Bad("threshold", "must be finite");
    }
    if (lj.contains("lru_misses")) {  // optional: absent from older predictors
      const nlohmann::json& c = lj["lru_misses"];
      if (!c.is_array() || c.size() != static_cast<size_t>(kLruMissPoints)) {
        return lr.Bad("lru_misses", "must list " + std::to_string(kLruMissPoints) + " numbers");
      }
      for (const nlohmann::json& v : c) {
        if (!v.is_number() || !(v.get<double>() >= 0 && v.get<double>() <= 1)) {
          return lr.Bad("lru_misses", "each must be a number in [0, 1]");
        }
        l.lru_misses.push_back(v.get<float>());
      }
    }
    p.layers.push_back(l);
  }
  *out = std::move(p);
  return Status::OK();
}

nlohmann::json PredictorInfoJson(const PredictorInfo& p) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : p.layers) {
    nlohmann::json lj = {{"offset", l.offset}, {"method", l.method}, {"form", l.form},
                         {"rank", l.rank}, {"threshold", l.threshold},
                         {"activation_threshold", l.activation_threshold}, {"recall", l.recall},
                         {"precision", l.precision}, {"predicted_fraction", l.predicted_fraction}};
    if (!l.lru_misses.empty()) lj["lru_misses"] = l.lru_misses;
    layers.push_back(lj);
  }
  return {{"file", p.file}, {"method", p.method}, {"form", p.form},
          {"activation_sparsity", p.activation_sparsity}, {"layers", layers}};
}

}  // namespace llmflash

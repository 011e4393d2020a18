// Low-rank predictor inference and loading.
#include "predictor/low_rank_predictor.h"

#include <fcntl.h>
#include <unistd.h>

#include <Eigen/Core>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "kernels/parallel_kernels.h"
#include "util/checked_math.h"
#include "util/file.h"
#include "util/half.h"
#include "util/macros.h"

namespace llmflash {
namespace {

PredictorShape ShapeOf(const ModelConfig& c, const PredictorLayerInfo& l) {
  return PredictorShape{l.form, c.ffn_gated, c.Act(), c.dim, c.ffn_dim, l.rank};
}

// Bytes one layer takes in DRAM: matrices in `dtype`, then the f32 bias,
// each part 64-byte aligned.
uint64_t LayerMemoryBytes(const PredictorShape& s, DType dtype) {
  const uint64_t matrices = PredictorLayerFloats(s) - s.n;
  return RoundUp(RowBytes(dtype, matrices), 64) + RoundUp(uint64_t(s.n) * 4, 64);
}

}  // namespace

uint64_t PredictorLayerFloats(const PredictorShape& s) {
  const uint64_t rd = static_cast<uint64_t>(s.rank) * s.dim, nr = static_cast<uint64_t>(s.n) * s.rank;
  if (s.form == "logit") return rd + nr + s.n;
  return (s.gated ? 2 : 1) * (rd + nr) + s.n;
}

PredictorWeights MapPredictorWeights(const PredictorShape& s, const float* p) {
  const size_t rd = static_cast<size_t>(s.rank) * s.dim, nr = static_cast<size_t>(s.n) * s.rank;
  PredictorWeights w;
  if (s.form == "logit") {
    w.a = {p, DType::kF32};
    w.b = {p + rd, DType::kF32};
    w.bias = p + rd + nr;
  } else {
    if (s.gated) {
      w.a = {p, DType::kF32};
      w.b = {p + rd, DType::kF32};
      p += rd + nr;
    }
    w.au = {p, DType::kF32};
    w.bu = {p + rd, DType::kF32};
    w.up_bias = p + rd + nr;
  }
  return w;
}

void LowRankPredictor::Scores(const float* x, float* scores, float* scratch, ThreadPool* pool) const {
  const PredictorShape& s = shape_;
  if (s.form == "logit") {
    MatVec(pool, w_.a, x, s.rank, s.dim, scratch);
    MatVec(pool, w_.b, scratch, s.n, s.rank, scores);
    for (int i = 0; i < s.n; ++i) scores[i] += w_.bias[i];
    return;
  }
  // gated: scores = up estimate, then combined with the gate estimate.
  MatVec(pool, w_.au, x, s.rank, s.dim, scratch);
  MatVec(pool, w_.bu, scratch, s.n, s.rank, scores);
  for (int i = 0; i < s.n; ++i) scores[i] += w_.up_bias[i];
  // ReLU-family scores stay signed (the estimated pre-activation less the
  // activation's threshold, times |u| when gated): clipping them at 0 would
  // tie every neuron estimated inactive, and a threshold for high recall
  // would then have to take all of them.
  const bool exact = s.act.exact_zeros();
  const float shift = s.act.kind == ActivationKind::kFatRelu ? s.act.threshold : 0.0f;
  if (!s.gated) {
    for (int i = 0; i < s.n; ++i) scores[i] = exact ? scores[i] - shift : std::fabs(s.act(scores[i]));
    return;
  }
  float* zg = scratch + s.rank;
  MatVec(pool, w_.a, x, s.rank, s.dim, zg);
  for (int i = 0; i < s.n; ++i) {
    float g = DotTyped(w_.b.At(static_cast<size_t>(i) * s.rank), w_.b.dtype, zg, s.rank);
    scores[i] = exact ? (g - shift) * std::fabs(scores[i]) : std::fabs(s.act(g) * scores[i]);
  }
}

void LowRankPredictor::Predict(const float* x, std::vector<int32_t>* active, float* scores,
                               float* scratch, ThreadPool* pool) const {
  Scores(x, scores, scratch, pool);
  active->clear();
  for (int i = 0; i < shape_.n; ++i) {
    if (scores[i] > threshold_) active->push_back(i);
  }
}

uint64_t Predictors::MemoryBytes(const Manifest& m, DType dtype) {
  if (!m.predictor.present) return 0;
  if (dtype == DType::kF32) return m.FindFile(m.predictor.file)->size;
  uint64_t total = 0;
  for (const PredictorLayerInfo& l : m.predictor.layers) {
    total += LayerMemoryBytes(ShapeOf(m.config, l), dtype);
  }
  return total;
}

Status Predictors::Load(const Manifest& m, const std::string& dir, DType dtype) {
  layers_.clear();
  if (!m.predictor.present) return Status::OK();
  const PredictorInfo& p = m.predictor;
  std::string path = JoinPath(dir, p.file);
  const FileEntry* f = m.FindFile(p.file);
  if (dtype == DType::kF32) {
    RETURN_IF_ERROR(ReadFileInto(path, f->size, &data_));
  } else if (dtype != DType::kF16) {
    return Status::InvalidArgument(path + ": predictors are held as f32 or f16");
  } else if (!data_.Allocate(MemoryBytes(m, dtype), 64)) {
    return Status::ResourceExhausted(path + ": cannot allocate the predictor");
  }
  const ModelConfig& c = m.config;
  int fd = -1;
  if (dtype != DType::kF32) {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::IOError(path + ": open failed: " + std::strerror(errno));
  }
  std::vector<float> layer;  // f16: one layer at a time, converted as it is read
  char* at = data_.data();
  Status st;
  for (const PredictorLayerInfo& l : p.layers) {
    PredictorShape s = ShapeOf(c, l);
    if (dtype == DType::kF32) {
      layers_.emplace_back(s, MapPredictorWeights(s, reinterpret_cast<const float*>(data_.data() + l.offset)),
                           l.threshold);
    } else {
      const uint64_t floats = PredictorLayerFloats(s), matrices = floats - s.n;
      layer.resize(floats);
      st = PreadExact(fd, path, l.offset, layer.data(), floats * 4);
      if (!st.ok()) break;
      auto* half = reinterpret_cast<uint16_t*>(at);
      for (uint64_t k = 0; k < matrices; ++k) half[k] = FloatToF16(layer[k]);
      auto* bias = reinterpret_cast<float*>(at + RoundUp(matrices * 2, 64));
      std::memcpy(bias, layer.data() + matrices, static_cast<size_t>(s.n) * 4);
      // The f32 layout, with the matrices re-pointed into the f16 copy.
      PredictorWeights w = MapPredictorWeights(s, layer.data());
      auto rehome = [&](WeightRef& r) {
        if (r) r = {half + (static_cast<const float*>(r.data) - layer.data()), DType::kF16};
      };
      rehome(w.a);
      rehome(w.b);
      rehome(w.au);
      rehome(w.bu);
      if (w.bias != nullptr) w.bias = bias;
      if (w.up_bias != nullptr) w.up_bias = bias;
      layers_.emplace_back(s, w, l.threshold);
      at += LayerMemoryBytes(s, dtype);
    }
    max_rank_ = std::max(max_rank_, l.rank);
  }
  if (fd >= 0) close(fd);
  if (!st.ok()) layers_.clear();
  return st;
}

}  // namespace llmflash

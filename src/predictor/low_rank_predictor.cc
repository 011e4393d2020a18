// Low-rank predictor inference and loading.
#include "predictor/low_rank_predictor.h"

#include <fcntl.h>
#include <unistd.h>

#include <Eigen/Core>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "util/file.h"
#include "util/macros.h"

namespace llmflash {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// out[rows] = W[rows x cols] * x (predictor/ sits above model/, so it keeps
// its own two-line kernels).
void MatVec(const float* w, const float* x, int rows, int cols, float* out) {
  Eigen::Map<Eigen::VectorXf>(out, rows).noalias() =
      Eigen::Map<const RowMat>(w, rows, cols) * Eigen::Map<const Eigen::VectorXf>(x, cols);
}

// Rows split over `pool` when the product is large (bit-identical to serial).
void ParallelMatVec(ThreadPool* pool, const float* w, const float* x, int rows, int cols, float* out) {
  if (pool == nullptr || pool->size() == 1 || static_cast<int64_t>(rows) * cols < (1 << 18)) {
    MatVec(w, x, rows, cols, out);
    return;
  }
  pool->ParallelFor(rows, [&](int, int begin, int end) {
    if (end > begin) MatVec(w + static_cast<size_t>(begin) * cols, x, end - begin, cols, out + begin);
  });
}

float Dot(const float* a, const float* b, int n) {
  return Eigen::Map<const Eigen::VectorXf>(a, n).dot(Eigen::Map<const Eigen::VectorXf>(b, n));
}

float Act(float v, bool relu) { return relu ? std::max(v, 0.0f) : v / (1.0f + std::exp(-v)); }


}  // namespace

PredictorWeights MapPredictorWeights(const PredictorShape& s, const float* p) {
  const size_t rd = static_cast<size_t>(s.rank) * s.dim, nr = static_cast<size_t>(s.n) * s.rank;
  PredictorWeights w;
  if (s.form == "logit") {
    w.a = p;
    w.b = p + rd;
    w.bias = p + rd + nr;
  } else {
    if (s.gated) {
      w.a = p;
      w.b = p + rd;
      p += rd + nr;
    }
    w.au = p;
    w.bu = p + rd;
    w.up_bias = p + rd + nr;
  }
  return w;
}

void LowRankPredictor::Scores(const float* x, float* scores, float* scratch, ThreadPool* pool) const {
  const PredictorShape& s = shape_;
  auto MatVec = [pool](const float* w, const float* v, int rows, int cols, float* out) {
    ParallelMatVec(pool, w, v, rows, cols, out);
  };
  if (s.form == "logit") {
    MatVec(w_.a, x, s.rank, s.dim, scratch);
    MatVec(w_.b, scratch, s.n, s.rank, scores);
    for (int i = 0; i < s.n; ++i) scores[i] += w_.bias[i];
    return;
  }
  // gated: scores = up estimate, then combined with the gate estimate.
  MatVec(w_.au, x, s.rank, s.dim, scratch);
  MatVec(w_.bu, scratch, s.n, s.rank, scores);
  for (int i = 0; i < s.n; ++i) scores[i] += w_.up_bias[i];
  // ReLU scores stay signed (the estimated pre-activation, times |u| when
  // gated): clipping them at 0 would tie every neuron estimated inactive, and
  // a threshold for high recall would then have to take all of them.
  if (!s.gated) {
    if (!s.relu) {
      for (int i = 0; i < s.n; ++i) scores[i] = std::fabs(Act(scores[i], false));
    }
    return;
  }
  float* zg = scratch + s.rank;
  MatVec(w_.a, x, s.rank, s.dim, zg);
  for (int i = 0; i < s.n; ++i) {
    float g = Dot(w_.b + static_cast<size_t>(i) * s.rank, zg, s.rank);
    scores[i] = s.relu ? g * std::fabs(scores[i]) : std::fabs(Act(g, false) * scores[i]);
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

Status Predictors::Load(const Manifest& m, const std::string& dir) {
  layers_.clear();
  if (!m.predictor.present) return Status::OK();
  const PredictorInfo& p = m.predictor;
  std::string path = JoinPath(dir, p.file);
  const FileEntry* f = m.FindFile(p.file);
  RETURN_IF_ERROR(ReadFileInto(path, f->size, &data_));
  const ModelConfig& c = m.config;
  for (const PredictorLayerInfo& l : p.layers) {
    PredictorShape s{p.form, c.ffn_gated, c.activation == "relu", c.dim, c.ffn_dim, l.rank};
    auto w = MapPredictorWeights(s, reinterpret_cast<const float*>(data_.data() + l.offset));
    layers_.emplace_back(s, w, l.threshold);
    max_rank_ = std::max(max_rank_, l.rank);
  }
  return Status::OK();
}

}  // namespace llmflash

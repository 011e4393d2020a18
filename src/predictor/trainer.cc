// Predictor training: SVD initialisation, Adam on weighted BCE, thresholds.
#include "predictor/trainer.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace llmflash {
namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXf;

// W (n x d) ~ B (n x r) * A (r x d), singular values folded into A. Small
// matrices get an exact SVD; large ones (a 7B layer is 11008 x 4096, where a
// full SVD costs O(n d^2)) a randomized one: the range of W times a random
// (r + 16)-column matrix, refined by two power iterations, then the SVD of
// W projected on it (Halko, Martinsson and Tropp, 2011).
void TruncatedSvd(const std::vector<float>& w, int n, int d, int r, Mat* a, Mat* b) {
  Eigen::Map<const Mat> W(w.data(), n, d);
  const int k = std::min({r + 16, n, d});
  if (static_cast<int64_t>(n) * d <= (1 << 20) || k >= std::min(n, d)) {
    Eigen::BDCSVD<Eigen::MatrixXf> svd(W, Eigen::ComputeThinU | Eigen::ComputeThinV);
    *b = svd.matrixU().leftCols(r);
    *a = svd.singularValues().head(r).asDiagonal() * svd.matrixV().leftCols(r).transpose();
    return;
  }
  std::mt19937 rng(12345);
  std::normal_distribution<float> gauss;
  Eigen::MatrixXf omega(d, k);
  for (Eigen::Index i = 0; i < omega.size(); ++i) omega.data()[i] = gauss(rng);
  auto orthonormal = [](const Eigen::MatrixXf& y) {
    Eigen::HouseholderQR<Eigen::MatrixXf> qr(y);
    return Eigen::MatrixXf(qr.householderQ() * Eigen::MatrixXf::Identity(y.rows(), y.cols()));
  };
  Eigen::MatrixXf q = orthonormal(W * omega);                 // n x k
  for (int it = 0; it < 2; ++it) {
    Eigen::MatrixXf z = orthonormal(W.transpose() * q);        // d x k
    q = orthonormal(W * z);
  }
  Eigen::MatrixXf small = q.transpose() * W;                   // k x d
  Eigen::BDCSVD<Eigen::MatrixXf> svd(small, Eigen::ComputeThinU | Eigen::ComputeThinV);
  *b = (q * svd.matrixU()).leftCols(r);
  *a = svd.singularValues().head(r).asDiagonal() * svd.matrixV().leftCols(r).transpose();
}

// The top-r principal directions of the recorded inputs (rows of x, not
// centred: the mean direction matters as much as any), as the r x d rows of
// A, and B = W A^T: the layer's pre-activations W x restricted to the
// subspace its inputs actually occupy. Trained models' hidden states have a
// low effective rank, so this is close to W x where the weights' own SVD
// (which knows nothing of the inputs) is not (an activation-aware low-rank
// factorization, as in ASVD or SVD-LLM).
void InputSubspace(const Mat& x, const std::vector<float>& w, int n, int d, int r, Mat* a, Mat* b) {
  Eigen::BDCSVD<Eigen::MatrixXf> svd(x, Eigen::ComputeThinV);
  const int k = std::min<int>(r, static_cast<int>(svd.matrixV().cols()));
  Mat top = Mat::Zero(r, d);
  top.topRows(k) = svd.matrixV().leftCols(k).transpose();
  Eigen::Map<const Mat> W(w.data(), n, d);
  *a = top;
  *b = W * top.transpose();
}

void Append(std::vector<float>* out, const Mat& m) {
  out->insert(out->end(), m.data(), m.data() + m.size());
}

struct Split {
  Mat x_train, y_train, x_test, y_test;
};

Split MakeSplit(const Mat& x, const Mat& y, float holdout, uint64_t seed) {
  std::vector<int> idx(x.rows());
  std::iota(idx.begin(), idx.end(), 0);
  std::shuffle(idx.begin(), idx.end(), std::mt19937_64(seed));
  int test = std::max<int>(1, static_cast<int>(holdout * idx.size()));
  int train = static_cast<int>(idx.size()) - test;
  Split s{Mat(train, x.cols()), Mat(train, y.cols()), Mat(test, x.cols()), Mat(test, y.cols())};
  for (int i = 0; i < train; ++i) { s.x_train.row(i) = x.row(idx[i]); s.y_train.row(i) = y.row(idx[i]); }
  for (int i = 0; i < test; ++i) {
    s.x_test.row(i) = x.row(idx[train + i]);
    s.y_test.row(i) = y.row(idx[train + i]);
  }
  return s;
}

// The logit classifier's parameters and its Adam state.
struct Logit {
  Mat a, b;
  Vec bias;
  Mat logits(const Mat& x) const { return ((x * a.transpose()) * b.transpose()).rowwise() + bias.transpose(); }
};

// Picks the threshold reaching `target` recall on (scores, labels) and fills
// the measurements.
void ChooseThreshold(const Mat& scores, const Mat& y, float target, PredictorLayerInfo* info) {
  std::vector<float> pos;
  for (Eigen::Index i = 0; i < scores.size(); ++i) if (y.data()[i] > 0) pos.push_back(scores.data()[i]);
  if (pos.empty()) {
    info->threshold = std::numeric_limits<float>::max() / 2;
  } else {
    std::sort(pos.begin(), pos.end());
    size_t k = static_cast<size_t>(std::floor((1.0 - target) * pos.size()));
    float v = pos[std::min(k, pos.size() - 1)];
    info->threshold = std::nextafter(v, -std::numeric_limits<float>::infinity());
  }
  double tp = 0, fp = 0, fn = 0;
  for (Eigen::Index i = 0; i < scores.size(); ++i) {
    bool p = scores.data()[i] > info->threshold, t = y.data()[i] > 0;
    tp += p && t;
    fp += p && !t;
    fn += !p && t;
  }
  info->recall = tp + fn > 0 ? tp / (tp + fn) : 1;
  info->precision = tp + fp > 0 ? tp / (tp + fp) : 1;
  info->predicted_fraction = (tp + fp) / scores.size();
}

void TrainLogit(const Split& s, const PredictorTrainOptions& o, float wpos, Logit* p) {
  struct Adam {
    Mat m, v;
    void Init(Eigen::Index r, Eigen::Index c) { m = Mat::Zero(r, c); v = Mat::Zero(r, c); }
    void Step(Mat* w, const Mat& g, float lr, int t) {
      m = 0.9f * m + 0.1f * g;
      v = 0.999f * v + 0.001f * g.cwiseAbs2();
      float c1 = 1 - std::pow(0.9f, t), c2 = 1 - std::pow(0.999f, t);
      w->array() -= lr * (m.array() / c1) / ((v.array() / c2).sqrt() + 1e-8f);
    }
  } ada, adb, adbias;
  ada.Init(p->a.rows(), p->a.cols());
  adb.Init(p->b.rows(), p->b.cols());
  adbias.Init(p->bias.size(), 1);
  // Kept: the parameters that need the fewest predicted neurons to reach
  // the target recall on the held-out rows (what a token pays for), not the
  // lowest loss; the loss only gives the direction. The initialisation is a
  // candidate too, so training never makes the predictor worse.
  auto cost = [&](const Logit& q) {
    PredictorLayerInfo info;
    ChooseThreshold(q.logits(s.x_test), s.y_test, o.target_recall, &info);
    return info.predicted_fraction;
  };
  Logit best = *p;
  double best_cost = cost(*p);
  int patience = 0, step = 0;
  const int batch = 128, m = static_cast<int>(s.x_train.rows());
  std::mt19937_64 rng(o.seed);
  std::vector<int> order(m);
  std::iota(order.begin(), order.end(), 0);
  for (int epoch = 0; epoch < o.max_epochs && patience < 5; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (int start = 0; start < m; start += batch) {
      int rows = std::min(batch, m - start);
      Mat xb(rows, s.x_train.cols()), yb(rows, s.y_train.cols());
      for (int i = 0; i < rows; ++i) {
        xb.row(i) = s.x_train.row(order[start + i]);
        yb.row(i) = s.y_train.row(order[start + i]);
      }
      Mat z = xb * p->a.transpose();
      Mat l = (z * p->b.transpose()).rowwise() + p->bias.transpose();
      Mat sig = (1.0f + (-l.array()).exp()).inverse().matrix();
      // d/dl of wpos*y*softplus(-l) + (1-y)*softplus(l)
      Mat g = (sig.array() * (wpos * yb.array() + (1 - yb.array())) - wpos * yb.array()).matrix() / rows;
      Mat gb = g.transpose() * z;
      Vec gbias = g.colwise().sum().transpose();
      Mat ga = (g * p->b).transpose() * xb;
      ++step;
      ada.Step(&p->a, ga, o.learning_rate, step);
      adb.Step(&p->b, gb, o.learning_rate, step);
      Mat bias_m = p->bias;
      adbias.Step(&bias_m, gbias, o.learning_rate, step);
      p->bias = bias_m;
    }
    const double c = cost(*p);
    if (c < best_cost * (1 - 1e-3)) {
      best_cost = c;
      best = *p;
      patience = 0;
    } else {
      ++patience;
    }
  }
  *p = best;
}

}  // namespace

void LowRankFactorize(const std::vector<float>& w, int n, int d, int r, std::vector<float>* a,
                      std::vector<float>* b) {
  Mat ma, mb;
  TruncatedSvd(w, n, d, r, &ma, &mb);
  a->assign(ma.data(), ma.data() + ma.size());
  b->assign(mb.data(), mb.data() + mb.size());
}

StatusOr<TrainedLayer> TrainLayerPredictor(const PredictorShape& shape, const FfnMatrices& w,
                                           const LayerSamples& samples,
                                           const PredictorTrainOptions& o) {
  const int d = shape.dim, n = shape.n;
  const int m = static_cast<int>(samples.x.size() / d);
  if (m < 10 || samples.h.size() != static_cast<size_t>(m) * n) {
    return Status::InvalidArgument("predictor training needs at least 10 calibration tokens");
  }
  if (!IsPredictorMethod(o.method)) {
    return Status::InvalidArgument("unknown predictor method \"" + o.method + "\" (svd, trained or auto)");
  }
  const int r = std::max(1, std::min({o.rank, d, n}));
  Eigen::Map<const Mat> X(samples.x.data(), m, d), H(samples.h.data(), m, n);
  // What "active" means: h != 0 for ReLU; |h| above a quantile otherwise.
  float tau = 0;
  if (!shape.act.exact_zeros()) {
    std::vector<float> mag(samples.h.size());
    for (size_t i = 0; i < mag.size(); ++i) mag[i] = std::fabs(samples.h[i]);
    size_t k = static_cast<size_t>(o.activation_sparsity * (mag.size() - 1));
    std::nth_element(mag.begin(), mag.begin() + k, mag.end());
    tau = mag[k];
  }
  Mat Y = (H.array().abs() > tau).cast<float>().matrix();
  Split split = MakeSplit(X, Y, o.holdout, o.seed);

  const std::vector<float>& first = shape.gated ? w.gate : w.up;
  auto start = [&](const char* method, const char* form) {
    TrainedLayer out;
    out.info.method = method;
    out.info.form = form;
    out.info.activation_threshold = tau;
    out.info.rank = r;
    return out;
  };
  // svd: the gated form from the weights' own factors; only the threshold
  // comes from the samples.
  auto svd = [&]() {
    TrainedLayer out = start("svd", "gated");
    PredictorShape s = shape;
    s.form = "gated";
    s.rank = r;
    Mat a, b;
    TruncatedSvd(first, n, d, r, &a, &b);
    if (shape.gated) {
      Append(&out.data, a);
      Append(&out.data, b);
      TruncatedSvd(w.up, n, d, r, &a, &b);
    }
    Append(&out.data, a);
    Append(&out.data, b);
    if (w.up_bias.empty()) out.data.insert(out.data.end(), n, 0.0f);
    else out.data.insert(out.data.end(), w.up_bias.begin(), w.up_bias.end());
    LowRankPredictor p(s, MapPredictorWeights(s, out.data.data()), 0);
    Mat scores(split.x_test.rows(), n);
    std::vector<float> scratch(2 * r);
    Mat xt = split.x_test;
    for (Eigen::Index i = 0; i < xt.rows(); ++i) p.Scores(xt.row(i).data(), scores.row(i).data(), scratch.data());
    ChooseThreshold(scores, split.y_test, o.target_recall, &out.info);
    return out;
  };
  // trained: the paper's classifier, from the input subspace of the samples.
  auto trained = [&]() {
    TrainedLayer out = start("trained", "logit");
    Mat ia, ib;
    InputSubspace(split.x_train, first, n, d, r, &ia, &ib);
    Logit p{ia, ib, Vec::Zero(n)};
    if (!shape.gated && !w.up_bias.empty()) p.bias = Eigen::Map<const Vec>(w.up_bias.data(), n);
    double positives = split.y_train.sum();
    double negatives = static_cast<double>(split.y_train.size()) - positives;
    float wpos = positives > 0 ? static_cast<float>(std::clamp(negatives / positives, 1.0, 50.0)) : 1.0f;
    TrainLogit(split, o, wpos, &p);
    Append(&out.data, p.a);
    Append(&out.data, p.b);
    out.data.insert(out.data.end(), p.bias.data(), p.bias.data() + n);
    ChooseThreshold(p.logits(split.x_test), split.y_test, o.target_recall, &out.info);
    return out;
  };
  if (o.method == "svd") return svd();
  if (o.method == "trained") return trained();
  // auto: both, on the same held-out rows at the same target recall; the one
  // that predicts fewer neurons wins (ties, and a shortfall in recall, go to
  // the one with the higher recall).
  TrainedLayer s = svd(), t = trained();
  const PredictorLayerInfo &si = s.info, &ti = t.info;
  const bool s_short = si.recall < o.target_recall, t_short = ti.recall < o.target_recall;
  bool keep_svd = si.recall >= ti.recall;
  if (s_short != t_short) keep_svd = t_short;
  else if (si.predicted_fraction != ti.predicted_fraction) keep_svd = si.predicted_fraction < ti.predicted_fraction;
  return keep_svd ? std::move(s) : std::move(t);  // the layer's arrays, not a copy
}

}  // namespace llmflash

// Kernels on Eigen maps: Eigen vectorizes the reductions that plain loops
// cannot (without -ffast-math).
#include "kernels/kernels.h"

#include "kernels/typed_kernels.h"

#include <Eigen/Core>
#include <cmath>

namespace llmflash {

using ConstVec = Eigen::Map<const Eigen::VectorXf>;
using Vec = Eigen::Map<Eigen::VectorXf>;
using ConstMat =
    Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

void MatVec(const float* w, const float* x, int rows, int cols, float* out) {
  Vec(out, rows).noalias() = ConstMat(w, rows, cols) * ConstVec(x, cols);
}

void RmsNorm(const float* x, const float* weight, int n, float eps, float* out) {
  float ss = ConstVec(x, n).squaredNorm() / n + eps;
  float scale = 1.0f / std::sqrt(ss);
  Vec(out, n) = ConstVec(x, n).cwiseProduct(ConstVec(weight, n)) * scale;
}

void LayerNorm(const float* x, const float* weight, const float* bias, int n, float eps, float* out) {
  ConstVec v(x, n);
  float mean = v.mean();
  float var = (v.array() - mean).square().mean();
  float scale = 1.0f / std::sqrt(var + eps);
  Vec(out, n) = ((v.array() - mean) * scale * ConstVec(weight, n).array() + ConstVec(bias, n).array()).matrix();
}

void Softmax(float* x, int n) {
  Vec v(x, n);
  float max = v.maxCoeff();
  v = (v.array() - max).exp();
  v /= v.sum();
}

float Dot(const float* a, const float* b, int n) { return ConstVec(a, n).dot(ConstVec(b, n)); }

void Axpy(float a, const float* x, int n, float* y) { Vec(y, n) += a * ConstVec(x, n); }

void FfnRows(const RecordLayout& l, const char* base, uint64_t row_bytes,
             std::span<const int32_t> slots, const float* x, float* out, float* h_out,
             const float* up_bias) {
  const int d = l.dim;
  const size_t es = DTypeSize(l.dtype);
  for (size_t k = 0; k < slots.size(); ++k) {
    const int32_t s = slots[k];
    const char* row = base + static_cast<uint64_t>(s) * row_bytes;
    float u = DotTyped(row + l.up_offset * es, l.dtype, x, d) + (up_bias != nullptr ? up_bias[k] : 0.0f);
    float h;
    if (l.gate_offset >= 0) {
      float g = DotTyped(row + l.gate_offset * es, l.dtype, x, d);
      float act = l.relu ? std::max(g, 0.0f) : g / (1.0f + std::exp(-g));
      h = act * u;
    } else {
      h = l.relu ? std::max(u, 0.0f) : u / (1.0f + std::exp(-u));
    }
    if (h_out != nullptr) h_out[k] = h;
    if (h != 0.0f) AxpyTyped(h, row + l.down_offset * es, l.dtype, d, out);
  }
}

}  // namespace llmflash

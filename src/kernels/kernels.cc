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

namespace {

float NeuronValue(const RecordLayout& l, float u, float g) {
  return l.gate_offset >= 0 ? l.act(g) * u : l.act(u);
}

}  // namespace

// Rows go kRowGroup at a time through the grouped kernels (more loads in
// flight per pass); every row's dot products and every element's sum over
// rows are computed exactly as one row at a time would, so grouping changes
// nothing.
void FfnRows(const RecordLayout& l, const char* base, uint64_t row_bytes,
             std::span<const int32_t> slots, const float* x, float* out, float* h_out,
             const float* up_bias) {
  const int d = l.dim;
  const bool gated = l.gate_offset >= 0;
  // Down rows with h != 0, waiting to be added kRowGroup at a time, in order.
  float pending_h[kRowGroup];
  const void* pending_row[kRowGroup];
  int pending = 0;
  auto add = [&](float h, const char* row) {
    pending_h[pending] = h;
    pending_row[pending++] = row + l.down_offset;
    if (pending == kRowGroup) {
      AxpyRowsTyped(pending_h, pending_row, l.dtype, d, out);
      pending = 0;
    }
  };
  const size_t n = slots.size();
  // x prepared once for every row here (int8 blocks for quantized records).
  thread_local KernelInput in;
  in.Prepare(l.dtype, x, d);
  size_t k = 0;
  for (; k + kRowGroup <= n; k += kRowGroup) {
    const char* row[kRowGroup];
    const void *up[kRowGroup], *gate[kRowGroup];
    for (int j = 0; j < kRowGroup; ++j) {
      row[j] = base + static_cast<uint64_t>(slots[k + j]) * row_bytes;
      up[j] = row[j] + l.up_offset;
      gate[j] = gated ? row[j] + l.gate_offset : nullptr;
    }
    float u[kRowGroup], g[kRowGroup] = {};
    DotRowsPrepared(up, l.dtype, in, d, u);
    if (gated) DotRowsPrepared(gate, l.dtype, in, d, g);
    for (int j = 0; j < kRowGroup; ++j) {
      const float h = NeuronValue(l, u[j] + (up_bias != nullptr ? up_bias[k + j] : 0.0f), g[j]);
      if (h_out != nullptr) h_out[k + j] = h;
      if (h != 0.0f) add(h, row[j]);
    }
  }
  for (; k < n; ++k) {
    const char* row = base + static_cast<uint64_t>(slots[k]) * row_bytes;
    const float u = DotPrepared(row + l.up_offset, l.dtype, in, d) + (up_bias != nullptr ? up_bias[k] : 0.0f);
    const float g = gated ? DotPrepared(row + l.gate_offset, l.dtype, in, d) : 0.0f;
    const float h = NeuronValue(l, u, g);
    if (h_out != nullptr) h_out[k] = h;
    if (h != 0.0f) add(h, row);
  }
  for (int j = 0; j < pending; ++j) AxpyTyped(pending_h[j], pending_row[j], l.dtype, d, out);
}

}  // namespace llmflash

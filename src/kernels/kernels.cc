// Kernels on Eigen maps: Eigen vectorizes the reductions that plain loops
// cannot (without -ffast-math).
#include "kernels/kernels.h"

#include "kernels/tile_kernels.h"
#include "kernels/typed_kernels.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

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

// The records of slots[k..k + kRowGroup): each row, its up and gate rows.
void GroupRows(const RecordLayout& l, const char* base, uint64_t row_bytes, std::span<const int32_t> slots,
               size_t k, const char* row[kRowGroup], const void* up[kRowGroup], const void* gate[kRowGroup]) {
  for (int j = 0; j < kRowGroup; ++j) {
    row[j] = base + static_cast<uint64_t>(slots[k + j]) * row_bytes;
    up[j] = row[j] + l.up_offset;
    gate[j] = l.gate_offset >= 0 ? row[j] + l.gate_offset : nullptr;
  }
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
    GroupRows(l, base, row_bytes, slots, k, row, up, gate);
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

namespace {

// out[b * kPanelRows + j] = rows[j] . x_b for the rows j each tile of
// kTileInputs inputs lists (tile t: rows[list + t * kPanelRows], count[t]
// of them), 0 for the others: GemmRows' sums (stretches of kTileDepth, in
// the same order) over the pairs a mask leaves.
void MaskedProducts(DType t, const void* const rows[], const float* x, int n, int d, const int32_t* list,
                    const int32_t* count, float* out) {
  constexpr int P = kPanelRows;
  std::fill(out, out + static_cast<size_t>(n) * P, 0.0f);
  const size_t elem = RowBytes(t, 1);
  const int tiles = (n + kTileInputs - 1) / kTileInputs;
  for (int k = 0; k < d; k += kTileDepth) {
    const int depth = std::min(kTileDepth, d - k);
    for (int tile = 0; tile < tiles; ++tile) {
      const int b0 = tile * kTileInputs, nb = std::min(kTileInputs, n - b0);
      const float* xp[kTileInputs];
      for (int b = 0; b < nb; ++b) xp[b] = x + static_cast<size_t>(b0 + b) * d + k;
      const int32_t* js = list + static_cast<size_t>(tile) * P;
      for (int g = 0; g < count[tile]; g += kTileRows) {
        const int nr = std::min(kTileRows, count[tile] - g);
        const void* rp[kTileRows];
        for (int r = 0; r < nr; ++r) rp[r] = static_cast<const char*>(rows[js[g + r]]) + k * elem;
        float acc[kTileInputs * kTileRows] = {};
        DotTile(t, rp, nr, xp, nb, depth, acc, kTileRows);
        for (int b = 0; b < nb; ++b) {
          for (int r = 0; r < nr; ++r) out[static_cast<size_t>(b0 + b) * P + js[g + r]] += acc[b * kTileRows + r];
        }
      }
    }
  }
}

// MaskedProducts for quantized rows, through x prepared once per input
// (int8 blocks): whole rows per tile, so each product is the one DotPrepared
// (and so decoding) gives.
void MaskedProductsPrepared(DType t, const void* const rows[], const KernelInput* in, int n, int d,
                            const int32_t* list, const int32_t* count, float* out) {
  constexpr int P = kPanelRows;
  std::fill(out, out + static_cast<size_t>(n) * P, 0.0f);
  const int tiles = (n + kTileInputs - 1) / kTileInputs;
  for (int tile = 0; tile < tiles; ++tile) {
    const int b0 = tile * kTileInputs, nb = std::min(kTileInputs, n - b0);
    const KernelInput* ip[kTileInputs];
    for (int b = 0; b < nb; ++b) ip[b] = in + b0 + b;
    const int32_t* js = list + static_cast<size_t>(tile) * P;
    for (int g = 0; g < count[tile]; g += kTileRows) {
      const int nr = std::min(kTileRows, count[tile] - g);
      const void* rp[kTileRows];
      for (int r = 0; r < nr; ++r) rp[r] = rows[js[g + r]];
      float acc[kTileInputs * kTileRows];
      DotTilePrepared(rp, nr, t, ip, nb, d, acc, kTileRows);
      for (int b = 0; b < nb; ++b) {
        for (int r = 0; r < nr; ++r) out[static_cast<size_t>(b0 + b) * P + js[g + r]] = acc[b * kTileRows + r];
      }
    }
  }
}

// out[b * kPanelRows + j] = rows[j] . x_b for the inputs b each row j lists
// (row j's at users + j * n, count[j] of them), 0 for the others: each row
// decoded once per kTileInputs of its own inputs, so a batch computes only
// the (token, neuron) pairs its masks hold (a tile of four inputs would
// compute the union of their neurons for all four: ~3x the pairs at 14% of
// neurons per token). Each product is DotPrepared's bits.
void SelectedProductsPrepared(DType t, const void* const rows[], int m, const KernelInput* in, int n, int d,
                              const int32_t* users, const int32_t* count, float* out) {
  constexpr int P = kPanelRows;
  std::fill(out, out + static_cast<size_t>(n) * P, 0.0f);
  for (int j = 0; j < m; ++j) {
    const int32_t* bs = users + static_cast<size_t>(j) * n;
    for (int g = 0; g < count[j]; g += kTileInputs) {
      const int nb = std::min(kTileInputs, count[j] - g);
      const KernelInput* ip[kTileInputs];
      for (int b = 0; b < nb; ++b) ip[b] = in + bs[g + b];
      float acc[kTileInputs];
      DotTilePrepared(rows + j, 1, t, ip, nb, d, acc, 1);
      for (int b = 0; b < nb; ++b) out[static_cast<size_t>(bs[g + b]) * P + j] = acc[b];
    }
  }
}

// For each tile of kTileInputs of the n inputs: the rows j < m that
// uses(b, j) holds for one of its inputs b (tile t's at rows + t *
// kPanelRows, count[t] of them). Returns the number of tiles.
template <typename Uses>
int ListTileRows(int n, int m, Uses uses, std::vector<int32_t>* rows, std::vector<int32_t>* count) {
  const int tiles = (n + kTileInputs - 1) / kTileInputs;
  rows->resize(static_cast<size_t>(tiles) * kPanelRows);
  count->resize(tiles);
  for (int t = 0; t < tiles; ++t) {
    const int b0 = t * kTileInputs, nb = std::min(kTileInputs, n - b0);
    int32_t* js = rows->data() + static_cast<size_t>(t) * kPanelRows;
    int c = 0;
    for (int j = 0; j < m; ++j) {
      bool any = false;
      for (int b = b0; b < b0 + nb; ++b) any |= uses(b, j);
      if (any) js[c++] = j;
    }
    (*count)[t] = c;
  }
  return tiles;
}

// Records in panels of kPanelRows neurons: H = act(X G^T) * (X U^T)
// (masked), then out += H D. Float records: GemmRows, then AxpyTile over
// down rows widened to f32 a stretch at a time (the sums in another order).
// Quantized records: tiles of prepared products and of the row kernels'
// axpy, each the row kernels' arithmetic, so every output is FfnRows' bits.
void FfnRowsBatchPanels(const RecordLayout& l, const char* base, uint64_t row_bytes,
                        std::span<const int32_t> slots, std::span<const int32_t> ids, const float* x,
                        int n, float* out, const uint8_t* mask, int mask_stride, const float* up_bias) {
  const int d = l.dim;
  const bool gated = l.gate_offset >= 0;
  constexpr int P = kPanelRows;
  thread_local std::vector<float> hg, hu;
  thread_local std::vector<float*> ys, yk;
  thread_local std::vector<int32_t> live, live_count;  // per input tile: the down rows it adds
  thread_local std::vector<float> live_h;             // and its inputs' h for them
  thread_local std::vector<int32_t> users, user_count;  // quantized, masked: each row's inputs
  constexpr int kDownStretch = 128;  // 64 rows x 128 f32: 32 KiB, in L1
  alignas(64) static thread_local float wide_down[P * kDownStretch];
  const size_t elem = RowBytes(l.dtype, 1);  // float records
  const bool quantized = Traits(l.dtype).quantized;
  thread_local std::vector<KernelInput> inputs;  // quantized records: x as int8 blocks, once
  if (quantized) {
    if (inputs.size() < static_cast<size_t>(n)) inputs.resize(n);
    for (int b = 0; b < n; ++b) inputs[b].Prepare(l.dtype, x + static_cast<size_t>(b) * d, d);
  }
  hu.resize(static_cast<size_t>(n) * P);
  hg.resize(static_cast<size_t>(n) * P);
  ys.resize(n);
  yk.resize(n);
  for (int b = 0; b < n; ++b) ys[b] = out + static_cast<size_t>(b) * d;
  const void *up[P], *gate[P], *down[P];
  const int count = static_cast<int>(slots.size());
  for (int k0 = 0; k0 < count; k0 += P) {
    const int m = std::min(P, count - k0);
    for (int j = 0; j < m; ++j) {
      const char* row = base + static_cast<uint64_t>(slots[k0 + j]) * row_bytes;
      up[j] = row + l.up_offset;
      gate[j] = gated ? row + l.gate_offset : nullptr;
      down[j] = row + l.down_offset;
    }
    if (quantized && mask != nullptr) {
      users.resize(static_cast<size_t>(m) * n);
      user_count.assign(m, 0);
      for (int b = 0; b < n; ++b) {
        const uint8_t* mb = mask + static_cast<size_t>(b) * mask_stride;
        for (int j = 0; j < m; ++j) {
          if (mb[ids[k0 + j]] != 0) users[static_cast<size_t>(j) * n + user_count[j]++] = b;
        }
      }
      SelectedProductsPrepared(l.dtype, up, m, inputs.data(), n, d, users.data(), user_count.data(), hu.data());
      if (gated) {
        SelectedProductsPrepared(l.dtype, gate, m, inputs.data(), n, d, users.data(), user_count.data(), hg.data());
      }
    } else if (quantized) {
      // Every input uses every row: tiles of two rows per pass share each
      // input block between them (BM_FfnBatch/Q4_0: 20 against 17 G/s one
      // row at a time over the same lists).
      ListTileRows(n, m, [](int, int) { return true; }, &live, &live_count);
      MaskedProductsPrepared(l.dtype, up, inputs.data(), n, d, live.data(), live_count.data(), hu.data());
      if (gated) MaskedProductsPrepared(l.dtype, gate, inputs.data(), n, d, live.data(), live_count.data(), hg.data());
    } else if (mask == nullptr) {
      GemmRows(l.dtype, up, m, x, n, d, hu.data(), P);
      if (gated) GemmRows(l.dtype, gate, m, x, n, d, hg.data(), P);
    } else {
      // Each tile of inputs takes the products of the panel rows one of its
      // inputs uses (a token needs a tenth of the neurons its batch does).
      ListTileRows(
          n, m, [&](int b, int j) { return mask[static_cast<size_t>(b) * mask_stride + ids[k0 + j]] != 0; },
          &live, &live_count);
      MaskedProducts(l.dtype, up, x, n, d, live.data(), live_count.data(), hu.data());
      if (gated) MaskedProducts(l.dtype, gate, x, n, d, live.data(), live_count.data(), hg.data());
    }
    for (int b = 0; b < n; ++b) {
      float* h = hu.data() + static_cast<size_t>(b) * P;
      const float* g = hg.data() + static_cast<size_t>(b) * P;
      for (int j = 0; j < m; ++j) {
        if (mask != nullptr && mask[static_cast<size_t>(b) * mask_stride + ids[k0 + j]] == 0) {
          h[j] = 0.0f;  // not this input's neuron
          continue;
        }
        h[j] = NeuronValue(l, h[j] + (up_bias != nullptr ? up_bias[k0 + j] : 0.0f), gated ? g[j] : 0.0f);
      }
    }
    // Each tile of inputs adds only the down rows one of its inputs uses: a
    // neuron masked out or at an exact zero (ReLU: most of them) adds
    // nothing, so skipping it changes no sum.
    const int tiles = ListTileRows(
        n, m, [&](int b, int j) { return hu[static_cast<size_t>(b) * P + j] != 0.0f; }, &live, &live_count);
    live_h.resize(static_cast<size_t>(tiles) * kTileInputs * P);
    for (int t = 0; t < tiles; ++t) {  // each tile's h for its rows, in their order
      const int b0 = t * kTileInputs, nb = std::min(kTileInputs, n - b0);
      const int32_t* rows = live.data() + static_cast<size_t>(t) * P;
      float* hc = live_h.data() + static_cast<size_t>(t) * kTileInputs * P;
      for (int b = 0; b < nb; ++b) {
        for (int k = 0; k < live_count[t]; ++k) hc[b * P + k] = hu[static_cast<size_t>(b0 + b) * P + rows[k]];
      }
    }
    if (quantized) {
      // Each output adds its rows as FfnRows adds them (the row kernels'
      // axpy, row after row): either a tile of outputs at a time, each block
      // decoded once for the tile but multiplied for every output of it, or
      // each output alone over only its own nonzero rows, decoding each
      // block for it. A block's decode costs about what two outputs'
      // multiply-adds on it cost for q4_0 (nibbles), one for q8_0; with
      // ReLU zeros and masks an output uses a third of its tile's rows.
      uint64_t own = 0, shared = 0;
      for (int t = 0; t < tiles; ++t) shared += live_count[t];
      for (size_t i = 0; i < static_cast<size_t>(n) * P; ++i) own += hu[i] != 0.0f;
      const uint64_t decode = l.dtype == DType::kQ4_0 ? 2 : 1;
      if (own * (decode + 1) < shared * (decode + kTileInputs)) {
        for (int b = 0; b < n; ++b) {
          const float* h = hu.data() + static_cast<size_t>(b) * P;
          float group_h[kRowGroup];
          const void* group[kRowGroup];
          int g = 0;
          for (int j = 0; j < m; ++j) {
            if (h[j] == 0.0f) continue;
            group_h[g] = h[j];
            group[g++] = down[j];
            if (g == kRowGroup) {
              AxpyRowsTyped(group_h, group, l.dtype, d, ys[b]);
              g = 0;
            }
          }
          for (int k = 0; k < g; ++k) AxpyTyped(group_h[k], group[k], l.dtype, d, ys[b]);
        }
        continue;
      }
      for (int t = 0; t < tiles; ++t) {
        const int c = live_count[t];
        if (c == 0) continue;
        const void* dk[P];
        const int32_t* rows = live.data() + static_cast<size_t>(t) * P;
        for (int k = 0; k < c; ++k) dk[k] = down[rows[k]];
        const int b0 = t * kTileInputs;
        AxpyTileTyped(live_h.data() + static_cast<size_t>(t) * kTileInputs * P, P, dk, c, l.dtype, d,
                      ys.data() + b0, std::min(kTileInputs, n - b0));
      }
      continue;
    }
    // The down rows a stretch at a time, widened to f32 once for every output.
    for (int i = 0; i < d; i += kDownStretch) {
      const int len = std::min(kDownStretch, d - i);
      for (int j = 0; j < m; ++j) {
        ToFloat(static_cast<const char*>(down[j]) + i * elem, l.dtype, len, wide_down + j * kDownStretch);
      }
      for (int b = 0; b < n; ++b) yk[b] = ys[b] + i;
      for (int t = 0; t < tiles; ++t) {
        const int c = live_count[t];
        if (c == 0) continue;
        const void* dk[P];
        const int32_t* rows = live.data() + static_cast<size_t>(t) * P;
        for (int k = 0; k < c; ++k) dk[k] = wide_down + rows[k] * kDownStretch;
        const int b0 = t * kTileInputs;
        AxpyTile(DType::kF32, live_h.data() + static_cast<size_t>(t) * kTileInputs * P, P, dk, c, len,
                 yk.data() + b0, std::min(kTileInputs, n - b0));
      }
    }
  }
}

}  // namespace

// Small batches: per group of rows, every input takes
// its products while the rows are in cache; each input keeps its own pending
// down rows, so its sum is formed exactly as FfnRows forms it over the rows it
// computes.
void FfnRowsBatch(const RecordLayout& l, const char* base, uint64_t row_bytes,
                  std::span<const int32_t> slots, std::span<const int32_t> ids, const float* x,
                  int n, float* out, const uint8_t* mask, int mask_stride, const float* up_bias) {
  if (n >= kPanelMinBatch) {
    FfnRowsBatchPanels(l, base, row_bytes, slots, ids, x, n, out, mask, mask_stride, up_bias);
    return;
  }
  const int d = l.dim;
  const bool gated = l.gate_offset >= 0;
  thread_local std::vector<KernelInput> inputs;
  thread_local std::vector<float> pending_h;
  thread_local std::vector<const void*> pending_row;
  thread_local std::vector<int> pending;
  if (inputs.size() < static_cast<size_t>(n)) inputs.resize(n);
  pending_h.resize(static_cast<size_t>(n) * kRowGroup);
  pending_row.resize(static_cast<size_t>(n) * kRowGroup);
  pending.assign(n, 0);
  for (int b = 0; b < n; ++b) inputs[b].Prepare(l.dtype, x + static_cast<size_t>(b) * d, d);
  auto add = [&](int b, float h, const char* row) {
    float* ph = pending_h.data() + static_cast<size_t>(b) * kRowGroup;
    const void** pr = pending_row.data() + static_cast<size_t>(b) * kRowGroup;
    ph[pending[b]] = h;
    pr[pending[b]++] = row + l.down_offset;
    if (pending[b] == kRowGroup) {
      AxpyRowsTyped(ph, pr, l.dtype, d, out + static_cast<size_t>(b) * d);
      pending[b] = 0;
    }
  };
  auto uses = [&](int b, size_t k) { return mask == nullptr || mask[static_cast<size_t>(b) * mask_stride + ids[k]] != 0; };
  const size_t count = slots.size();
  size_t k = 0;
  for (; k + kRowGroup <= count; k += kRowGroup) {
    const char* row[kRowGroup];
    const void *up[kRowGroup], *gate[kRowGroup];
    GroupRows(l, base, row_bytes, slots, k, row, up, gate);
    for (int b = 0; b < n; ++b) {
      bool any = mask == nullptr;
      for (int j = 0; j < kRowGroup && !any; ++j) any = uses(b, k + j);
      if (!any) continue;
      float u[kRowGroup], g[kRowGroup] = {};
      DotRowsPrepared(up, l.dtype, inputs[b], d, u);
      if (gated) DotRowsPrepared(gate, l.dtype, inputs[b], d, g);
      for (int j = 0; j < kRowGroup; ++j) {
        if (!uses(b, k + j)) continue;
        const float h = NeuronValue(l, u[j] + (up_bias != nullptr ? up_bias[k + j] : 0.0f), g[j]);
        if (h != 0.0f) add(b, h, row[j]);
      }
    }
  }
  for (; k < count; ++k) {
    const char* row = base + static_cast<uint64_t>(slots[k]) * row_bytes;
    for (int b = 0; b < n; ++b) {
      if (!uses(b, k)) continue;
      const float u = DotPrepared(row + l.up_offset, l.dtype, inputs[b], d) + (up_bias != nullptr ? up_bias[k] : 0.0f);
      const float g = gated ? DotPrepared(row + l.gate_offset, l.dtype, inputs[b], d) : 0.0f;
      const float h = NeuronValue(l, u, g);
      if (h != 0.0f) add(b, h, row);
    }
  }
  for (int b = 0; b < n; ++b) {
    for (int j = 0; j < pending[b]; ++j) {
      AxpyTyped(pending_h[static_cast<size_t>(b) * kRowGroup + j], pending_row[static_cast<size_t>(b) * kRowGroup + j],
                l.dtype, d, out + static_cast<size_t>(b) * d);
    }
  }
}

}  // namespace llmflash

// FlashFfn: the FFN math over the rows the NeuronLoader hands over.
#include "model/flash_ffn.h"

#include <algorithm>

#include "format/bundle_layout.h"
#include "kernels/parallel_kernels.h"
#include "util/macros.h"

namespace llmflash {

Status FlashFfn::Init(const Manifest& m, const std::string& dir, const FlashFfnOptions& o) {
  m_ = &m;
  pool_ = o.pool;
  const ModelConfig& c = m.config;
  BundleLayout b = ComputeBundleLayout(c.dim, c.ffn_dim, c.n_layers, c.ffn_gated, m.ffn_dtype);
  record_ = RecordLayout{c.dim, b.gate_offset, b.up_offset, b.down_offset, c.Act(), m.ffn_dtype};
  return loader_.Init(m, dir, o.loader);
}

Status FlashFfn::Compute(int l, int64_t t, std::span<const int32_t> active, const float* x,
                         float* out, TokenStats* stats, const float* up_bias) {
  up_bias_ = up_bias;
  t_ = t;
  LoadOptions lo;
  lo.whole_window = compute_window_;
  if (batch_.n > 1) {
    lo.demand = batch_.mean_active;
    lo.wide_stream = true;
  }
  // Reads overlap the resident rows' products when those are big enough to
  // be split over the pool (so the caller's thread is free to wait). Not
  // with an observer, which measures whole layers in neuron order.
  if (pool_ != nullptr && observer_ == nullptr) {
    lo.overlap_min_rows = (kMinParallelWork + record_.dim - 1) / record_.dim;
  }
  Status st = loader_.Load(
      l, t, active, lo, [&](const ReadyRows& rows) { ComputeRows(l, rows, x, out, stats); }, stats);
  if (st.ok() && observer_ != nullptr) observer_->OnLayerEnd(l);
  return st;
}

Status FlashFfn::ComputeBatch(int l, int64_t t, std::span<const int32_t> active, const float* x, int n,
                              const uint8_t* mask, float* out, TokenStats* stats, const float* up_bias) {
  if (n < 1) return Status::InvalidArgument("FlashFfn::ComputeBatch: no inputs");
  const int ffn = m_->config.ffn_dim;
  uint64_t pairs = static_cast<uint64_t>(n) * active.size();
  if (mask != nullptr) {
    pairs = 0;
    for (int b = 0; b < n; ++b) {
      for (int32_t id : active) pairs += mask[static_cast<size_t>(b) * ffn + id] != 0;
    }
  }
  batch_ = Batch{n, mask, static_cast<double>(pairs) / n};
  const uint64_t computed_before = stats->neurons_computed;
  Status st = Compute(l, t, active, x, out, stats, up_bias);
  batch_ = Batch{};
  if (!st.ok() || n == 1) return st;
  // Compute counted rows; a batch counts the (row, input) products it made.
  stats->neurons_computed = computed_before + pairs;
  if (loader_.reuse() && mask != nullptr) {  // each neuron: the last input that used it
    for (int32_t id : active) {
      int b = n - 1;
      while (b > 0 && mask[static_cast<size_t>(b) * ffn + id] == 0) --b;
      if (b < n - 1) loader_.SetLastUsed(l, id, t - (n - 1 - b));
    }
  }
  return st;
}

Status FlashFfn::ComputeExperts(int l, int64_t t, const int32_t* experts, const float* weights, int k,
                                const float* x, int n, float* out, TokenStats* stats) {
  const ModelConfig& c = m_->config;
  const int n_experts = c.n_experts, f = c.ExpertDim();
  if (n < 1 || k < 1 || n_experts < 1) return Status::InvalidArgument("FlashFfn::ComputeExperts: no experts or inputs");
  expert_inputs_.resize(n_experts);
  expert_slots_.resize(n_experts);
  expert_ids_.resize(n_experts);
  for (auto& v : expert_inputs_) v.clear();
  for (int b = 0; b < n; ++b) {
    for (int j = 0; j < k; ++j) {
      const int32_t e = experts[static_cast<size_t>(b) * k + j];
      if (e < 0 || e >= n_experts) return Status::Internal("FlashFfn::ComputeExperts: expert out of range");
      expert_inputs_[e].push_back({b, weights[static_cast<size_t>(b) * k + j]});
    }
  }
  // The union of the routed experts' neurons, in neuron order.
  experts_used_.clear();
  expert_active_.clear();
  for (int e = 0; e < n_experts; ++e) {
    if (expert_inputs_[e].empty()) continue;
    experts_used_.push_back(e);
    for (int i = 0; i < f; ++i) expert_active_.push_back(e * f + i);
  }
  routing_ = Routing{experts, weights, k, n};
  layer_ = l;
  t_ = t;
  LoadOptions lo;
  if (n > 1) {
    lo.demand = static_cast<double>(k) * f;
    lo.wide_stream = true;
  }
  if (pool_ != nullptr) lo.overlap_min_rows = (kMinParallelWork + record_.dim - 1) / record_.dim;
  Status st = loader_.Load(
      l, t, expert_active_, lo, [&](const ReadyRows& rows) { ComputeExpertRows(rows, x, out, stats); }, stats);
  routing_ = Routing{};
  if (st.ok() && observer_ != nullptr) observer_->OnLayerEnd(l);
  if (!st.ok() || n == 1 || !loader_.reuse()) return st;
  for (int e : experts_used_) {  // each expert's neurons: the last input routed to it
    const int b = expert_inputs_[e].back().first;
    if (b == n - 1) continue;
    for (int i = 0; i < f; ++i) loader_.SetLastUsed(l, e * f + i, t - (n - 1 - b));
  }
  return st;
}

void FlashFfn::ComputeExpertRows(const ReadyRows& rows, const float* x, float* out, TokenStats* stats) {
  const int d = record_.dim, f = m_->config.ExpertDim();
  for (int e : experts_used_) {
    expert_slots_[e].clear();
    expert_ids_[e].clear();
  }
  for (size_t i = 0; i < rows.ids.size(); ++i) {
    const int e = rows.ids[i] / f;
    expert_slots_[e].push_back(rows.slots[i]);
    expert_ids_[e].push_back(rows.ids[i]);
  }
  for (int e : experts_used_) {
    const std::vector<int32_t>& slots = expert_slots_[e];
    if (slots.empty()) continue;
    const auto& inputs = expert_inputs_[e];
    const int m = static_cast<int>(inputs.size());
    // The routed inputs side by side, the expert's output for each, then
    // added to each input's output with its weight.
    expert_x_.resize(static_cast<size_t>(m) * d);
    expert_out_.assign(static_cast<size_t>(m) * d, 0.0f);
    for (int i = 0; i < m; ++i) {
      std::copy_n(x + static_cast<size_t>(inputs[i].first) * d, d, expert_x_.data() + static_cast<size_t>(i) * d);
    }
    if (m == 1) {
      float* h = nullptr;
      if (observer_ != nullptr) {
        h_.resize(slots.size());
        h = h_.data();
      }
      FfnRows(pool_, record_, rows.base, rows.row_bytes, slots, expert_x_.data(), expert_out_.data(), h,
              nullptr, &scratch_);
      // A token's experts as they are computed: what traces see of an MoE
      // (its active neurons are its experts'; batches are not observed).
      if (observer_ != nullptr && routing_.n == 1) observer_->OnFfn(layer_, t_, x, expert_ids_[e], h);
    } else {
      FfnRowsBatch(pool_, record_, rows.base, rows.row_bytes, slots, expert_ids_[e], expert_x_.data(), m,
                   expert_out_.data(), nullptr, 0, nullptr, &scratch_);
    }
    for (int i = 0; i < m; ++i) {
      Axpy(inputs[i].second, expert_out_.data() + static_cast<size_t>(i) * d, d,
           out + static_cast<size_t>(inputs[i].first) * d);
    }
    stats->neurons_computed += slots.size() * m;
  }
}

void FlashFfn::ComputeRows(int l, const ReadyRows& rows, const float* x, float* out,
                           TokenStats* stats) {
  const size_t n = rows.slots.size();
  float* h = nullptr;
  if (observer_ != nullptr) {
    h_.resize(n);
    h = h_.data();
  }
  const float* bias = nullptr;
  if (up_bias_ != nullptr) {
    bias_.resize(n);
    for (size_t k = 0; k < n; ++k) bias_[k] = up_bias_[rows.ids[k]];
    bias = bias_.data();
  }
  if (batch_.n > 1 && observer_ != nullptr) {
    ObserveBatch(l, rows, x, out, bias);
  } else if (batch_.n > 1) {
    FfnRowsBatch(pool_, record_, rows.base, rows.row_bytes, rows.slots, rows.ids, x, batch_.n, out,
                 batch_.mask, m_->config.ffn_dim, bias, &scratch_);
  } else {
    FfnRows(pool_, record_, rows.base, rows.row_bytes, rows.slots, x, out, h, bias, &scratch_);
  }
  stats->neurons_computed += n;
  if (observer_ != nullptr && batch_.n == 1) observer_->OnFfn(l, t_, x, rows.ids, h);
}

void FlashFfn::ObserveBatch(int l, const ReadyRows& rows, const float* x, float* out, const float* bias) {
  const int d = record_.dim, ffn = m_->config.ffn_dim, n = batch_.n;
  for (int b = 0; b < n; ++b) {
    const uint8_t* mask = batch_.mask != nullptr ? batch_.mask + static_cast<size_t>(b) * ffn : nullptr;
    sub_slots_.clear();
    sub_ids_.clear();
    sub_bias_.clear();
    for (size_t k = 0; k < rows.ids.size(); ++k) {
      if (mask != nullptr && mask[rows.ids[k]] == 0) continue;
      sub_slots_.push_back(rows.slots[k]);
      sub_ids_.push_back(rows.ids[k]);
      if (bias != nullptr) sub_bias_.push_back(bias[k]);
    }
    h_.resize(sub_ids_.size());
    const size_t at = static_cast<size_t>(b) * d;
    FfnRows(pool_, record_, rows.base, rows.row_bytes, sub_slots_, x + at, out + at, h_.data(),
            bias != nullptr ? sub_bias_.data() : nullptr, &scratch_);
    observer_->OnFfn(l, t_ - (n - 1 - b), x + at, sub_ids_, h_.data());
  }
}

}  // namespace llmflash

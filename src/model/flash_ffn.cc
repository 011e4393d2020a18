// FlashFfn: window lookups, reads into appended rows, streaming, FFN math.
#include "model/flash_ffn.h"

#include <algorithm>
#include <numeric>

#include "format/bundle_layout.h"
#include "util/file.h"
#include "util/macros.h"
#include "util/timer.h"

namespace llmflash {

Status FlashFfn::Init(const Manifest& m, const std::string& dir, const FlashFfnOptions& o) {
  m_ = &m;
  const ModelConfig& c = m.config;
  BundleLayout b = ComputeBundleLayout(c.dim, c.ffn_dim, c.n_layers, c.ffn_gated, m.dtype);
  record_ = RecordLayout{c.dim, b.gate_offset, b.up_offset, b.down_offset, c.activation == "relu",
                         m.dtype};
  ASSIGN_OR_RETURN(io_, OpenIoBackend(JoinPath(dir, m.bundle.file), o.backend, o.io));
  layers_.resize(c.n_layers);
  for (auto& layer : layers_) {
    RETURN_IF_ERROR(layer.Init(c.ffn_dim, o.capacity, m.bundle.record_stride, o.window));
  }
  all_ids_.resize(c.ffn_dim);
  std::iota(all_ids_.begin(), all_ids_.end(), 0);
  resident_slots_.reserve(c.ffn_dim);
  missing_.reserve(c.ffn_dim);
  slots_.reserve(o.capacity);
  requests_.reserve(o.capacity);
  return Status::OK();
}

Status FlashFfn::Compute(int l, int64_t t, std::span<const int32_t> active, const float* x,
                         float* out, TokenStats* stats, const float* up_bias) {
  up_bias_ = up_bias;
  LayerCache& cache = layers_[l];
  NeuronMatrix& mat = cache.matrix();
  if (!reuse_) mat.Clear();
  int free;
  {
    ScopedTimer timer(&stats->memory_ms);
    cache.BeginToken(t, active, &resident_slots_, &missing_);
    free = cache.MakeRoom(static_cast<int>(missing_.size()), t);
  }
  if (static_cast<int>(missing_.size()) > free) return Stream(l, t, active, x, out, stats);

  const int first = mat.size();
  for (int32_t id : missing_) mat.Append(id);
  if (!missing_.empty()) {
    Status st = ReadRows(l, missing_, first, stats);
    if (!st.ok()) {
      for (int32_t id : missing_) mat.Remove(id);
      return st;
    }
    stats->neurons_loaded += missing_.size();
  }
  // In neuron order, so that the sum does not depend on where rows sit.
  slots_.clear();
  if (compute_window_) {
    for (int s = 0; s < mat.size(); ++s) slots_.push_back(s);
  } else {
    for (int32_t id : active) slots_.push_back(mat.SlotOf(id));
  }
  ComputeSlots(l, x, out, stats);
  return Status::OK();
}

// More missing neurons than rows: compute what is resident, then read and
// compute the rest in chunks that reuse the rows. The first chunk is sized
// so that the last one fills the matrix, leaving as many neurons resident as
// fit for the next token.
Status FlashFfn::Stream(int l, int64_t t, std::span<const int32_t> active, const float* x,
                        float* out, TokenStats* stats) {
  NeuronMatrix& mat = layers_[l].matrix();
  slots_.clear();
  for (int32_t id : active) {
    if (mat.Contains(id)) slots_.push_back(mat.SlotOf(id));
  }
  ComputeSlots(l, x, out, stats);
  const int total = static_cast<int>(missing_.size());
  const int cap = mat.capacity();
  int chunk = total % cap == 0 ? cap : total % cap;
  for (int pos = 0; pos < total; pos += chunk, chunk = std::min(cap, total - pos)) {
    if (mat.free_rows() < chunk) mat.Clear();  // rows hold neurons already computed
    const int first = mat.size();
    std::span<const int32_t> ids(missing_.data() + pos, chunk);
    for (int32_t id : ids) mat.Append(id);
    Status st = ReadRows(l, ids, first, stats);
    if (!st.ok()) {
      for (int32_t id : ids) mat.Remove(id);
      return st;
    }
    stats->neurons_loaded += chunk;
    slots_.resize(chunk);
    std::iota(slots_.begin(), slots_.end(), first);
    ComputeSlots(l, x, out, stats);
  }
  return Status::OK();
}

void FlashFfn::ComputeSlots(int l, const float* x, float* out, TokenStats* stats) {
  NeuronMatrix& mat = layers_[l].matrix();
  float* h = nullptr;
  if (observer_ != nullptr) {
    h_.resize(slots_.size());
    h = h_.data();
  }
  const float* bias = nullptr;
  if (up_bias_ != nullptr) {
    bias_.resize(slots_.size());
    for (size_t k = 0; k < slots_.size(); ++k) bias_[k] = up_bias_[mat.IdAt(slots_[k])];
    bias = bias_.data();
  }
  FfnRows(record_, mat.Row(0), mat.row_bytes(), slots_, x, out, h, bias);
  stats->neurons_computed += slots_.size();
  if (observer_ != nullptr) {
    observed_ids_.clear();
    for (int32_t s : slots_) observed_ids_.push_back(mat.IdAt(s));
    observer_->OnFfn(l, x, observed_ids_, h);
  }
}

Status FlashFfn::ReadRows(int l, std::span<const int32_t> ids, int first_slot,
                          TokenStats* stats) {
  NeuronMatrix& mat = layers_[l].matrix();
  const uint64_t stride = m_->bundle.record_stride;
  requests_.clear();
  for (size_t i = 0; i < ids.size();) {  // coalesce runs of consecutive neurons
    size_t j = i + 1;
    while (j < ids.size() && ids[j] == ids[j - 1] + 1) ++j;
    requests_.push_back({m_->RecordOffset(l, ids[i]), (j - i) * stride,
                         mat.Row(first_slot + static_cast<int>(i))});
    i = j;
  }
  IoCounters c;
  Status st;
  {
    ScopedTimer timer(&stats->io_ms);
    st = io_->ReadBatch(requests_, &c);
  }
  stats->bytes_read += c.requested;
  stats->device_bytes += c.bytes;
  stats->read_ops += c.ops;
  return st;
}

void FlashFfn::Reset() {
  for (auto& layer : layers_) layer.Reset();
}

}  // namespace llmflash

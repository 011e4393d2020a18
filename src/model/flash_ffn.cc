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
  record_ = RecordLayout{c.dim, b.gate_offset, b.up_offset, b.down_offset, c.activation == "relu"};
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
                         float* out, TokenStats* stats) {
  if (active.empty()) active = all_ids_;
  LayerCache& cache = layers_[l];
  NeuronMatrix& mat = cache.matrix();
  {
    ScopedTimer timer(&stats->memory_ms);
    cache.BeginToken(t, active, &resident_slots_, &missing_);
  }
  // Rows move when neurons are deleted, so compute resident rows first.
  FfnRows(record_, mat.Row(0), mat.row_bytes(), resident_slots_, x, out);
  stats->neurons_computed += resident_slots_.size();

  const int total = static_cast<int>(missing_.size());
  if (total == 0) return Status::OK();
  int free;
  {
    ScopedTimer timer(&stats->memory_ms);
    free = cache.MakeRoom(total, t);
  }
  // Streaming (more missing neurons than rows): size the first chunk so that
  // the last one fills the matrix, leaving as many neurons resident as fit.
  const int cap = mat.capacity();
  int chunk = total <= free ? total : (total % cap == 0 ? cap : total % cap);
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
    slots_.resize(chunk);
    std::iota(slots_.begin(), slots_.end(), first);
    FfnRows(record_, mat.Row(0), mat.row_bytes(), slots_, x, out);
    stats->neurons_computed += chunk;
    stats->neurons_loaded += chunk;
  }
  return Status::OK();
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
  stats->bytes_read += c.bytes;
  stats->read_ops += c.ops;
  return st;
}

void FlashFfn::Reset() {
  for (auto& layer : layers_) layer.Reset();
}

}  // namespace llmflash

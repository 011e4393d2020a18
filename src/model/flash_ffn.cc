// FlashFfn: window lookups, reads into appended rows, streaming, FFN math.
#include "model/flash_ffn.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <numeric>

#include "cache/row_split.h"
#include "format/bundle_layout.h"
#include "kernels/parallel_kernels.h"
#include "util/file.h"
#include "util/macros.h"
#include "util/timer.h"

namespace llmflash {

Status FlashFfn::Init(const Manifest& m, const std::string& dir, const FlashFfnOptions& o) {
  m_ = &m;
  pool_ = o.pool;
  const ModelConfig& c = m.config;
  BundleLayout b = ComputeBundleLayout(c.dim, c.ffn_dim, c.n_layers, c.ffn_gated, m.ffn_dtype);
  record_ = RecordLayout{c.dim, b.gate_offset, b.up_offset, b.down_offset, c.Act(), m.ffn_dtype};
  ASSIGN_OR_RETURN(io_, OpenIoBackend(JoinPath(dir, m.bundle.file), o.backend, o.io));
  if (!o.capacities.empty() && static_cast<int>(o.capacities.size()) != c.n_layers) {
    return Status::InvalidArgument("FlashFfn: " + std::to_string(o.capacities.size()) +
                                   " capacities for " + std::to_string(c.n_layers) + " layers");
  }
  layers_.resize(c.n_layers);
  const uint64_t stride = m.bundle.record_stride;
  uint64_t total = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    const int cap = o.capacities.empty() ? o.capacity : o.capacities[l];
    if (cap < 1 || cap > c.ffn_dim) {
      return Status::InvalidArgument("FlashFfn: layer " + std::to_string(l) + " capacity " +
                                     std::to_string(cap) + " is outside 1.." +
                                     std::to_string(c.ffn_dim));
    }
    total += cap;
  }
  if (!arena_.Allocate(total * stride, stride % 4096 == 0 ? 4096 : 64)) {
    return Status::ResourceExhausted("FlashFfn: cannot allocate " + std::to_string(total * stride) +
                                     " bytes of neuron rows");
  }
  uint64_t at = 0;
  planned_.clear();
  tokens_ = 0;
  demand_.assign(c.n_layers, 0);
  demand_seen_ = false;
  for (int l = 0; l < c.n_layers; ++l) {
    const int cap = o.capacities.empty() ? o.capacity : o.capacities[l];
    RETURN_IF_ERROR(layers_[l].Init(c.ffn_dim, cap, stride, o.window, arena_.data() + at * stride));
    planned_.push_back(cap);
    at += cap;
  }
  const int most = c.ffn_dim;
  all_ids_.resize(c.ffn_dim);
  std::iota(all_ids_.begin(), all_ids_.end(), 0);
  resident_slots_.reserve(c.ffn_dim);
  missing_.reserve(c.ffn_dim);
  slots_.reserve(most);
  requests_.reserve(most);
  prefetch_.ids.reserve(most);
  prefetch_.guessed.reserve(c.ffn_dim);
  prefetch_.unused.reserve(c.ffn_dim);
  prefetch_.requests.reserve(most);
  return Status::OK();
}

std::vector<int> FlashFfn::capacities() const {
  std::vector<int> caps;
  for (const LayerCache& l : layers_) caps.push_back(l.matrix().capacity());
  return caps;
}

uint64_t FlashFfn::bytes_moved() const {
  uint64_t moved = rebalance_moved_;
  for (const LayerCache& l : layers_) moved += l.matrix().bytes_moved();
  return moved;
}

// Checked at tokens 1, 2, 4, 8, ... (powers of two), so a long generation
// re-splits rarely. Measured on the synthetic OPT-6.7B at 50%: weighing only
// the rows layers lack (what they stream) against the copying skipped the
// re-splits at tokens 8 and 16 and left ~2000 instead of ~800 reads per
// token afterwards: spare rows, which keep neurons for the next tokens, are
// worth as much, so any change of more than 5% of the rows is made.
void FlashFfn::BeginToken(TokenStats* stats) {
  const int64_t t = tokens_++;  // tokens since Init or Reset
  if (t < 1 || (t & (t - 1)) != 0 || !demand_seen_ || !reuse_ || layers_.size() < 2) return;
  uint64_t total = 0;
  for (const LayerCache& l : layers_) total += l.matrix().capacity();
  std::vector<int> want = SplitRows(total, demand_, m_->config.ffn_dim);
  uint64_t moved = 0;
  for (size_t l = 0; l < layers_.size(); ++l) {
    moved += std::max(0, want[l] - layers_[l].matrix().capacity());
  }
  if (moved * 20 <= total) return;  // less than 5% of the rows would change layer
  ScopedTimer timer(&stats->memory_ms);
  Drain();
  rebalance_moved_ += ResizeLayers(layers_, arena_.data(), m_->bundle.record_stride, want);
  stats->rows_rebalanced += moved;
}

Status FlashFfn::Prefetch(int l, int64_t t, std::span<const int32_t> ids, TokenStats* stats) {
  Drain();
  LayerCache& cache = layers_[l];
  NeuronMatrix& mat = cache.matrix();
  std::vector<int32_t>& todo = prefetch_.ids;
  {
    ScopedTimer timer(&stats->memory_ms);
    cache.BeginToken(t, ids, &resident_slots_, &todo);
    // Least recently used first, as for an exact prediction: the guess is
    // right about most of what it reads, and what it misses is read exactly.
    const int free = cache.MakeRoom(static_cast<int>(todo.size()), t);
    if (static_cast<int>(todo.size()) > free) todo.resize(free);
  }
  prefetch_.guessed.assign(ids.begin(), ids.end());
  prefetch_.t = t;
  if (todo.empty()) {
    prefetch_.layer = l;  // nothing to read; the guess is still undone in Compute
    return Status::OK();
  }
  const int first = mat.size();
  for (int32_t id : todo) mat.Append(id);
  BuildRequests(l, todo, first, &prefetch_.requests);
  prefetch_.layer = l;
  prefetch_.counters = IoCounters{};
  prefetch_.worker.Start([this] {
    Timer timer;
    Status st = io_->ReadBatch(prefetch_.requests, &prefetch_.counters);
    prefetch_.busy_ms = timer.ElapsedMs();
    return st;
  });
  return Status::OK();
}

void FlashFfn::Drain() {
  if (prefetch_.layer < 0) return;
  if (!prefetch_.worker.Wait().ok()) {  // rows that never landed must not look resident
    for (int32_t id : prefetch_.ids) layers_[prefetch_.layer].matrix().Remove(id);
  }
  prefetch_.layer = -1;
}

Status FlashFfn::FinishPrefetch(int l, std::span<const int32_t> active, TokenStats* stats) {
  if (prefetch_.layer < 0) return Status::OK();
  const int layer = prefetch_.layer;
  Status st;
  double waited = 0;
  const bool read = prefetch_.worker.busy();
  {
    ScopedTimer timer(&waited);
    st = prefetch_.worker.Wait();
  }
  prefetch_.layer = -1;
  if (layer == l) {  // the guessed neurons token t does not use are not "used by t"
    std::vector<int32_t>& unused = prefetch_.unused;
    unused.clear();
    std::set_difference(prefetch_.guessed.begin(), prefetch_.guessed.end(), active.begin(),
                        active.end(), std::back_inserter(unused));
    layers_[l].Untouch(unused, prefetch_.t);
  }
  if (!read) return Status::OK();
  stats->io_ms += waited;
  stats->io_hidden_ms += std::max(0.0, prefetch_.busy_ms - waited);
  stats->bytes_read += prefetch_.counters.requested;
  stats->device_bytes += prefetch_.counters.bytes;
  stats->read_ops += prefetch_.counters.ops;
  NeuronMatrix& mat = layers_[layer].matrix();
  if (!st.ok()) {
    for (int32_t id : prefetch_.ids) mat.Remove(id);
    return st;
  }
  const auto n = prefetch_.ids.size();
  stats->neurons_loaded += n;
  stats->neurons_prefetched += n;
  if (layer == l) {
    size_t used = 0;  // both sorted
    for (size_t i = 0, j = 0; i < n && j < active.size();) {
      if (prefetch_.ids[i] < active[j]) {
        ++i;
      } else if (active[j] < prefetch_.ids[i]) {
        ++j;
      } else {
        ++used, ++i, ++j;
      }
    }
    stats->prefetch_unused += n - used;
  }
  return Status::OK();
}

Status FlashFfn::Compute(int l, int64_t t, std::span<const int32_t> active, const float* x,
                         float* out, TokenStats* stats, const float* up_bias) {
  up_bias_ = up_bias;
  RETURN_IF_ERROR(FinishPrefetch(l, active, stats));
  // What this layer has been needing lately: the rows' next share.
  const double demand = batch_.n > 1 ? batch_.mean_active : static_cast<double>(active.size());
  demand_[l] = demand_seen_ ? 0.7 * demand_[l] + 0.3 * demand : demand;
  if (l + 1 == static_cast<int>(layers_.size())) demand_seen_ = true;
  LayerCache& cache = layers_[l];
  NeuronMatrix& mat = cache.matrix();
  if (!reuse_) mat.Clear();
  int free;
  {
    ScopedTimer timer(&stats->memory_ms);
    cache.BeginToken(t, active, &resident_slots_, &missing_);
    free = cache.MakeRoom(static_cast<int>(missing_.size()), t);
  }
  const bool dense = static_cast<int>(active.size()) == m_->config.ffn_dim;
  if (dense && io_->mapping() != nullptr) return ComputeMapped(l, x, out, stats);
  if (dense && !compute_window_ && mat.capacity() >= 2 && static_cast<int>(missing_.size()) > free) {
    return StreamDense(l, active, x, out, stats);
  }
  if (static_cast<int>(missing_.size()) > free) return Stream(l, t, active, x, out, stats);

  // Big layers: compute the resident rows while the missing ones are read.
  const bool overlap = pool_ != nullptr && observer_ == nullptr && !compute_window_ &&
                       !missing_.empty() &&
                       static_cast<int64_t>(active.size() - missing_.size()) * record_.dim >=
                           kMinParallelWork;
  if (overlap) return ComputeWhileReading(l, active, x, out, stats);
  if (!missing_.empty()) RETURN_IF_ERROR(LoadRows(l, missing_, stats));
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

// The missing rows are read on the I/O worker while the resident active rows
// are computed; then the new rows are computed. The sum runs over resident
// neurons first (each part in neuron order): for layers this big the result
// depends on residency at the level of float rounding, as it does on the
// thread count.
Status FlashFfn::ComputeWhileReading(int l, std::span<const int32_t> active, const float* x,
                                     float* out, TokenStats* stats) {
  NeuronMatrix& mat = layers_[l].matrix();
  slots_.clear();
  for (int32_t id : active) {
    if (mat.Contains(id)) slots_.push_back(mat.SlotOf(id));
  }
  const int first = mat.size();
  for (int32_t id : missing_) mat.Append(id);
  BuildRequests(l, missing_, first, &requests_);
  StartAsyncRead();
  ComputeSlots(l, x, out, stats);
  Status st = WaitAsyncRead(stats);
  if (!st.ok()) {
    for (int32_t id : missing_) mat.Remove(id);
    return st;
  }
  stats->neurons_loaded += missing_.size();
  slots_.resize(missing_.size());
  std::iota(slots_.begin(), slots_.end(), first);
  ComputeSlots(l, x, out, stats);
  return Status::OK();
}

Status FlashFfn::ComputeBatch(int l, int64_t t, std::span<const int32_t> active, const float* x, int n,
                              const uint8_t* mask, float* out, TokenStats* stats, const float* up_bias) {
  if (n < 1) return Status::InvalidArgument("FlashFfn::ComputeBatch: no inputs");
  if (n > 1 && observer_ != nullptr) {
    return Status::InvalidArgument("FlashFfn::ComputeBatch: an observer sees one token at a time");
  }
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
  if (reuse_ && mask != nullptr) {  // each neuron: the last input that used it
    LayerCache& cache = layers_[l];
    for (int32_t id : active) {
      int b = n - 1;
      while (b > 0 && mask[static_cast<size_t>(b) * ffn + id] == 0) --b;
      if (b < n - 1) cache.SetLastUsed(id, t - (n - 1 - b));
    }
  }
  return st;
}

void FlashFfn::ComputeSlots(int l, const float* x, float* out, TokenStats* stats) {
  NeuronMatrix& mat = layers_[l].matrix();
  observed_ids_.clear();
  if (observer_ != nullptr || up_bias_ != nullptr || batch_.mask != nullptr) {
    for (int32_t s : slots_) observed_ids_.push_back(mat.IdAt(s));
  }
  ComputeRows(l, mat.Row(0), mat.row_bytes(), slots_, observed_ids_, x, out, stats);
}

// out += the FFN over rows `slots` of `base` (rows of `row_bytes`), whose
// neurons are `ids` (needed only for the up bias and the observer),
// reporting them to the observer.
void FlashFfn::ComputeRows(int l, const char* base, uint64_t row_bytes, std::span<const int32_t> slots,
                           std::span<const int32_t> ids, const float* x, float* out, TokenStats* stats) {
  float* h = nullptr;
  if (observer_ != nullptr) {
    h_.resize(slots.size());
    h = h_.data();
  }
  const float* bias = nullptr;
  if (up_bias_ != nullptr) {
    bias_.resize(slots.size());
    for (size_t k = 0; k < slots.size(); ++k) bias_[k] = up_bias_[ids[k]];
    bias = bias_.data();
  }
  if (batch_.n > 1) {
    FfnRowsBatch(pool_, record_, base, row_bytes, slots, ids, x, batch_.n, out, batch_.mask,
                 m_->config.ffn_dim, bias, &scratch_);
  } else {
    FfnRows(pool_, record_, base, row_bytes, slots, x, out, h, bias, &scratch_);
  }
  stats->neurons_computed += slots.size();
  if (observer_ != nullptr) observer_->OnFfn(l, x, ids, h);
}

void FlashFfn::StartAsyncRead() {
  async_ = AsyncRead{};
  prefetch_.worker.Start([this] {
    Timer timer;
    Status st = io_->ReadBatch(requests_, &async_.counters);
    async_.busy_ms = timer.ElapsedMs();
    return st;
  });
}

Status FlashFfn::WaitAsyncRead(TokenStats* stats) {
  double waited = 0;
  Status st;
  {
    ScopedTimer timer(&waited);
    st = prefetch_.worker.Wait();
  }
  stats->io_ms += waited;
  stats->io_hidden_ms += std::max(0.0, async_.busy_ms - waited);
  stats->bytes_read += async_.counters.requested;
  stats->device_bytes += async_.counters.bytes;
  stats->read_ops += async_.counters.ops;
  return st;
}

void FlashFfn::BuildRequests(int l, std::span<const int32_t> ids, int first_slot,
                             std::vector<ReadRequest>* requests) {
  NeuronMatrix& mat = layers_[l].matrix();
  const uint64_t stride = m_->bundle.record_stride;
  requests->clear();
  for (size_t i = 0; i < ids.size();) {  // coalesce runs of consecutive neurons
    size_t j = i + 1;
    while (j < ids.size() && ids[j] == ids[j - 1] + 1) ++j;
    requests->push_back({m_->RecordOffset(l, ids[i]), (j - i) * stride,
                         mat.Row(first_slot + static_cast<int>(i))});
    i = j;
  }
}

Status FlashFfn::LoadRows(int l, std::span<const int32_t> ids, TokenStats* stats) {
  NeuronMatrix& mat = layers_[l].matrix();
  const int first = mat.size();
  for (int32_t id : ids) mat.Append(id);
  Status st = ReadRows(l, ids, first, stats);
  if (!st.ok()) {
    for (int32_t id : ids) mat.Remove(id);
    return st;
  }
  stats->neurons_loaded += ids.size();
  return Status::OK();
}

Status FlashFfn::ReadRows(int l, std::span<const int32_t> ids, int first_slot,
                          TokenStats* stats) {
  BuildRequests(l, ids, first_slot, &requests_);
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

// A new session (or a reset one) starts from the planned split: the rows a
// previous session moved followed that session's text, not this one's.
void FlashFfn::Reset() {
  Drain();
  for (auto& layer : layers_) layer.Reset();
  ResizeLayers(layers_, arena_.data(), m_->bundle.record_stride, planned_);  // empty: nothing moves
  std::fill(demand_.begin(), demand_.end(), 0.0);
  demand_seen_ = false;
  tokens_ = 0;
}

}  // namespace llmflash

// NeuronLoader: residency, reads, prefetch, streaming and their accounting.
#include "cache/neuron_loader.h"

#include <algorithm>
#include <iterator>
#include <numeric>

#include "cache/row_split.h"
#include "util/file.h"
#include "util/macros.h"
#include "util/timer.h"

namespace llmflash {

Status NeuronLoader::Init(const Manifest& m, const std::string& dir, const NeuronLoaderOptions& o) {
  Drain();
  m_ = &m;
  const ModelConfig& c = m.config;
  ASSIGN_OR_RETURN(io_, OpenIoBackend(JoinPath(dir, m.bundle.file), o.backend, o.io));
  if (!o.capacities.empty() && static_cast<int>(o.capacities.size()) != c.n_layers) {
    return Status::InvalidArgument("NeuronLoader: " + std::to_string(o.capacities.size()) +
                                   " capacities for " + std::to_string(c.n_layers) + " layers");
  }
  const uint64_t stride = m.bundle.record_stride;
  uint64_t total = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    const int cap = o.capacities.empty() ? o.capacity : o.capacities[l];
    if (cap < 1 || cap > c.ffn_dim) {
      return Status::InvalidArgument("NeuronLoader: layer " + std::to_string(l) + " capacity " +
                                     std::to_string(cap) + " is outside 1.." +
                                     std::to_string(c.ffn_dim));
    }
    total += cap;
  }
  if (!arena_.Allocate(total * stride, stride % 4096 == 0 ? 4096 : 64)) {
    return Status::ResourceExhausted("NeuronLoader: cannot allocate " +
                                     std::to_string(total * stride) + " bytes of neuron rows");
  }
  layers_.clear();
  layers_.resize(c.n_layers);
  planned_.clear();
  uint64_t at = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    const int cap = o.capacities.empty() ? o.capacity : o.capacities[l];
    RETURN_IF_ERROR(layers_[l].Init(c.ffn_dim, cap, stride, o.window, arena_.data() + at * stride,
                                    o.frequency_half_life));
    planned_.push_back(cap);
    at += cap;
  }
  tokens_ = 0;
  in_place_ = o.replace_in_place;
  demand_.assign(c.n_layers, 0);
  demand_seen_ = false;
  all_ids_.resize(c.ffn_dim);
  std::iota(all_ids_.begin(), all_ids_.end(), 0);
  // Nothing on the token path allocates.
  for (auto* v : {&resident_slots_, &missing_, &slots_, &ids_, &prefetch_.ids, &prefetch_.guessed,
                  &prefetch_.unused}) {
    v->reserve(c.ffn_dim);
  }
  new_slots_.reserve(c.ffn_dim);
  if (in_place_) holes_.reserve(c.ffn_dim);
  requests_.reserve(c.ffn_dim);
  prefetch_.requests.reserve(c.ffn_dim);
  return Status::OK();
}

std::vector<int> NeuronLoader::capacities() const {
  std::vector<int> caps;
  for (const LayerCache& l : layers_) caps.push_back(l.matrix().capacity());
  return caps;
}

uint64_t NeuronLoader::bytes_moved() const {
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
void NeuronLoader::BeginToken(TokenStats* stats) {
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

// A new session (or a reset one) starts from the planned split: the rows a
// previous session moved followed that session's text, not this one's.
void NeuronLoader::Reset() {
  Drain();
  for (auto& layer : layers_) layer.Reset();
  ResizeLayers(layers_, arena_.data(), m_->bundle.record_stride, planned_);  // empty: nothing moves
  std::fill(demand_.begin(), demand_.end(), 0.0);
  demand_seen_ = false;
  tokens_ = 0;
}

void NeuronLoader::AttachMissing(int l, std::span<const int32_t> ids, std::vector<ReadRequest>* requests) {
  NeuronMatrix& mat = layers_[l].matrix();
  new_slots_.clear();
  size_t h = 0;
  for (int32_t id : ids) {
    const int slot = h < holes_.size() ? holes_[h++] : mat.size();
    mat.Attach(id, slot);
    new_slots_.push_back(slot);
  }
  holes_.clear();
  BuildRequests(l, ids, new_slots_, requests);
}

void NeuronLoader::BuildRequests(int l, std::span<const int32_t> ids, std::span<const int32_t> slots,
                                 std::vector<ReadRequest>* requests) {
  NeuronMatrix& mat = layers_[l].matrix();
  const uint64_t stride = m_->bundle.record_stride;
  requests->clear();
  for (size_t i = 0; i < ids.size();) {  // coalesce runs of consecutive neurons in consecutive rows
    size_t j = i + 1;
    while (j < ids.size() && ids[j] == ids[j - 1] + 1 && slots[j] == slots[j - 1] + 1) ++j;
    requests->push_back({m_->RecordOffset(l, ids[i]), (j - i) * stride, mat.Row(slots[i])});
    i = j;
  }
}

namespace {

void AddReads(const IoCounters& c, TokenStats* stats) {
  stats->bytes_read += c.requested;
  stats->device_bytes += c.bytes;
  stats->read_ops += c.ops;
}

// An asynchronous batch: the wait is I/O time, the rest of its duration hidden.
void AddCompletion(const IoCompletion& done, TokenStats* stats) {
  stats->io_ms += done.waited_ms;
  stats->io_hidden_ms += std::max(0.0, done.busy_ms - done.waited_ms);
  AddReads(done.counters, stats);
}

}  // namespace

Status NeuronLoader::WaitRead(TokenStats* stats) {
  IoCompletion done = io_->Wait();
  AddCompletion(done, stats);
  return done.status;
}

Status NeuronLoader::LoadRows(int l, std::span<const int32_t> ids, TokenStats* stats) {
  NeuronMatrix& mat = layers_[l].matrix();
  AttachMissing(l, ids, &requests_);
  IoCounters c;
  Status st;
  {
    ScopedTimer timer(&stats->io_ms);
    st = io_->ReadBatch(requests_, &c);
  }
  AddReads(c, stats);
  if (!st.ok()) {  // rows that never landed must not look resident
    for (int32_t id : ids) mat.Remove(id);
    return st;
  }
  stats->neurons_loaded += ids.size();
  return Status::OK();
}

// MakeRoom may have moved rows since BeginToken listed them: looked up again.
void NeuronLoader::ResidentSlots(int l, std::span<const int32_t> active) {
  const NeuronMatrix& mat = layers_[l].matrix();
  slots_.clear();
  for (int32_t id : active) {
    if (mat.Contains(id)) slots_.push_back(mat.SlotOf(id));
  }
}

void NeuronLoader::HandOver(int l, std::span<const int32_t> slots, const ComputeFn& compute) {
  const NeuronMatrix& mat = layers_[l].matrix();
  if (slots.empty()) return;
  ids_.clear();
  for (int32_t s : slots) ids_.push_back(mat.IdAt(s));
  compute(ReadyRows{mat.Row(0), mat.row_bytes(), slots, ids_});
}

Status NeuronLoader::Prefetch(int l, int64_t t, std::span<const int32_t> ids, TokenStats* stats) {
  Drain();
  LayerCache& cache = layers_[l];
  std::vector<int32_t>& todo = prefetch_.ids;
  {
    ScopedTimer timer(&stats->memory_ms);
    cache.BeginToken(t, ids, &resident_slots_, &todo);
    // Least recently used first, as for an exact prediction: the guess is
    // right about most of what it reads, and what it misses is read exactly.
    const int want = static_cast<int>(todo.size());
    const int free = in_place_ ? cache.MakeRoomInPlace(want, t, &holes_) : cache.MakeRoom(want, t);
    if (static_cast<int>(todo.size()) > free) todo.resize(free);  // fills every hole
  }
  prefetch_.guessed.assign(ids.begin(), ids.end());
  prefetch_.t = t;
  prefetch_.layer = l;  // with nothing to read, the guess is still undone in Load
  if (todo.empty()) return Status::OK();
  AttachMissing(l, todo, &prefetch_.requests);
  io_->Submit(prefetch_.requests);
  return Status::OK();
}

void NeuronLoader::Drain() {
  if (prefetch_.layer < 0) return;
  if (!io_->Wait().status.ok()) {  // rows that never landed must not look resident
    for (int32_t id : prefetch_.ids) layers_[prefetch_.layer].matrix().Remove(id);
  }
  prefetch_.layer = -1;
}

Status NeuronLoader::FinishPrefetch(int l, std::span<const int32_t> active, TokenStats* stats) {
  if (prefetch_.layer < 0) return Status::OK();
  const int layer = prefetch_.layer;
  IoCompletion done = io_->Wait();
  prefetch_.layer = -1;
  if (layer == l) {  // the guessed neurons token t does not use are not "used by t"
    std::vector<int32_t>& unused = prefetch_.unused;
    unused.clear();
    std::set_difference(prefetch_.guessed.begin(), prefetch_.guessed.end(), active.begin(),
                        active.end(), std::back_inserter(unused));
    layers_[l].Untouch(unused, prefetch_.t);
  }
  if (!done.read) return Status::OK();
  AddCompletion(done, stats);
  NeuronMatrix& mat = layers_[layer].matrix();
  if (!done.status.ok()) {
    for (int32_t id : prefetch_.ids) mat.Remove(id);
    return done.status;
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

Status NeuronLoader::Load(int l, int64_t t, std::span<const int32_t> active, const LoadOptions& o,
                          const ComputeFn& compute, TokenStats* stats) {
  RETURN_IF_ERROR(FinishPrefetch(l, active, stats));
  // What this layer has been needing lately: the rows' next share.
  const double demand = o.demand >= 0 ? o.demand : static_cast<double>(active.size());
  demand_[l] = demand_seen_ ? 0.7 * demand_[l] + 0.3 * demand : demand;
  if (l + 1 == static_cast<int>(layers_.size())) demand_seen_ = true;
  LayerCache& cache = layers_[l];
  NeuronMatrix& mat = cache.matrix();
  if (!reuse_) mat.Clear();
  int free;
  {
    ScopedTimer timer(&stats->memory_ms);
    cache.BeginToken(t, active, &resident_slots_, &missing_);
    const int want = static_cast<int>(missing_.size());
    if (in_place_) {
      free = cache.MakeRoomInPlace(want, t, &holes_);
      if (want > free || o.whole_window) {  // not read into place: the matrix dense again
        mat.FillHoles();
        holes_.clear();
        free = mat.free_rows();
      }
    } else {
      free = cache.MakeRoom(want, t);
    }
  }
  const bool dense = static_cast<int>(active.size()) == m_->config.ffn_dim;
  if (dense && io_->mapping() != nullptr) {
    // As an mmap-based engine computes: on the mapped pages of the bundle,
    // faulting them in through the page cache; nothing is copied, and the
    // reads are inside the compute time. Record i of the layer is row i of
    // the mapping: slots and neurons are the same ids.
    const uint64_t bytes = static_cast<uint64_t>(m_->config.ffn_dim) * m_->bundle.record_stride;
    compute(ReadyRows{io_->mapping() + m_->RecordOffset(l, 0), m_->bundle.record_stride, all_ids_,
                      all_ids_});
    stats->bytes_read += bytes;
    stats->device_bytes += bytes;
    return Status::OK();
  }
  const bool fits = static_cast<int>(missing_.size()) <= free;
  if (dense && !o.whole_window && mat.capacity() >= 2 && !fits) {
    return StreamDense(l, active, compute, stats);
  }
  if (!fits) return StreamSparse(l, active, o.wide_stream, compute, stats);
  // Big layers: compute the resident rows while the missing ones are read.
  if (o.overlap_min_rows >= 0 && !o.whole_window && !missing_.empty() &&
      static_cast<int64_t>(active.size() - missing_.size()) >= o.overlap_min_rows) {
    return ReadWhileComputing(l, active, compute, stats);
  }
  if (!missing_.empty()) RETURN_IF_ERROR(LoadRows(l, missing_, stats));
  // In neuron order, so that the sum does not depend on where rows sit.
  if (o.whole_window) {
    slots_.resize(mat.size());
    std::iota(slots_.begin(), slots_.end(), 0);
  } else {
    ResidentSlots(l, active);  // all of them, now
  }
  HandOver(l, slots_, compute);
  return Status::OK();
}

// The missing rows are read on the I/O thread while the resident active rows
// are computed; then the new rows are. The sum runs over resident neurons
// first (each part in neuron order): for layers this big the result depends
// on residency at the level of float rounding, as it does on the thread
// count.
Status NeuronLoader::ReadWhileComputing(int l, std::span<const int32_t> active,
                                        const ComputeFn& compute, TokenStats* stats) {
  NeuronMatrix& mat = layers_[l].matrix();
  ResidentSlots(l, active);  // before the missing neurons join the matrix
  AttachMissing(l, missing_, &requests_);
  io_->Submit(requests_);
  HandOver(l, slots_, compute);
  Status st = WaitRead(stats);
  if (!st.ok()) {
    for (int32_t id : missing_) mat.Remove(id);
    return st;
  }
  stats->neurons_loaded += missing_.size();
  slots_ = new_slots_;  // in neuron order
  HandOver(l, slots_, compute);
  return Status::OK();
}

// missing_ streamed through the `region` free rows that follow the matrix's
// used rows, in parts of half the region: part c+1 is read into one half
// while part c, in the other, is computed (a region of one row: read, then
// compute). The first part takes the remainder, so the others are full;
// slots_ (resident rows) are handed over while the first part is read.
// With `keep_last` the last two parts (a whole region) join the matrix
// afterwards, so it ends as full as it began and keeps the window's neurons
// for the next token; otherwise the region holds nothing afterwards. The
// streamed rows join the matrix only once everything has landed: a failed
// read leaves nothing to undo.
Status NeuronLoader::Stream(int l, bool keep_last, int region, const ComputeFn& compute,
                            TokenStats* stats) {
  NeuronMatrix& mat = layers_[l].matrix();
  const int base = mat.size();
  const int total = static_cast<int>(missing_.size());
  const bool two = region >= 2;
  const int part = two ? region / 2 : 1;
  const int parts = (total + part - 1) / part;
  const int head = total % part == 0 ? part : total % part;
  auto begin = [&](int c) { return c == 0 ? 0 : head + (c - 1) * part; };
  auto size = [&](int c) { return c == 0 ? head : part; };
  // Two parts fit side by side; more alternate between the halves.
  auto slot = [&](int c) { return !two ? base : parts <= 2 ? base + begin(c) : base + (c % 2) * part; };
  auto submit = [&](int c) {
    new_slots_.resize(size(c));  // the part's rows, one after another
    std::iota(new_slots_.begin(), new_slots_.end(), slot(c));
    BuildRequests(l, std::span<const int32_t>(missing_.data() + begin(c), size(c)), new_slots_, &requests_);
    io_->Submit(requests_);
  };
  if (parts > 0) submit(0);
  HandOver(l, slots_, compute);
  std::vector<int32_t>& rows = resident_slots_;  // free again: the resident rows were handed over
  for (int c = 0; c < parts; ++c) {
    RETURN_IF_ERROR(WaitRead(stats));
    if (two && c + 1 < parts) submit(c + 1);  // into the other half, while this one is computed
    rows.resize(size(c));
    std::iota(rows.begin(), rows.end(), slot(c));
    compute(ReadyRows{mat.Row(0), mat.row_bytes(), rows,
                      std::span<const int32_t>(missing_.data() + begin(c), size(c))});
    stats->neurons_loaded += size(c);
    if (!two && c + 1 < parts) submit(c + 1);
  }
  if (keep_last && parts > 0) {
    // The parts still in the region, in slot order, become the matrix's next rows.
    int first = std::max(0, parts - (two ? 2 : 1));
    if (two && parts > 2 && slot(parts - 1) < slot(parts - 2)) {
      for (int32_t id : std::span<const int32_t>(missing_.data() + begin(parts - 1), part)) mat.Append(id);
      for (int32_t id : std::span<const int32_t>(missing_.data() + begin(parts - 2), part)) mat.Append(id);
    } else {
      for (int i = begin(first); i < total; ++i) mat.Append(missing_[i]);
    }
  }
  return Status::OK();
}

// More missing neurons than rows: stream them through the free rows, grown
// to at least kMinStreamRows (a batch: two wide halves) by deleting the last
// resident rows. The resident active rows about to be deleted are computed
// first; the rest are computed while the first part is read.
Status NeuronLoader::StreamSparse(int l, std::span<const int32_t> active, bool wide,
                                  const ComputeFn& compute, TokenStats* stats) {
  constexpr int kMinStreamRows = 64;
  NeuronMatrix& mat = layers_[l].matrix();
  const int least = wide ? std::max(kMinStreamRows, 2 * WideHalf()) : kMinStreamRows;
  const int region = std::min(mat.capacity(), std::max(least, mat.free_rows()));
  const int keep = mat.size() - std::max(0, region - mat.free_rows());  // rows that stay
  ResidentSlots(l, active);
  std::vector<int32_t>& doomed = resident_slots_;  // free: BeginToken's list is stale
  doomed.clear();
  std::erase_if(slots_, [&](int32_t s) {
    if (s < keep) return false;
    doomed.push_back(s);
    return true;
  });
  HandOver(l, doomed, compute);  // in neuron order
  {
    ScopedTimer timer(&stats->memory_ms);
    // The last rows go: no row below `keep` moves, so slots_ stays valid.
    while (mat.size() > keep) mat.Remove(mat.IdAt(mat.size() - 1));
  }
  return Stream(l, /*keep_last=*/true, region, compute, stats);
}

// About 8 MiB (eight 1 MiB reads in flight), at least 32 rows.
int NeuronLoader::WideHalf() const {
  return std::max(32, static_cast<int>((8ull << 20) / m_->bundle.record_stride));
}

// A dense layer that does not fit (the naive and hybrid baselines, and
// dense sessions at a small budget): the resident rows stay and are computed
// while the first part is read; the rest of the layer streams through a
// region of free rows. What stays resident is what was resident (hybrid's
// pinned rows), so a dense token reads the same bytes every time.
Status NeuronLoader::StreamDense(int l, std::span<const int32_t> active, const ComputeFn& compute,
                                 TokenStats* stats) {
  Drain();
  NeuronMatrix& mat = layers_[l].matrix();
  // Reused rows (hybrid): halves of about 8 MiB, and at least half the
  // matrix stays resident; the resident rows give way when the region needs
  // them. Naive keeps nothing, so the whole matrix is the region: the most
  // reads in flight.
  const int half =
      std::max(1, reuse_ ? std::min(WideHalf(), mat.capacity() / 4) : mat.capacity() / 2);
  {
    ScopedTimer timer(&stats->memory_ms);
    while (mat.free_rows() < 2 * half && mat.size() > 0) mat.Remove(mat.IdAt(mat.size() - 1));
  }
  slots_.clear();
  missing_.clear();
  for (int32_t id : active) {
    if (mat.Contains(id)) {
      slots_.push_back(mat.SlotOf(id));
    } else {
      missing_.push_back(id);
    }
  }
  // Rows beyond the region hold neurons for good (hybrid: reused; naive
  // clears them every token): fill them once.
  const int pin = reuse_ ? std::min<int>(mat.free_rows() - 2 * half, missing_.size()) : 0;
  if (pin > 0) {
    const int first = mat.size();
    RETURN_IF_ERROR(LoadRows(l, std::span<const int32_t>(missing_.data(), pin), stats));
    for (int k = 0; k < pin; ++k) slots_.push_back(first + k);
    missing_.erase(missing_.begin(), missing_.begin() + pin);
  }
  return Stream(l, /*keep_last=*/false, 2 * half, compute, stats);
}

}  // namespace llmflash

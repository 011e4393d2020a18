// FlashFfn's streaming paths: layers whose neurons do not fit their rows,
// read and computed in parts, and the mmap baseline computing on the mapping.
#include <algorithm>
#include <numeric>

#include "kernels/parallel_kernels.h"
#include "model/flash_ffn.h"
#include "util/macros.h"
#include "util/timer.h"

namespace llmflash {

// More missing neurons than rows: compute what is resident, then read and
// compute the rest in chunks through a stream region at the end of the
// matrix (the free rows, grown to at least kMinStreamRows by deleting
// resident neurons already computed). Each chunk is deleted after use (the
// last rows: nothing moves) except the last, which is full, so the matrix
// ends as full as it began and keeps the window's neurons for the next token.
Status FlashFfn::Stream(int l, int64_t t, std::span<const int32_t> active, const float* x,
                        float* out, TokenStats* stats) {
  constexpr int kMinStreamRows = 64;
  NeuronMatrix& mat = layers_[l].matrix();
  slots_.clear();
  for (int32_t id : active) {
    if (mat.Contains(id)) slots_.push_back(mat.SlotOf(id));
  }
  ComputeSlots(l, x, out, stats);
  const int total = static_cast<int>(missing_.size());
  const int region = std::min(mat.capacity(), std::max(kMinStreamRows, mat.free_rows()));
  {
    ScopedTimer timer(&stats->memory_ms);
    while (mat.free_rows() < region) mat.Remove(mat.IdAt(mat.size() - 1));
  }
  // The first chunk takes the remainder, so that the last one is full.
  int chunk = total % region == 0 ? region : total % region;
  for (int pos = 0; pos < total; pos += chunk, chunk = region) {
    const int first = mat.size();
    std::span<const int32_t> ids(missing_.data() + pos, chunk);
    RETURN_IF_ERROR(LoadRows(l, ids, stats));
    slots_.resize(chunk);
    std::iota(slots_.begin(), slots_.end(), first);
    ComputeSlots(l, x, out, stats);
    if (pos + chunk < total) {
      for (int k = chunk - 1; k >= 0; --k) mat.Remove(ids[k]);  // last rows first: no moves
    }
  }
  return Status::OK();
}

// A dense layer that does not fit (the naive and hybrid baselines, and
// dense sessions at a small budget): the resident rows stay and are computed
// first; the rest of the layer streams through a region of free rows split in
// two halves, the next half read while the current one is computed. The
// region never holds neurons after the layer: what stays resident is what
// was resident (hybrid's pinned rows), so a dense token reads the same bytes
// every time.
Status FlashFfn::StreamDense(int l, std::span<const int32_t> active, const float* x, float* out,
                             TokenStats* stats) {
  Drain();
  NeuronMatrix& mat = layers_[l].matrix();
  const uint64_t stride = m_->bundle.record_stride;
  // Reused rows (hybrid): halves of about 8 MiB (eight 1 MiB reads in
  // flight), at least 32 rows, and at least half the matrix stays resident;
  // the resident rows give way when the region needs them. Naive keeps
  // nothing, so the whole matrix is the region: the most reads in flight.
  const int want = std::max(32, static_cast<int>((8ull << 20) / stride));
  const int half = std::max(1, reuse_ ? std::min(want, mat.capacity() / 4) : mat.capacity() / 2);
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
  ComputeSlots(l, x, out, stats);
  const int region = mat.size();  // first free slot: the region's start
  const int chunks = (static_cast<int>(missing_.size()) + half - 1) / half;
  auto read = [&](int c) {
    const int begin = c * half, n = std::min(half, static_cast<int>(missing_.size()) - begin);
    std::span<const int32_t> ids(missing_.data() + begin, n);
    BuildRequests(l, ids, region + (c % 2) * half, &requests_);
    StartAsyncRead();
  };
  if (chunks > 0) read(0);
  for (int c = 0; c < chunks; ++c) {
    Status st = WaitAsyncRead(stats);
    if (!st.ok()) return st;
    if (c + 1 < chunks) read(c + 1);  // into the other half, while this one is computed
    const int begin = c * half, n = std::min(half, static_cast<int>(missing_.size()) - begin);
    slots_.resize(n);
    std::iota(slots_.begin(), slots_.end(), region + (c % 2) * half);
    // Rows the matrix does not track: their neurons are that part of missing_.
    ComputeRows(l, mat.Row(0), mat.row_bytes(), slots_,
                std::span<const int32_t>(missing_.data() + begin, n), x, out, stats);
    stats->neurons_loaded += n;
  }
  return Status::OK();
}

// The mmap baseline, as an mmap-based engine computes: the products run on
// the mapped pages of the bundle, faulting them in through the page cache;
// nothing is copied, and the reads are inside the compute time.
Status FlashFfn::ComputeMapped(int l, const float* x, float* out, TokenStats* stats) {
  const uint64_t bytes = static_cast<uint64_t>(m_->config.ffn_dim) * m_->bundle.record_stride;
  // Record i of the layer is row i of the mapping: slots and neurons are the same ids.
  ComputeRows(l, io_->mapping() + m_->RecordOffset(l, 0), m_->bundle.record_stride, all_ids_,
              all_ids_, x, out, stats);
  stats->bytes_read += bytes;
  stats->device_bytes += bytes;
  return Status::OK();
}

}  // namespace llmflash

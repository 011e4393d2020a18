// LayerCache: window-driven eviction over a NeuronMatrix.
#include "cache/layer_cache.h"

#include <algorithm>
#include <cstring>

namespace llmflash {

Status LayerCache::Init(int n_neurons, int capacity, uint64_t row_bytes, int window_k,
                        char* rows, double half_life) {
  if (window_k < 1) return Status::InvalidArgument("window must be at least 1 token");
  window_.Init(n_neurons, window_k, half_life);
  scratch_.reserve(rows != nullptr ? n_neurons : capacity);
  return rows != nullptr ? matrix_.InitView(n_neurons, capacity, row_bytes, rows)
                         : matrix_.Init(n_neurons, capacity, row_bytes);
}

// Only the `count` least recently used candidates are removed: they are
// selected (linear time), not sorted (a whole layer's rows, each token, when
// the matrix is full).
void LayerCache::RemoveOldestCandidates(size_t count) {
  SelectVictims(count);
  for (int32_t id : scratch_) matrix_.Remove(id);
}

void LayerCache::SelectVictims(size_t count) {
  if (count >= scratch_.size()) return;
  // Least used lately first (with frequencies), then least recently used.
  const bool by_use = window_.tracks_frequency();
  std::nth_element(scratch_.begin(), scratch_.begin() + count, scratch_.end(), [&](int32_t a, int32_t b) {
    if (by_use && window_.FrequencyKey(a) != window_.FrequencyKey(b)) {
      return window_.FrequencyKey(a) < window_.FrequencyKey(b);
    }
    return window_.last_used(a) < window_.last_used(b);
  });
  scratch_.resize(count);
}

void LayerCache::EvictTo(int rows) {
  if (matrix_.size() <= rows) return;
  scratch_.clear();
  for (int s = 0; s < matrix_.size(); ++s) scratch_.push_back(matrix_.IdAt(s));
  RemoveOldestCandidates(static_cast<size_t>(matrix_.size() - rows));
}

void LayerCache::BeginToken(int64_t t, std::span<const int32_t> active,
                            std::vector<int32_t>* resident_slots,
                            std::vector<int32_t>* missing) {
  now_ = t;
  window_.Touch(active, t);
  // Walk down so that the row moved into slot s (the last one) was already seen.
  // With frequencies nothing leaves for age alone: rows go under pressure,
  // the least used lately first (a popular expert's gaps outlast a window).
  for (int s = window_.tracks_frequency() ? -1 : matrix_.size() - 1; s >= 0; --s) {
    int id = matrix_.IdAt(s);
    if (!window_.InWindow(id, t)) matrix_.Remove(id);
  }
  resident_slots->clear();
  missing->clear();
  for (int32_t id : active) {
    int slot = matrix_.SlotOf(id);
    if (slot >= 0) {
      resident_slots->push_back(slot);
    } else {
      missing->push_back(id);
    }
  }
}

bool LayerCache::CollectVictims(int want, int64_t t, int64_t keep_since) {
  if (matrix_.free_rows() >= want) return false;
  now_ = t;
  scratch_.clear();
  for (int s = 0; s < matrix_.size(); ++s) {
    int id = matrix_.IdAt(s);
    if (!window_.UsedAt(id, t) && window_.last_used(id) < keep_since) scratch_.push_back(id);
  }
  SelectVictims(static_cast<size_t>(want - matrix_.free_rows()));
  return true;
}

int LayerCache::MakeRoom(int want, int64_t t, int64_t keep_since) {
  if (CollectVictims(want, t, keep_since)) {
    for (int32_t id : scratch_) matrix_.Remove(id);
  }
  return matrix_.free_rows();
}

int LayerCache::MakeRoomInPlace(int want, int64_t t, std::vector<int32_t>* holes) {
  holes->clear();
  if (!CollectVictims(want, t, INT64_MAX)) return matrix_.free_rows();
  for (int32_t id : scratch_) {
    holes->push_back(matrix_.SlotOf(id));
    matrix_.Detach(id);
  }
  std::sort(holes->begin(), holes->end());
  return matrix_.free_rows() + static_cast<int>(holes->size());
}

void LayerCache::Reset() {
  matrix_.Clear();
  window_.Reset();
}

// Only each layer's first size() rows hold data. Layers moving left are
// moved first, in increasing order, then those moving right, in decreasing
// order: no move overwrites rows not yet moved (a layer's new place ends
// before the next layer's new place and, moving left, before its own old
// end; moving right, it starts after the previous layer's old end).
uint64_t ResizeLayers(std::span<LayerCache> layers, char* arena, uint64_t stride,
                      std::span<const int> rows) {
  const size_t n = layers.size();
  std::vector<uint64_t> old_at(n), new_at(n);
  uint64_t o = 0, w = 0;
  for (size_t l = 0; l < n; ++l) {
    layers[l].EvictTo(rows[l]);
    old_at[l] = o;
    new_at[l] = w;
    o += layers[l].matrix().capacity();
    w += rows[l];
  }
  uint64_t moved = 0;
  auto move = [&](size_t l) {
    moved += layers[l].matrix().Relocate(arena + new_at[l] * stride, rows[l]);
  };
  for (size_t l = 0; l < n; ++l) {
    if (new_at[l] <= old_at[l]) move(l);
  }
  for (size_t l = n; l-- > 0;) {
    if (new_at[l] > old_at[l]) move(l);
  }
  return moved;
}

}  // namespace llmflash

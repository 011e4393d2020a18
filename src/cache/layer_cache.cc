// LayerCache: window-driven eviction over a NeuronMatrix.
#include "cache/layer_cache.h"

#include <algorithm>

namespace llmflash {

Status LayerCache::Init(int n_neurons, int capacity, uint64_t row_bytes, int window_k) {
  if (window_k < 1) return Status::InvalidArgument("window must be at least 1 token");
  window_.Init(n_neurons, window_k);
  scratch_.reserve(capacity);
  return matrix_.Init(n_neurons, capacity, row_bytes);
}

void LayerCache::BeginToken(int64_t t, std::span<const int32_t> active,
                            std::vector<int32_t>* resident_slots,
                            std::vector<int32_t>* missing) {
  window_.Touch(active, t);
  // Walk down so that the row moved into slot s (the last one) was already seen.
  for (int s = matrix_.size() - 1; s >= 0; --s) {
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

int LayerCache::MakeRoom(int want, int64_t t, int64_t keep_since) {
  if (matrix_.free_rows() >= want) return matrix_.free_rows();
  scratch_.clear();
  for (int s = 0; s < matrix_.size(); ++s) {
    int id = matrix_.IdAt(s);
    if (!window_.UsedAt(id, t) && window_.last_used(id) < keep_since) scratch_.push_back(id);
  }
  std::sort(scratch_.begin(), scratch_.end(), [&](int32_t a, int32_t b) {
    return window_.last_used(a) < window_.last_used(b);
  });
  for (int32_t id : scratch_) {
    if (matrix_.free_rows() >= want) break;
    matrix_.Remove(id);
  }
  return matrix_.free_rows();
}

void LayerCache::Reset() {
  matrix_.Clear();
  window_.Reset();
}

}  // namespace llmflash

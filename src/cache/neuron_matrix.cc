// NeuronMatrix: append at the end, delete by moving the last row in.
#include "cache/neuron_matrix.h"

#include <cassert>
#include <cstring>

namespace llmflash {

Status NeuronMatrix::Init(int n_neurons, int capacity, uint64_t row_bytes) {
  if (n_neurons <= 0 || capacity <= 0 || capacity > n_neurons || row_bytes == 0 ||
      row_bytes % 64 != 0) {
    return Status::InvalidArgument("neuron matrix: bad shape (neurons " +
                                   std::to_string(n_neurons) + ", capacity " +
                                   std::to_string(capacity) + ", row bytes " +
                                   std::to_string(row_bytes) + ")");
  }
  size_t align = row_bytes % 4096 == 0 ? 4096 : 64;
  if (!rows_.Allocate(static_cast<size_t>(capacity) * row_bytes, align)) {
    return Status::ResourceExhausted("neuron matrix: cannot allocate " +
                                     std::to_string(capacity * row_bytes) + " bytes");
  }
  slot_of_.assign(n_neurons, -1);
  id_at_.assign(capacity, -1);
  row_bytes_ = row_bytes;
  capacity_ = capacity;
  size_ = 0;
  bytes_moved_ = 0;
  return Status::OK();
}

int NeuronMatrix::Append(int id) {
  assert(size_ < capacity_ && slot_of_[id] < 0);
  int slot = size_++;
  slot_of_[id] = slot;
  id_at_[slot] = id;
  return slot;
}

void NeuronMatrix::Remove(int id) {
  int slot = slot_of_[id];
  assert(slot >= 0);
  int last = size_ - 1;
  if (slot != last) {
    std::memcpy(Row(slot), Row(last), row_bytes_);
    bytes_moved_ += row_bytes_;
    int moved = id_at_[last];
    id_at_[slot] = moved;
    slot_of_[moved] = slot;
  }
  id_at_[last] = -1;
  slot_of_[id] = -1;
  size_ = last;
}

void NeuronMatrix::Clear() {
  for (int s = 0; s < size_; ++s) {
    slot_of_[id_at_[s]] = -1;
    id_at_[s] = -1;
  }
  size_ = 0;
}

}  // namespace llmflash

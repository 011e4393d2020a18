// NeuronMatrix: append at the end, delete by moving the last row in.
#include "cache/neuron_matrix.h"

#include <cassert>
#include <cstring>

#include "util/macros.h"

namespace llmflash {

Status NeuronMatrix::Shape(int n_neurons, int capacity, uint64_t row_bytes) {
  if (n_neurons <= 0 || capacity <= 0 || capacity > n_neurons || row_bytes == 0 ||
      row_bytes % 64 != 0) {
    return Status::InvalidArgument("neuron matrix: bad shape (neurons " +
                                   std::to_string(n_neurons) + ", capacity " +
                                   std::to_string(capacity) + ", row bytes " +
                                   std::to_string(row_bytes) + ")");
  }
  slot_of_.assign(n_neurons, -1);
  id_at_.reserve(n_neurons);  // Rebase may grow it up to n_neurons: no reallocation
  id_at_.assign(capacity, -1);
  row_bytes_ = row_bytes;
  capacity_ = capacity;
  size_ = 0;
  bytes_moved_ = 0;
  return Status::OK();
}

Status NeuronMatrix::Init(int n_neurons, int capacity, uint64_t row_bytes) {
  RETURN_IF_ERROR(Shape(n_neurons, capacity, row_bytes));
  size_t align = row_bytes % 4096 == 0 ? 4096 : 64;
  if (!rows_.Allocate(static_cast<size_t>(capacity) * row_bytes, align)) {
    return Status::ResourceExhausted("neuron matrix: cannot allocate " +
                                     std::to_string(capacity * row_bytes) + " bytes");
  }
  base_ = rows_.data();
  return Status::OK();
}

Status NeuronMatrix::InitView(int n_neurons, int capacity, uint64_t row_bytes, char* rows) {
  RETURN_IF_ERROR(Shape(n_neurons, capacity, row_bytes));
  rows_.Allocate(0);
  base_ = rows;
  return Status::OK();
}

void NeuronMatrix::Rebase(char* rows, int capacity) {
  assert(rows_.data() == nullptr && capacity >= size_ && capacity <= static_cast<int>(slot_of_.size()));
  base_ = rows;
  capacity_ = capacity;
  id_at_.resize(capacity, -1);
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

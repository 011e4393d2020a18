// NeuronMatrix: append at the end, delete by moving the last row in.
#include "cache/neuron_matrix.h"

#include <algorithm>
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
  id_at_.reserve(n_neurons);  // Relocate may grow it up to n_neurons: no reallocation
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

uint64_t NeuronMatrix::Relocate(char* rows, int capacity) {
  assert(rows_.data() == nullptr && capacity >= size_ && capacity <= static_cast<int>(slot_of_.size()));
  const int64_t diff = rows - base_;
  assert(diff % static_cast<int64_t>(row_bytes_) == 0);
  const int64_t d = diff / static_cast<int64_t>(row_bytes_);  // the new base, in old slots
  const int n = size_;
  uint64_t copied = 0;
  if (n > 0 && d != 0) {
    if (d >= n || -d >= n) {  // no overlap: every row moves, keeping its slot
      std::memcpy(rows, base_, static_cast<size_t>(n) * row_bytes_);
      copied = static_cast<uint64_t>(n) * row_bytes_;
    } else if (d > 0) {
      // Old slots [0, d) fall before the new base; they go to the new slots
      // [n - d, n), just past the old last row. Old slot s >= d is new s - d.
      std::memcpy(base_ + static_cast<int64_t>(n) * row_bytes_, base_, static_cast<size_t>(d) * row_bytes_);
      std::rotate(id_at_.begin(), id_at_.begin() + d, id_at_.begin() + n);
      copied = static_cast<uint64_t>(d) * row_bytes_;
    } else {
      // Old slots [n - k, n) fall past the new first n rows; they go to the
      // new slots [0, k), just before the old base. Old slot s < n - k is new s + k.
      const int64_t k = -d;
      std::memcpy(rows, base_ + (n - k) * static_cast<int64_t>(row_bytes_), static_cast<size_t>(k) * row_bytes_);
      std::rotate(id_at_.begin(), id_at_.begin() + (n - k), id_at_.begin() + n);
      copied = static_cast<uint64_t>(k) * row_bytes_;
    }
    for (int s = 0; s < n; ++s) slot_of_[id_at_[s]] = s;
  }
  base_ = rows;
  capacity_ = capacity;
  id_at_.resize(capacity, -1);
  return copied;
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

void NeuronMatrix::Detach(int id) {
  const int slot = slot_of_[id];
  assert(slot >= 0);
  slot_of_[id] = -1;
  id_at_[slot] = -1;
}

void NeuronMatrix::Attach(int id, int slot) {
  assert(slot_of_[id] < 0);
  if (slot == size_) {
    Append(id);
    return;
  }
  assert(slot >= 0 && slot < size_ && id_at_[slot] < 0);
  id_at_[slot] = id;
  slot_of_[id] = slot;
}

void NeuronMatrix::FillHoles() {
  for (int s = size_ - 1; s >= 0; --s) {
    if (id_at_[s] >= 0) continue;
    const int last = size_ - 1;
    if (s != last) {  // holes above s are filled already: the last row is a neuron
      std::memcpy(Row(s), Row(last), row_bytes_);
      bytes_moved_ += row_bytes_;
      const int moved = id_at_[last];
      id_at_[s] = moved;
      slot_of_[moved] = s;
      id_at_[last] = -1;
    }
    size_ = last;
  }
}

void NeuronMatrix::Clear() {
  for (int s = 0; s < size_; ++s) {
    if (id_at_[s] >= 0) slot_of_[id_at_[s]] = -1;  // (a hole holds none)
    id_at_[s] = -1;
  }
  size_ = 0;
}

}  // namespace llmflash

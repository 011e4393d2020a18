// NeuronMatrix: the preallocated DRAM home of one layer's resident FFN
// neurons (the paper's Section 3.3).
//
// Row s holds the bundle record of neuron ids()[s]. Rows 0..size()-1 are in
// use. Appending takes the next free row; deleting a neuron moves the last
// row into its slot, so the used rows stay dense and nothing is ever
// reallocated after Init. Rows are aligned to 64 bytes, and to 4096 bytes
// when the row size is a multiple of 4096, so O_DIRECT reads can land in
// them directly.
//
// Thread-safety: not thread-safe; each Session owns its matrices.
#ifndef LLMFLASH_CACHE_NEURON_MATRIX_H_
#define LLMFLASH_CACHE_NEURON_MATRIX_H_

#include <cstdint>
#include <vector>

#include "llmflash/status.h"
#include "util/aligned_buffer.h"

namespace llmflash {

class NeuronMatrix {
 public:
  // Allocates `capacity` rows of `row_bytes` for neuron ids in [0, n_neurons).
  Status Init(int n_neurons, int capacity, uint64_t row_bytes);
  // The same over `capacity` rows at `rows`, owned by the caller (a session's
  // arena shared by all layers; aligned as above).
  Status InitView(int n_neurons, int capacity, uint64_t row_bytes, char* rows);
  // Views: moves the view to `rows`, a whole number of rows away in the same
  // arena, with `capacity` >= size() rows. Rows are a set, not a sequence: a
  // row that already lies inside the new first size() rows stays where it is
  // (its slot renumbered), and only the others are copied into the rest, so
  // a shift by k rows copies min(k, size()) rows, not size(). The caller
  // ensures the destination holds nothing still needed. Returns the bytes
  // copied; allocates nothing.
  uint64_t Relocate(char* rows, int capacity);

  int size() const { return size_; }
  int capacity() const { return capacity_; }
  int free_rows() const { return capacity_ - size_; }
  uint64_t row_bytes() const { return row_bytes_; }

  bool Contains(int id) const { return slot_of_[id] >= 0; }
  int SlotOf(int id) const { return slot_of_[id]; }  // -1: not resident
  int IdAt(int slot) const { return id_at_[slot]; }
  char* Row(int slot) { return base_ + static_cast<uint64_t>(slot) * row_bytes_; }
  const char* Row(int slot) const { return base_ + static_cast<uint64_t>(slot) * row_bytes_; }

  // Claims the next free row for `id` (not resident; free_rows() > 0) and
  // returns its slot. The caller fills the row.
  int Append(int id);
  // Deletes resident neuron `id` by moving the last row into its slot.
  void Remove(int id);
  // Deletes every neuron (no rows move).
  void Clear();

  // In-place replacement, for rows about to be read again: Detach deletes
  // resident `id` but leaves its slot a hole (nothing moves); Attach(id,
  // slot) gives a hole, or the next free row (slot == size()), to `id`.
  // Holes are for the caller to fill before anything else looks at the
  // matrix; FillHoles closes the ones left the way Remove would.
  void Detach(int id);
  void Attach(int id, int slot);
  void FillHoles();

  // Bytes copied by Remove since Init: the cost of keeping rows dense.
  uint64_t bytes_moved() const { return bytes_moved_; }
  // The rows' address, to check that it never changes between rebases.
  const void* storage() const { return base_; }

 private:
  Status Shape(int n_neurons, int capacity, uint64_t row_bytes);
  AlignedBuffer rows_;  // owned rows (Init), empty for views
  char* base_ = nullptr;
  std::vector<int32_t> slot_of_;  // per neuron id
  std::vector<int32_t> id_at_;    // per slot
  uint64_t row_bytes_ = 0;
  int capacity_ = 0;
  int size_ = 0;
  uint64_t bytes_moved_ = 0;
};

}  // namespace llmflash

#endif  // LLMFLASH_CACHE_NEURON_MATRIX_H_

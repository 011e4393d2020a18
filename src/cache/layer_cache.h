// LayerCache: one layer's neuron matrix driven by its window.
//
// Per token it answers two questions: which rows can be computed right away
// (active neurons already resident) and which neurons must be read. Neurons
// that left the window are deleted first; when the rows still do not
// suffice, MakeRoom deletes the least recently used neurons that the current
// token does not need. Reading and computing are the caller's business.
//
// Thread-safety: not thread-safe; one per layer per Session.
#ifndef LLMFLASH_CACHE_LAYER_CACHE_H_
#define LLMFLASH_CACHE_LAYER_CACHE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "cache/neuron_matrix.h"
#include "cache/window.h"
#include "llmflash/status.h"

namespace llmflash {

class LayerCache {
 public:
  // `rows` (optional): the matrix is a view of `capacity` rows there.
  // `half_life` > 0: under pressure, evict the neurons least used lately
  // (uses decayed with that half-life, in tokens) rather than the least
  // recently used, and keep neurons that left the window while rows last.
  Status Init(int n_neurons, int capacity, uint64_t row_bytes, int window_k,
              char* rows = nullptr, double half_life = 0);

  // Starts token `t` needing `active` (sorted, unique ids). Fills
  // `resident_slots` with the rows of active neurons already resident and
  // `missing` with the active ids to read, in increasing order.
  void BeginToken(int64_t t, std::span<const int32_t> active,
                  std::vector<int32_t>* resident_slots,
                  std::vector<int32_t>* missing);

  // Deletes resident neurons that token `t` does not use, least recently used
  // first, until `want` rows are free or none is left to delete. Returns the
  // number of free rows.
  // `keep_since`: neurons used at or after this token are not deleted either.
  int MakeRoom(int want, int64_t t, int64_t keep_since = INT64_MAX);
  // MakeRoom that leaves the deleted neurons' rows where they are, as holes
  // (NeuronMatrix::Detach) listed in `holes` in slot order, for rows about
  // to be read: no row is copied. The caller fills every hole (Attach) or
  // closes them (NeuronMatrix::FillHoles). Returns free rows + holes.
  int MakeRoomInPlace(int want, int64_t t, std::vector<int32_t>* holes);

  // Deletes the least recently used neurons until at most `rows` remain.
  void EvictTo(int rows);

  // Neurons touched for token t on a guess that token t turned out not to
  // use: they count as used by t-1, so MakeRoom may delete them first among
  // the window's neurons.
  void Untouch(std::span<const int32_t> ids, int64_t t) {
    for (int32_t id : ids) {
      if (window_.UsedAt(id, t)) window_.Set(id, t - 1);
    }
  }

  // Records that `id` was last used by token t (a batch's neurons: the last
  // of its tokens that used each).
  void SetLastUsed(int32_t id, int64_t t) { window_.Set(id, t); }

  NeuronMatrix& matrix() { return matrix_; }
  const NeuronMatrix& matrix() const { return matrix_; }
  const Window& window() const { return window_; }
  void Reset();

 private:
  // Removes the `count` least recently used neurons of scratch_ (all of
  // them when it holds fewer).
  void RemoveOldestCandidates(size_t count);
  // The `count` candidates of scratch_ to delete first (all when it holds fewer).
  void SelectVictims(size_t count);
  // scratch_ = the neurons MakeRoom(want, t, keep_since) deletes; false
  // (and nothing chosen) when `want` rows are free already.
  bool CollectVictims(int want, int64_t t, int64_t keep_since);

  NeuronMatrix matrix_;
  Window window_;
  std::vector<int32_t> scratch_;
  int64_t now_ = 0;  // the token being served (for frequency scores)
};

// Gives layer l rows[l] rows, the layers' rows lying one after another in
// `arena` (stride bytes each) as they did before: layers that shrink drop
// their least recently used neurons, and each layer's rows are moved to its
// new place, copying only the rows that fall outside it (a layer whose start
// moves by k rows copies at most k rows). Allocates nothing; the arena must
// hold the sum of rows.
// Returns the bytes moved.
uint64_t ResizeLayers(std::span<LayerCache> layers, char* arena, uint64_t stride,
                  std::span<const int> rows);

}  // namespace llmflash

#endif  // LLMFLASH_CACHE_LAYER_CACHE_H_

// NeuronLoader: owns where every layer's FFN neurons live and how they get
// there (the paper's Sections 3.1-3.3 without the math).
//
// One neuron matrix per layer, all in one preallocated arena; a window per
// layer that decides what stays resident; the bundle file read through an
// IoBackend. For layer l at token t needing `active` neurons, Load() makes
// them resident part by part and hands each part to the caller's compute
// function as soon as its rows are in DRAM:
//   - the mapped backend: the layer's records on the mapping, nothing copied;
//   - everything fits: the resident rows (while the missing ones are read on
//     the I/O thread, for big layers), then the rows just read;
//   - more missing neurons than free rows: the resident rows, then the rest
//     streamed through two halves of a region of free rows, the next half
//     read while the current one is computed; the last two parts stay
//     resident (sparse layers), or nothing does (dense layers).
// The loader keeps the caches consistent on every path: rows whose read
// failed are dropped, so an I/O error leaves the session usable. It also
// owns prefetch (reading a guess of the next layer's neurons while this one
// computes), re-sharing rows between layers, and the I/O accounting in
// TokenStats (bytes, operations, time waited and hidden).
//
// Thread-safety: not thread-safe; one per Session. Reads run on the
// backend's I/O thread while the caller computes.
#ifndef LLMFLASH_CACHE_NEURON_LOADER_H_
#define LLMFLASH_CACHE_NEURON_LOADER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cache/layer_cache.h"
#include "format/manifest.h"
#include "io/io_backend.h"
#include "llmflash/stats.h"
#include "util/aligned_buffer.h"

namespace llmflash {

struct NeuronLoaderOptions {
  int capacity = 0;             // neuron-matrix rows per layer
  std::vector<int> capacities;  // per layer; when set, overrides `capacity`
  int window = 4;               // tokens a used neuron stays resident
  // > 0: evictions under pressure keep the neurons used most lately, uses
  // decaying with this half-life in tokens (LayerCache::Init); 0: LRU.
  double frequency_half_life = 0;
  // Missing neurons are read into the rows of the neurons they evict, which
  // stay where they are (LayerCache::MakeRoomInPlace), instead of the
  // matrix being kept dense by copying its last rows into the holes: for
  // mixtures of experts, which evict and read whole experts every token.
  bool replace_in_place = false;
  IoBackendKind backend = IoBackendKind::kAuto;
  IoOptions io;
};

// Rows of one layer in DRAM: row slots[k] of `base` (rows `row_bytes`
// apart) holds the bundle record of neuron ids[k].
struct ReadyRows {
  const char* base = nullptr;
  uint64_t row_bytes = 0;
  std::span<const int32_t> slots;
  std::span<const int32_t> ids;
};

struct LoadOptions {
  // Hand over every resident row (the whole window), not only the active
  // ones: more neurons computed, no extra reads.
  bool whole_window = false;
  // When at least this many active rows are resident, they are handed over
  // while the missing ones are read (-1: never; the caller knows when its
  // compute is worth overlapping).
  int64_t overlap_min_rows = -1;
  // A layer that does not fit streams through halves of about 8 MiB (as
  // dense layers do) rather than through the free rows (at least 64): a
  // batch's parts carry n times a token's products, and small parts spend
  // their time waiting, one read batch in flight at a time.
  bool wide_stream = false;
  // Neurons per token this layer needed (a batch: per input), for sharing
  // rows between layers; -1: active.size().
  double demand = -1;
};

class NeuronLoader {
 public:
  // Called on each part; parts are disjoint and together cover `active`
  // (or the window).
  using ComputeFn = std::function<void(const ReadyRows&)>;

  NeuronLoader() = default;
  NeuronLoader(const NeuronLoader&) = delete;
  NeuronLoader& operator=(const NeuronLoader&) = delete;
  ~NeuronLoader() { Drain(); }

  // Opens the bundle file and preallocates every layer's rows.
  Status Init(const Manifest& m, const std::string& dir, const NeuronLoaderOptions& options);

  // Makes layer l's `active` neurons (sorted, unique; all_ids() for a dense
  // layer) resident for token t and calls `compute` on each part as it
  // lands, resident parts in neuron order. On an I/O error the rows being
  // filled are dropped and the error returned; parts already handed over
  // stay computed.
  Status Load(int layer, int64_t t, std::span<const int32_t> active, const LoadOptions& options,
              const ComputeFn& compute, TokenStats* stats);

  // Starts reading, on the I/O thread, the neurons of `ids` (sorted, unique)
  // that layer l does not hold, for token t; they count as used by t.
  // Load(l, t, ...) waits for them and reads only what is still missing.
  // Rows are taken only from neurons token t does not use.
  Status Prefetch(int layer, int64_t t, std::span<const int32_t> ids, TokenStats* stats);
  bool can_prefetch() const { return reuse_; }

  // Call before token t's first layer. At tokens 1, 2, 4, 8, ... the rows may
  // be re-shared between layers in proportion to the neurons each layer has
  // been needing, when more than 5% of them would change layer: layers that
  // shrink drop their least recently used neurons, and the rows are moved
  // within the arena (nothing is allocated). Time goes to stats->memory_ms.
  // The schedule counts tokens since Init or Reset.
  void BeginToken(TokenStats* stats);

  // Records that layer l's neuron `id` was last used by token t (a batch:
  // the last of its tokens that used it).
  void SetLastUsed(int layer, int32_t id, int64_t t) { layers_[layer].SetLastUsed(id, t); }

  // Empties every layer and restores the planned split of rows.
  void Reset();
  // false: every layer starts each token with an empty matrix (naive mode).
  void set_reuse(bool on) { reuse_ = on; }
  bool reuse() const { return reuse_; }

  std::vector<int> capacities() const;  // rows of each layer now
  uint64_t bytes_moved() const;         // rows copied in DRAM since Init
  const std::vector<int32_t>& all_ids() const { return all_ids_; }
  const LayerCache& layer(int l) const { return layers_[l]; }
  const IoBackend& io() const { return *io_; }
  // Test seam: replaces the backend (e.g. with a fault-injecting wrapper).
  void set_io(std::unique_ptr<IoBackend> io) {
    Drain();
    io_ = std::move(io);
  }
  std::unique_ptr<IoBackend> release_io() {
    Drain();
    return std::move(io_);
  }

 private:
  // Waits for layer l's prefetch, if one is in flight, and accounts for it.
  Status FinishPrefetch(int layer, std::span<const int32_t> active, TokenStats* stats);
  // Waits for any prefetch and drops its rows if it failed.
  void Drain();
  // Gives `ids` (sorted) the holes of holes_ then the next free rows, their
  // slots in new_slots_; requests for them in `requests`.
  void AttachMissing(int layer, std::span<const int32_t> ids, std::vector<ReadRequest>* requests);
  // Requests reading `ids` (sorted) of layer l into rows `slots` (same order),
  // one per run of consecutive neurons in consecutive rows.
  void BuildRequests(int layer, std::span<const int32_t> ids, std::span<const int32_t> slots,
                     std::vector<ReadRequest>* requests);
  // Waits for the batch in flight and adds it to stats.
  Status WaitRead(TokenStats* stats);
  // Appends `ids` to layer l's matrix and reads them into the new rows; on
  // an I/O error the rows are dropped again.
  Status LoadRows(int layer, std::span<const int32_t> ids, TokenStats* stats);
  // slots_ = the rows of `active` neurons resident in layer l, in neuron order.
  void ResidentSlots(int layer, std::span<const int32_t> active);
  // Hands over rows `slots` of layer l with their neurons.
  void HandOver(int layer, std::span<const int32_t> slots, const ComputeFn& compute);
  Status ReadWhileComputing(int layer, std::span<const int32_t> active, const ComputeFn& compute,
                            TokenStats* stats);
  // missing_ streamed through a region of free rows (see the file comment).
  Status Stream(int layer, bool keep_last, int region, const ComputeFn& compute, TokenStats* stats);
  Status StreamSparse(int layer, std::span<const int32_t> active, bool wide, const ComputeFn& compute,
                      TokenStats* stats);
  // Rows in each half of a wide stream region (about 8 MiB).
  int WideHalf() const;
  Status StreamDense(int layer, std::span<const int32_t> active, const ComputeFn& compute,
                     TokenStats* stats);

  const Manifest* m_ = nullptr;
  std::vector<LayerCache> layers_;
  std::unique_ptr<IoBackend> io_;
  AlignedBuffer arena_;          // every layer's rows, layer after layer
  std::vector<int> planned_;     // each layer's rows as Init gave them
  std::vector<double> demand_;   // per layer: recent neurons per token
  bool demand_seen_ = false;
  int64_t tokens_ = 0;           // BeginToken calls since Init or Reset
  uint64_t rebalance_moved_ = 0; // bytes ResizeLayers moved
  bool reuse_ = true;
  bool in_place_ = false;
  std::vector<int32_t> all_ids_, resident_slots_, missing_, slots_, ids_, holes_, new_slots_;
  std::vector<ReadRequest> requests_;
  struct Prefetching {
    int layer = -1;                // layer whose rows are being read, -1: none
    int64_t t = 0;
    std::vector<int32_t> ids;      // being read
    std::vector<int32_t> guessed;  // the whole guess, resident or not
    std::vector<int32_t> unused;   // scratch: guessed but not active
    std::vector<ReadRequest> requests;
  } prefetch_;
};

}  // namespace llmflash

#endif  // LLMFLASH_CACHE_NEURON_LOADER_H_

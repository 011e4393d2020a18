// FlashFfn: the FFN of every layer computed from neuron matrices whose rows
// are read from the bundle file on demand (the paper's whole Section 3).
//
// For each layer and token: the window decides what stays resident, active
// neurons already in the matrix are computed at once, missing ones are read
// (runs of consecutive neurons coalesced into one request, many requests in
// flight) into newly appended rows and computed. When a layer's active
// neurons exceed the matrix capacity the layer is streamed: read a chunk,
// compute it, reuse the rows for the next chunk.
//
// Thread-safety: not thread-safe; one per Session.
#ifndef LLMFLASH_MODEL_FLASH_FFN_H_
#define LLMFLASH_MODEL_FLASH_FFN_H_

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cache/layer_cache.h"
#include "format/manifest.h"
#include "io/io_backend.h"
#include "llmflash/stats.h"
#include "kernels/kernels.h"
#include "util/aligned_buffer.h"
#include "util/thread_pool.h"

namespace llmflash {

// Sees every FFN evaluation: the layer's input x, the neurons computed and
// their activations h (same order). Used to record calibration data and to
// measure predictors; never on the hot path unless installed.
class FfnObserver {
 public:
  virtual ~FfnObserver() = default;
  virtual void OnFfn(int layer, const float* x, std::span<const int32_t> ids, const float* h) = 0;
};

struct FlashFfnOptions {
  int capacity = 0;  // neuron-matrix rows per layer
  std::vector<int> capacities;  // per layer; when set, overrides `capacity`
  int window = 4;    // tokens a used neuron stays resident
  ThreadPool* pool = nullptr;  // splits the FFN math (optional)
  IoBackendKind backend = IoBackendKind::kAuto;
  IoOptions io;
};

class FlashFfn {
 public:
  // Opens the bundle file and preallocates one neuron matrix per layer.
  Status Init(const Manifest& m, const std::string& dir, const FlashFfnOptions& options);

  // out += FFN_l(x) at token t over `active` neurons (sorted, unique; pass
  // all_ids() for a dense layer). On an I/O error the rows being filled are dropped,
  // so the caches stay consistent and the session usable.
  // `up_bias` (optional, ffn_dim floats) is the up projection's bias.
  Status Compute(int layer, int64_t t, std::span<const int32_t> active, const float* x,
                 float* out, TokenStats* stats, const float* up_bias = nullptr);

  // The FFN of a batch of n inputs (x and out: n x dim, row-major), the
  // tokens t - n + 1 .. t of a prompt. `active` (sorted, unique) is the union
  // of their neurons: residency, reads and streaming are Compute's for one
  // token needing `active`, each row read once for the whole batch. With
  // `mask` (n x ffn_dim), input b computes only the neurons its row marks,
  // so each output is what Compute over its own neurons gives (up to float
  // rounding); without, every input computes every neuron of `active`.
  // Afterwards each neuron counts as last used by the last input that
  // computed it, so the window after a prompt is the one token-by-token
  // decoding would leave. No observer may be installed (it sees one token).
  Status ComputeBatch(int layer, int64_t t, std::span<const int32_t> active, const float* x, int n,
                      const uint8_t* mask, float* out, TokenStats* stats,
                      const float* up_bias = nullptr);
  bool has_observer() const { return observer_ != nullptr; }

  // Call before token t's first layer. At tokens 1, 2, 4, 8, ... the rows may
  // be re-shared between layers in proportion to the active neurons each
  // layer has been seeing, when more than 5% of them would change layer:
  // layers that shrink drop their least recently used
  // neurons, and the layers' rows are moved within the session's arena
  // (nothing is allocated). Time goes to stats->memory_ms.
  // The schedule counts tokens since Init or Reset; Reset also restores the
  // planned split and forgets what the layers needed.
  void BeginToken(TokenStats* stats);
  // Rows of each layer now.
  std::vector<int> capacities() const;
  // Neuron-matrix bytes copied in DRAM since Init (deletions, rebalancing).
  uint64_t bytes_moved() const;

  // Starts reading, on a background thread, the neurons of `ids` (sorted,
  // unique) that layer l does not hold, for token t; they count as used by t.
  // Compute(l, t, ...) waits for them and reads only what is still missing.
  // Rows are taken only from neurons token t does not use.
  Status Prefetch(int layer, int64_t t, std::span<const int32_t> ids, TokenStats* stats);
  bool can_prefetch() const { return reuse_; }

  const std::vector<int32_t>& all_ids() const { return all_ids_; }
  void Reset();
  void set_observer(FfnObserver* o) { observer_ = o; }
  // Compute over every resident row (the whole window) rather than only the
  // active neurons: more neurons computed, no extra reads.
  void set_compute_window(bool on) { compute_window_ = on; }
  // false: every layer starts each token with an empty matrix (naive mode).
  void set_reuse(bool on) { reuse_ = on; }
  const IoBackend& io() const { return *io_; }
  const LayerCache& layer(int l) const { return layers_[l]; }
  // Test seam: replaces the backend (e.g. with a fault-injecting wrapper).
  void set_io(std::unique_ptr<IoBackend> io) {
    Drain();
    io_ = std::move(io);
  }
  std::unique_ptr<IoBackend> release_io() {
    Drain();
    return std::move(io_);
  }
  ~FlashFfn() { Drain(); }

 private:
  // Waits for layer l's prefetch, if one is in flight, and accounts for it.
  Status FinishPrefetch(int layer, std::span<const int32_t> active, TokenStats* stats);
  // Waits for any prefetch and drops its rows if it failed.
  void Drain();
  void BuildRequests(int layer, std::span<const int32_t> ids, int first_slot,
                     std::vector<ReadRequest>* requests);
  Status ReadRows(int layer, std::span<const int32_t> ids, int first_slot, TokenStats* stats);
  Status ComputeWhileReading(int layer, std::span<const int32_t> active, const float* x,
                             float* out, TokenStats* stats);
  Status Stream(int layer, int64_t t, std::span<const int32_t> active, const float* x,
                float* out, TokenStats* stats);
  Status StreamDense(int layer, std::span<const int32_t> active, const float* x, float* out,
                     TokenStats* stats);
  void ComputeRows(int layer, const char* base, uint64_t row_bytes, std::span<const int32_t> slots,
                   std::span<const int32_t> ids, const float* x, float* out, TokenStats* stats);
  // Appends `ids` to layer l's matrix and reads them into the new rows; on
  // an I/O error the rows are dropped again, so the matrix stays consistent.
  Status LoadRows(int layer, std::span<const int32_t> ids, TokenStats* stats);
  Status ComputeMapped(int layer, const float* x, float* out, TokenStats* stats);
  // requests_ read on the I/O worker while the caller computes; the wait
  // counts as I/O time, the rest of the read's duration as hidden.
  void StartAsyncRead();
  Status WaitAsyncRead(TokenStats* stats);
  struct AsyncRead {
    IoCounters counters;
    double busy_ms = 0;
  } async_;
  const float* up_bias_ = nullptr;  // of the layer being computed
  struct Batch {
    int n = 1;                      // inputs of the current Compute
    const uint8_t* mask = nullptr;  // n x ffn_dim, or none
    double mean_active = 0;         // neurons per input, for the rows' split
  } batch_;
  AlignedBuffer arena_;             // every layer's rows, layer after layer
  std::vector<double> demand_;      // per layer: recent active neurons per token
  bool demand_seen_ = false;
  std::vector<int> planned_;        // each layer's rows as Init gave them
  int64_t tokens_ = 0;              // BeginToken calls since Init or Reset
  uint64_t rebalance_moved_ = 0;    // bytes ResizeLayers moved
  // Computes rows `slots_` of layer l, reporting them to the observer.
  void ComputeSlots(int layer, const float* x, float* out, TokenStats* stats);

  const Manifest* m_ = nullptr;
  std::vector<LayerCache> layers_;
  std::unique_ptr<IoBackend> io_;
  RecordLayout record_;
  std::vector<int32_t> all_ids_, resident_slots_, missing_, slots_;
  std::vector<ReadRequest> requests_;
  std::vector<float> h_, bias_, scratch_;
  ThreadPool* pool_ = nullptr;
  struct Prefetching {
    Worker worker;
    int layer = -1;  // layer whose rows are being read, -1: none
    std::vector<int32_t> ids;       // being read
    std::vector<int32_t> guessed;   // the whole guess, resident or not
    std::vector<int32_t> unused;    // scratch: guessed but not active
    int64_t t = 0;
    std::vector<ReadRequest> requests;
    IoCounters counters;
    double busy_ms = 0;  // the read's duration on the worker
  } prefetch_;
  std::vector<int32_t> observed_ids_;
  FfnObserver* observer_ = nullptr;
  bool compute_window_ = false;
  bool reuse_ = true;
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_FLASH_FFN_H_

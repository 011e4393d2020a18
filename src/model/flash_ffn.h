// FlashFfn: the FFN of every layer computed from neuron matrices whose rows
// are read from the bundle file on demand (the paper's whole Section 3).
//
// The math over resident rows lives here; where the rows live and how they
// are read (window, evictions, reads, prefetch, streaming, rollback, I/O
// accounting) is the NeuronLoader's (cache/neuron_loader.h). For each layer
// and token the loader hands over the active neurons part by part as their
// rows land, and each part is added to the output.
//
// Thread-safety: not thread-safe; one per Session.
#ifndef LLMFLASH_MODEL_FLASH_FFN_H_
#define LLMFLASH_MODEL_FLASH_FFN_H_

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cache/neuron_loader.h"
#include "format/manifest.h"
#include "io/io_backend.h"
#include "llmflash/stats.h"
#include "kernels/kernels.h"
#include "util/aligned_buffer.h"
#include "util/thread_pool.h"

namespace llmflash {

// Sees every FFN evaluation: the layer, the position t of the token in the
// context, its input x, the neurons computed and their activations h (same
// order). A layer whose rows are streamed in parts is reported part by part
// with the same t; a batch, input by input within each part (so one token's
// parts need not be adjacent); OnLayerEnd follows the layer's last part.
// Used to record calibration data and to measure predictors; never on the
// hot path unless installed.
class FfnObserver {
 public:
  virtual ~FfnObserver() = default;
  virtual void OnFfn(int layer, int64_t t, const float* x, std::span<const int32_t> ids, const float* h) = 0;
  virtual void OnLayerEnd(int /*layer*/) {}
};

struct FlashFfnOptions {
  NeuronLoaderOptions loader;  // rows per layer, window, I/O backend
  ThreadPool* pool = nullptr;  // splits the FFN math (optional)
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
  // decoding would leave. With an observer, each input is computed alone (the
  // rows still read once) so that the observer sees its activations.
  Status ComputeBatch(int layer, int64_t t, std::span<const int32_t> active, const float* x, int n,
                      const uint8_t* mask, float* out, TokenStats* stats,
                      const float* up_bias = nullptr);
  bool has_observer() const { return observer_ != nullptr; }

  // A mixture-of-experts layer (config n_experts > 0): expert e is the FFN
  // over neurons [e F, (e + 1) F). Input b of the n in x (n x dim, tokens
  // t - n + 1 .. t) routes to the k experts experts[b k .. b k + k) with
  // weights weights[b k ..]: out_b += sum_j weights_j Expert_j(x_b). The
  // union of the routed experts' neurons is made resident and read once;
  // each expert computes only the inputs routed to it. Afterwards each
  // neuron counts as last used by the last input that routed to its expert.
  Status ComputeExperts(int layer, int64_t t, const int32_t* experts, const float* weights, int k,
                        const float* x, int n, float* out, TokenStats* stats);

  // Call before token t's first layer: may re-share rows between layers
  // (NeuronLoader::BeginToken).
  void BeginToken(TokenStats* stats) { loader_.BeginToken(stats); }
  // Rows of each layer now.
  std::vector<int> capacities() const { return loader_.capacities(); }
  // Neuron-matrix bytes copied in DRAM since Init (deletions, rebalancing).
  uint64_t bytes_moved() const { return loader_.bytes_moved(); }

  // Starts reading layer l's guessed neurons `ids` for token t on the I/O
  // thread (NeuronLoader::Prefetch); Compute(l, t, ...) waits for them.
  Status Prefetch(int layer, int64_t t, std::span<const int32_t> ids, TokenStats* stats) {
    return loader_.Prefetch(layer, t, ids, stats);
  }
  bool can_prefetch() const { return loader_.can_prefetch(); }

  const std::vector<int32_t>& all_ids() const { return loader_.all_ids(); }
  void Reset() { loader_.Reset(); }
  void set_observer(FfnObserver* o) { observer_ = o; }
  // Compute over every resident row (the whole window) rather than only the
  // active neurons: more neurons computed, no extra reads.
  void set_compute_window(bool on) { compute_window_ = on; }
  // false: every layer starts each token with an empty matrix (naive mode).
  void set_reuse(bool on) { loader_.set_reuse(on); }
  const IoBackend& io() const { return loader_.io(); }
  const LayerCache& layer(int l) const { return loader_.layer(l); }
  // Test seam: replaces the backend (e.g. with a fault-injecting wrapper).
  void set_io(std::unique_ptr<IoBackend> io) { loader_.set_io(std::move(io)); }
  std::unique_ptr<IoBackend> release_io() { return loader_.release_io(); }

 private:
  // out += the FFN over `rows`, reporting them to the observer.
  void ComputeRows(int layer, const ReadyRows& rows, const float* x, float* out, TokenStats* stats);
  // The batch's inputs one at a time over the rows each computes, each
  // reported to the observer.
  void ObserveBatch(int layer, const ReadyRows& rows, const float* x, float* out, const float* bias);
  // ComputeExperts' work on the rows of one part: per expert among them,
  // the inputs routed to it gathered, computed, and added with their weights.
  void ComputeExpertRows(const ReadyRows& rows, const float* x, float* out, TokenStats* stats);

  NeuronLoader loader_;
  const Manifest* m_ = nullptr;
  RecordLayout record_;
  ThreadPool* pool_ = nullptr;
  const float* up_bias_ = nullptr;  // of the layer being computed
  int64_t t_ = 0;                   // the token being computed (a batch: its last)
  int layer_ = 0;                   // the layer ComputeExperts is computing
  struct Batch {
    int n = 1;                      // inputs of the current Compute
    const uint8_t* mask = nullptr;  // n x ffn_dim, or none
    double mean_active = 0;         // neurons per input, for the rows' split
  } batch_;
  std::vector<float> h_, bias_, scratch_, sub_bias_;
  std::vector<int32_t> sub_slots_, sub_ids_;
  struct Routing {
    const int32_t* experts = nullptr;  // n x k
    const float* weights = nullptr;    // n x k
    int k = 0, n = 0;
  } routing_;
  // Per expert: its rows in the part being computed; the inputs routed to it.
  std::vector<std::vector<int32_t>> expert_slots_, expert_ids_;
  std::vector<std::vector<std::pair<int, float>>> expert_inputs_;
  std::vector<int32_t> experts_used_, expert_active_;
  std::vector<float> expert_x_, expert_out_;
  FfnObserver* observer_ = nullptr;
  bool compute_window_ = false;
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_FLASH_FFN_H_

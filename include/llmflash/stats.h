// Per-session counters: latency per token split by stage, and flash I/O.
//
// Updated by Session::Generate; read between calls. Not thread-safe: a Stats
// belongs to one Session.
#ifndef LLMFLASH_STATS_H_
#define LLMFLASH_STATS_H_

#include <cstdint>
#include <vector>

namespace llmflash {

// One forward pass: one token through every layer, or a batch of a
// prompt's tokens together (`batch` > 1; its counters are the batch's).
struct TokenStats {
  int batch = 1;          // tokens this pass ran
  bool prompt = false;    // it ran text appended to the context (prefill), not a sampled token
  double total_ms = 0;    // wall time of the whole forward pass
  double io_ms = 0;       // time spent waiting for flash reads to complete
  double memory_ms = 0;   // window bookkeeping and neuron-matrix updates
  double predictor_ms = 0;  // running the sparsity predictors
  double compute_ms = 0;  // the rest: attention, FFN math, logits
  double io_hidden_ms = 0;  // read time that overlapped compute (lookahead reads)
  uint64_t bytes_read = 0;     // FFN record bytes requested from the bundle file
  uint64_t device_bytes = 0;   // bytes the device transferred (O_DIRECT spans are
                               // 4 KiB-aligned, so small records cost more)
  uint64_t read_ops = 0;     // read requests submitted to the backend
  uint64_t neurons_loaded = 0;    // neurons copied into neuron matrices
  uint64_t neurons_computed = 0;  // neurons whose FFN contribution was computed (a batch:
                                  // (neuron, token) products)
  uint64_t neurons_prefetched = 0;  // of neurons_loaded: read ahead by the lookahead
  uint64_t prefetch_unused = 0;     // of those: not among the layer's active neurons
  uint64_t rows_rebalanced = 0;     // neuron-matrix rows given to other layers before this token
  uint64_t bytes_moved = 0;         // neuron-matrix bytes copied in DRAM: deletions (the last
                                    // row into the freed slot) and rebalancing
  bool lookahead = false;           // this token ran the lookahead (SessionOptions::lookahead)
};

// One call that appended to the context (Generate, Append, AppendTokens,
// Run, Logits).
struct TurnStats {
  uint64_t prompt_tokens = 0;     // tokens it appended and ran before sampling
  uint64_t generated_tokens = 0;  // tokens it sampled
  uint64_t context_before = 0;    // tokens the context held when it started
  double prefill_ms = 0;          // running its prompt tokens
  double ttft_ms = 0;             // from the call to its first sampled token (0: none sampled)
  double decode_ms = 0;           // from then to the end of the call
};

struct Stats {
  std::vector<TokenStats> tokens;  // one entry per forward pass, in order
  std::vector<TurnStats> turns;    // one entry per call, in order
  uint64_t prompt_tokens = 0;      // tokens run as prompt (appended text)
  uint64_t generated_tokens = 0;   // tokens sampled
  bool direct_io = true;           // false when O_DIRECT was refused
  const char* io_backend = "";     // "io_uring" or "pread"

  void Clear() { *this = Stats{}; }
};

}  // namespace llmflash

#endif  // LLMFLASH_STATS_H_

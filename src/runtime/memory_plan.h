// MemoryPlan: how a DRAM budget is split between what must be resident
// (attention, embeddings, norms), per-session state (KV cache, scratch, I/O
// staging, window bookkeeping) and the neuron matrices, whose capacity is
// what is left. docs/cost-model.md describes the rule.
//
// Thread-safety: a plain value.
#ifndef LLMFLASH_RUNTIME_MEMORY_PLAN_H_
#define LLMFLASH_RUNTIME_MEMORY_PLAN_H_

#include <cstdint>
#include <vector>

#include "format/manifest.h"
#include "io/io_backend.h"
#include "llmflash/options.h"
#include "llmflash/status.h"

namespace llmflash {

struct MemoryPlan {
  uint64_t budget_bytes = 0;
  uint64_t resident_bytes = 0;  // shared by all sessions
  uint64_t state_bytes = 0;     // per session: KV cache and activations
  uint64_t io_bytes = 0;        // per session: I/O staging buffers
  uint64_t bookkeeping_bytes = 0;  // per session: window and slot maps
  uint64_t matrix_bytes = 0;    // per session: all layers' neuron matrices
  std::vector<int> capacities;  // neuron-matrix rows of each layer
  int capacity = 0;             // rows per layer on average (total / layers)
  int max_context = 0;
  int prefill_batch = 1;        // tokens a prompt's forward pass runs together
  uint64_t kv_cache_bytes = 0;  // of state_bytes: the KV cache
  uint64_t batch_bytes = 0;     // of state_bytes: what batches of prefill_batch add to one token's
  int threads = 1;              // each session's pool
  bool streams = false;         // capacity < ffn_dim
  IoOptions io;

  uint64_t SessionBytes() const { return state_bytes + io_bytes + bookkeeping_bytes + matrix_bytes; }
};

// Splits `total_rows` neuron-matrix rows between layers in proportion to each
// layer's expected active neurons (the predictor's per-layer fraction;
// uniform without one). Sessions then follow what they observe (FlashFfn).
std::vector<int> PlanLayerRows(const Manifest& m, uint64_t total_rows);

// Threads each session computes with (ModelOptions::threads, 0: the cores).
int SessionThreads(const ModelOptions& o);

// The KV cache's storage type for these options.
DType KvDType(const ModelOptions& o);

StatusOr<MemoryPlan> PlanMemory(const Manifest& m, uint64_t resident_bytes,
                                const ModelOptions& options);

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_MEMORY_PLAN_H_

// Splitting the DRAM budget.
#include "runtime/memory_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "cache/row_split.h"
#include "model/transformer.h"

namespace llmflash {
namespace {

std::string Mib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f MiB", b / 1048576.0);
  return buf;
}

}  // namespace

std::vector<int> PlanLayerRows(const Manifest& m, uint64_t total_rows) {
  const ModelConfig& c = m.config;
  std::vector<double> want(c.n_layers, 1.0);
  if (m.predictor.present && static_cast<int>(m.predictor.layers.size()) == c.n_layers) {
    for (int l = 0; l < c.n_layers; ++l) want[l] = m.predictor.layers[l].predicted_fraction;
  }
  return SplitRows(total_rows, want, c.ffn_dim);
}

StatusOr<MemoryPlan> PlanMemory(const Manifest& m, uint64_t resident_bytes,
                                const ModelOptions& o) {
  const ModelConfig& c = m.config;
  MemoryPlan p;
  constexpr int kDefaultContextCap = 4096;
  p.max_context = o.max_context == 0 ? std::min(c.max_seq_len, kDefaultContextCap)
                                     : std::min(o.max_context, c.max_seq_len);
  p.resident_bytes = resident_bytes;
  p.state_bytes = Transformer::StateBytes(c, p.max_context);
  p.bookkeeping_bytes = static_cast<uint64_t>(c.n_layers) * c.ffn_dim * (8 + 4 + 4 + 4 + 4);
  const uint64_t stride = m.bundle.record_stride;
  const uint64_t full_layer = stride * c.ffn_dim;

  p.io.direct_io = o.direct_io;
  p.io.queue_depth = o.queue_depth;
  // Staging buffers only serve records that are not 4 KiB multiples; keep
  // them small when the budget is tight.
  uint64_t fixed = resident_bytes + o.max_sessions * (p.state_bytes + p.bookkeeping_bytes);
  uint64_t budget = o.dram_budget_bytes;
  bool roomy = budget == 0 || budget > fixed + o.max_sessions * (full_layer * c.n_layers + (8u << 20));
  p.io.bounce_bytes = roomy ? 256 << 10 : 64 << 10;
  p.io.bounce_slots = roomy ? 16 : 4;
  p.io.max_read_bytes = 1 << 20;
  p.io_bytes = p.io.MemoryBytes();

  const uint64_t per_session_fixed = p.state_bytes + p.bookkeeping_bytes + p.io_bytes;
  if (budget == 0) {
    p.capacities.assign(c.n_layers, c.ffn_dim);
  } else {
    uint64_t need = resident_bytes + o.max_sessions * (per_session_fixed + stride * c.n_layers);
    if (budget < need) {
      return Status::ResourceExhausted(
          "DRAM budget of " + Mib(budget) + " is below the minimum of " + Mib(need) +
          " for this model: resident weights " + Mib(resident_bytes) + ", per session " +
          Mib(per_session_fixed) + " (KV cache for " + std::to_string(p.max_context) +
          " tokens, I/O buffers), plus one neuron per layer; lower max_context or raise the budget");
    }
    uint64_t per_session_matrix = (budget - resident_bytes) / o.max_sessions - per_session_fixed;
    p.capacities = PlanLayerRows(m, per_session_matrix / stride);
  }
  uint64_t total_rows = 0;
  for (int cap : p.capacities) total_rows += cap;
  p.capacity = static_cast<int>(total_rows / c.n_layers);
  p.matrix_bytes = stride * total_rows;
  // An unlimited budget still has to fit the machine: a manifest's context
  // length alone can ask for terabytes of KV cache.
  const uint64_t total = resident_bytes + o.max_sessions * p.SessionBytes();
  const uint64_t ram = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
  if (budget == 0 && total > ram) {
    return Status::ResourceExhausted(
        "the model needs " + Mib(total) + " of DRAM (KV cache for " +
        std::to_string(p.max_context) + " tokens: " + Mib(p.state_bytes) + " per session), more than the " +
        Mib(ram) + " this machine has; set max_context (--max-context) or a DRAM budget");
  }
  p.streams = total_rows < static_cast<uint64_t>(c.ffn_dim) * c.n_layers;
  p.budget_bytes = budget == 0 ? resident_bytes + o.max_sessions * p.SessionBytes() : budget;
  return p;
}

}  // namespace llmflash

// Splitting the DRAM budget.
#include "runtime/memory_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <thread>

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

int SessionThreads(const ModelOptions& o) {
  return o.threads > 0 ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

DType KvDType(const ModelOptions& o) {
  switch (o.kv_cache) {
    case KvCacheType::kF16: return DType::kF16;
    case KvCacheType::kF32: return DType::kF32;
    case KvCacheType::kQ8_0: return DType::kQ8_0;
  }
  return DType::kF32;  // unreachable: every enumerator is handled above
}

StatusOr<MemoryPlan> PlanMemory(const Manifest& m, uint64_t resident_bytes,
                                const ModelOptions& o) {
  const ModelConfig& c = m.config;
  if (o.kv_cache == KvCacheType::kQ8_0 && c.head_dim % 32 != 0) {  // a head's keys are whole blocks
    return Status::InvalidArgument("a q8_0 KV cache needs head_dim a multiple of 32; this model's is " +
                                   std::to_string(c.head_dim) + " (use f16 or f32)");
  }
  MemoryPlan p;
  constexpr int kDefaultContextCap = 4096;
  p.max_context = o.max_context == 0 ? std::min(c.max_seq_len, kDefaultContextCap)
                                     : std::min(o.max_context, c.max_seq_len);
  if (o.max_context == 0 && o.dram_budget_bytes > resident_bytes) {
    // Unasked, the KV cache takes at most a quarter of what the budget
    // leaves beside the resident weights (at least 256 tokens, whole 256s):
    // the rest holds neurons.
    const uint64_t per_token = Transformer::KvCacheBytes(c, 1, KvDType(o));
    const uint64_t fits = (o.dram_budget_bytes - resident_bytes) / 4 / std::max<uint64_t>(1, per_token);
    const int budgeted = static_cast<int>(std::max<uint64_t>(256, fits / 256 * 256));
    p.max_context = std::min(p.max_context, budgeted);
  }
  p.kv_cache_bytes = Transformer::KvCacheBytes(c, p.max_context, KvDType(o));
  p.resident_bytes = resident_bytes;
  p.threads = SessionThreads(o);
  auto state_for = [&](int ctx, int batch) {
    return Transformer::StateBytes(c, ctx, KvDType(o), batch, p.threads);
  };
  // The prompt's micro-batch (docs/cost-model.md, "Prefill"): 64 tokens
  // reuse each weight row 64 times; when the FFN does not fit, every pass
  // reads what is not resident again, so 128 (measured on a 7B shape at 50%,
  // per token: 64 tokens per pass 312 ms, 128 234 ms, 256 300 ms). Halved while
  // its activations and logits would take more than a quarter of what the
  // budget leaves for neurons: halving it doubles what the prompt reads,
  // while the rows it frees serve decoding only (a q4_0 7B at half its size:
  // 128 tokens, 32.7 MiB of 144 MiB of rows, 12.4 prompt tokens/s; 64 tokens,
  // the cap at an eighth, 10.2).
  const bool ffn_fits = o.dram_budget_bytes == 0 ||
                        o.dram_budget_bytes >= resident_bytes + o.max_sessions * (state_for(p.max_context, 1) +
                                                                                m.bundle.record_stride * c.ffn_dim * c.n_layers);
  const int planned_batch = ffn_fits ? 64 : 128;
  p.prefill_batch = std::max(1, std::min(o.prefill_batch > 0 ? o.prefill_batch : planned_batch, p.max_context));
  if (o.prefill_batch == 0 && o.dram_budget_bytes > 0) {
    const uint64_t one = resident_bytes + o.max_sessions * state_for(p.max_context, 1);
    const uint64_t room = o.dram_budget_bytes > one ? o.dram_budget_bytes - one : 0;
    while (p.prefill_batch > 1 &&
           o.max_sessions * (state_for(p.max_context, p.prefill_batch) - state_for(p.max_context, 1)) > room / 4) {
      p.prefill_batch /= 2;
    }
  }
  p.state_bytes = state_for(p.max_context, p.prefill_batch);
  p.batch_bytes = p.state_bytes - state_for(p.max_context, 1);
  // Per neuron: its last use, slot, id at the slot, and scratch; a mixture
  // of experts also its decayed use count (Window's frequency key).
  p.bookkeeping_bytes = static_cast<uint64_t>(c.n_layers) * c.ffn_dim * (8 + 4 + 4 + 4 + 4 + (c.moe() ? 8 : 0));
  const uint64_t stride = m.bundle.record_stride;
  const uint64_t full_layer = stride * c.ffn_dim;

  p.io.direct_io = o.direct_io;
  p.io.queue_depth = o.queue_depth;
  p.io.max_read_bytes = 1 << 20;
  const uint64_t budget = o.dram_budget_bytes;
  // Staging buffers only serve records that are not 4 KiB multiples; keep
  // them small when the budget is tight (cannot hold the whole FFN).
  auto roomy = [&](uint64_t state_bytes) {
    const uint64_t fixed = resident_bytes + o.max_sessions * (state_bytes + p.bookkeeping_bytes);
    return budget == 0 || budget > fixed + o.max_sessions * (full_layer * c.n_layers + (8u << 20));
  };
  auto stage = [&](IoOptions io, bool roomy_budget) {
    io.bounce_bytes = roomy_budget ? 256 << 10 : 64 << 10;
    io.bounce_slots = roomy_budget ? 16 : 4;
    if (c.moe()) {
      // A routed expert is a run of records megabytes long: staged 64 KiB at
      // a time its reads ran at 55 KiB per request, 800 MB/s where 1 MiB
      // requests reach 1150 (a q4_0 Qwen3-30B-A3B shape at 4 GiB). Eight
      // MiB of staging is small beside such a budget.
      io.bounce_bytes = 1 << 20;
      io.bounce_slots = 8;
    }
    return io;
  };
  p.io = stage(p.io, roomy(p.state_bytes));
  p.io_bytes = p.io.MemoryBytes();

  const uint64_t per_session_fixed = p.state_bytes + p.bookkeeping_bytes + p.io_bytes;
  if (budget == 0) {
    p.capacities.assign(c.n_layers, c.ffn_dim);
  } else {
    // The smallest budget that opens with a context of `ctx` tokens.
    auto need_for = [&](int ctx) {
      const uint64_t state = state_for(ctx, p.prefill_batch);
      const uint64_t io = stage(p.io, roomy(state)).MemoryBytes();
      return resident_bytes + o.max_sessions * (state + p.bookkeeping_bytes + io + stride * c.n_layers);
    };
    const uint64_t need = need_for(p.max_context);
    if (budget < need) {
      // The longest context that would fit, so the message can say what to ask for.
      int lo = 0, hi = p.max_context;  // need_for(lo) fits (or lo == 0), need_for(hi) does not
      while (lo + 1 < hi) {
        const int mid = lo + (hi - lo) / 2;
        (need_for(mid) <= budget ? lo : hi) = mid;
      }
      const std::string advice =
          lo > 0 ? "; a context of at most " + std::to_string(lo) +
                       " tokens fits (ModelOptions::max_context, --max-context; a shorter one leaves"
                       " more rows for neurons), or raise the budget"
                 : "; no context fits beside the resident weights: raise the budget";
      // Two figures that round alike get their bytes, so the message never
      // reads "0.91 MiB is below the minimum of 0.91 MiB".
      std::string have = Mib(budget), want = Mib(need);
      if (have == want) {
        have += " (" + std::to_string(budget) + " bytes)";
        want += " (" + std::to_string(need) + " bytes)";
      }
      return Status::ResourceExhausted(
          "DRAM budget of " + have + " is below the minimum of " + want +
          " for this model: resident weights " + Mib(resident_bytes) + ", per session " +
          Mib(per_session_fixed) + " (KV cache for " + std::to_string(p.max_context) +
          " tokens, I/O buffers), plus one neuron per layer" + advice);
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

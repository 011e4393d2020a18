// The modes of llmflash-bench: one run of a mode (a session on the model,
// or for mmap a child process inside a memory cgroup), its per-token
// numbers, and the plot of them.
#ifndef LLMFLASH_BENCH_BENCH_MODES_H_
#define LLMFLASH_BENCH_BENCH_MODES_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/workload_report.h"
#include "llmflash/llmflash.h"

namespace llmflash::tools {

struct Summary {
  double mean = 0, p50 = 0, p90 = 0;
};

struct ModeResult {
  std::string mode;
  Summary total;
  double io = 0, memory = 0, predictor = 0, compute = 0, hidden = 0;
  double prefetched = 0, unused = 0;
  size_t lookahead_tokens = 0;  // generated tokens that ran the lookahead
  double bytes = 0, device = 0, reads = 0, computed = 0, moved = 0;
  uint64_t peak_rss = 0;
  size_t tokens = 0;
  std::vector<double> per_token;
  // The prompt (--prompt-tokens), in its own session before the decode run.
  struct Prefill {
    size_t tokens = 0;          // 0: not measured
    int passes = 0;             // forward passes (micro-batches) it took
    double ms = 0;              // all of it
    double ttft_ms = 0;         // it and the first sampled token
    double bytes_read = 0;      // FFN bytes it read
    uint64_t peak_rss = 0;
    size_t token_path_tokens = 0;  // the same one decode step per token (llmflash), on a prefix
    double token_path_ms = 0;
    double tokens_per_s() const { return ms > 0 ? tokens * 1e3 / ms : 0; }
    double token_path_tokens_per_s() const { return token_path_ms > 0 ? token_path_tokens * 1e3 / token_path_ms : 0; }
  } prefill;
};

// MB/s while reads were in flight: the wait plus the read time hidden
// behind compute.
double ReadRate(const ModeResult& r);

// The process's resident set now (VmRSS), in bytes.
uint64_t CurrentRss();

// What a mode runs: the workload's tokens teacher-forced, or (generate)
// greedy decoding from a prompt.
struct RunSpec {
  const BenchWorkload* workload = nullptr;
  bool generate = false;
  std::string prompt;
  int tokens = 0;
  // Prompt processing: these tokens appended in micro-batches, and for
  // llmflash the first `token_path_tokens` of them one decode step each.
  std::vector<TokenId> prompt_ids;
  int token_path_tokens = 0;
};

// Runs `mode` ("naive", "hybrid", "llmflash"; "mmap" inside its child) on a
// new session of `model`, from a dropped page cache, peak RSS reset.
StatusOr<ModeResult> RunMode(Model& model, const std::string& mode, const RunSpec& spec,
                             Lookahead lookahead);

// The mmap mode: this binary again (argv plus --mmap-child) in a child
// process inside a cgroup-v1 memory cgroup of budget + the fixed overhead.
StatusOr<ModeResult> RunMmapMode(int argc, char** argv, const ModelInfo& info, uint64_t budget);

nlohmann::json ToJson(const ModeResult& r);

// An SVG of latency per token over the run, one line per mode.
Status WritePlot(const std::string& path, const std::vector<ModeResult>& results);

}  // namespace llmflash::tools

#endif  // LLMFLASH_BENCH_BENCH_MODES_H_

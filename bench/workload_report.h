// What llmflash-bench runs and what no schedule could beat on it: the
// tokens of the text it teacher-forces, the workload's statistics measured
// on a dense pass over those tokens (printed beside the paper's OPT-6.7B
// figures), and the oracle floor — a property of the workload and the
// budget, not of what a run chose to do (docs/cost-model.md, "Floor").
#ifndef LLMFLASH_BENCH_WORKLOAD_REPORT_H_
#define LLMFLASH_BENCH_WORKLOAD_REPORT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmflash/llmflash.h"
#include "runtime/workload.h"

namespace llmflash::tools {

struct BenchWorkload {
  std::string source;           // "default corpus" or the --text file
  std::vector<TokenId> tokens;  // BOS, then the text's tokens, warm-up + timed
  int warmup = 0;               // leading tokens run but not averaged
  int distinct = 0;             // distinct ids among the timed tokens
  std::string sample;           // the start of the timed text, decoded
};

// The first `warmup + tokens` tokens of `text` (with BOS), or an error when
// the text is shorter.
StatusOr<BenchWorkload> MakeWorkload(const Model& model, const std::string& text,
                                     const std::string& source, int warmup, int tokens);

struct OracleFloor {
  double read_size = 0;  // bytes per request the I/O floor assumes (a record; an MoE: up to 1 MiB of an expert)
  double read_rate = 0;  // the best measured throughput at that size, bytes/s
  double reads_per_token = 0;      // Belady, with the run's rows per layer
  double io_bytes_per_token = 0;   // those reads' bytes
  double io_ms = 0;                // ÷ the best throughput at one record per read
  double weight_bytes_per_token = 0;  // resident weights + the truly active neurons' records
  double compute_ms = 0;           // ÷ the best DRAM read rate
  double ms = 0;                   // the larger
};

OracleFloor ComputeOracleFloor(const ActivationTrace& trace, const ModelInfo& info,
                               const DeviceProfile& best, int warmup, int queue_depth);

// Prints the workload table (this run at the planned window and at k = 5,
// next to the paper's OPT-6.7B) and returns it as the JSON "workload" object.
nlohmann::json ReportWorkload(const BenchWorkload& w, const ActivationTrace& trace,
                              const ModelInfo& info, double trace_seconds);

}  // namespace llmflash::tools

#endif  // LLMFLASH_BENCH_WORKLOAD_REPORT_H_

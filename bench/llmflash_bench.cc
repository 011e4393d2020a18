// llmflash-bench: latency per token with the FFN read from flash, for one or
// more loading modes on the same model, text and budget, in one run. Every
// mode teacher-forces the same tokens of a text (the compiled-in corpus by
// default): each is a full decode step, so the active neurons change from
// token to token as they do on real text (--generate decodes greedily
// instead, which on a random model repeats a token: never the headline).
//   naive     every FFN weight of each layer is read for every token
//   hybrid    as much of the FFN as the budget allows stays resident, the
//             rest is read for every token; no sparsity
//   llmflash  predictor + window + bundling (the model's predictor, if any)
//   mmap      the weight files read through the page cache (a mapping), no
//             sparsity, in a child process inside a memory cgroup limited to
//             the budget (root only; skipped with a notice otherwise)
// For each: ms/token (mean, p50, p90) split into I/O wait, memory management,
// predictor and compute; bytes and reads per token; peak RSS. --json writes
// the same numbers.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <vector>

#include "bench/bench_modes.h"
#include "bench/corpus.h"
#include "bench/remeasure.h"
#include "bench/workload_report.h"
#include "llmflash/llmflash.h"
#include "tools/common/flags.h"
#include "util/file.h"
#include "util/timer.h"

namespace llmflash::tools {
namespace {

constexpr char kUsage[] =
    "usage: llmflash-bench --model DIR [--modes naive,hybrid,mmap,llmflash] [--tokens N (64)]\n"
    "                      [--warmup N (8)] [--text FILE] [--generate [--prompt TEXT]]\n"
    "                      [--dram-budget BYTES|N%] [--window K] [--kv-cache f16|f32|q8_0]\n"
    "                      [--max-context N (2048)] [--no-predictor]\n"
    "                      [--lookahead auto|on|off (auto)] [--threads N] [--device-profile FILE]\n"
    "                      [--remeasure full|quick|off (full)] [--json FILE] [--plot FILE.svg]\n"
    "                      [--prompt-tokens N (0)] [--prefill-token-tokens M (16)] [--prefill-batch B]\n"
    "Each mode teacher-forces --warmup + --tokens tokens of --text (default: the\n"
    "compiled-in corpus, bench/corpus/workload.txt) and averages the last --tokens.\n"
    "--generate: greedy decoding from --prompt instead (a random model repeats itself).\n"
    "--prompt-tokens: first, each mode runs the corpus's first N tokens as a prompt\n"
    "in micro-batches (prompt tokens/s, time to first token; llmflash also one decode\n"
    "step per token on the first M, the ratio measured in the same run).\n"
    "--remeasure: calibrate the device just before and just after the llmflash mode\n"
    "(full: ~10 s each, quick: ~0.5 s); the floor takes the better figure of the two,\n"
    "the prediction their mean. off: both from the stored profile.\n";

int Fail(const Status& st) {
  std::fprintf(stderr, "llmflash-bench: %s\n", st.ToString().c_str());
  return 1;
}

// Everything the flags say, checked.
struct BenchConfig {
  std::string dir;
  ModelOptions options;
  std::vector<std::string> modes;
  int tokens = 64, warmup = 8;
  int prompt_tokens = 0, token_path_tokens = 16;
  bool generate = false;
  std::string prompt, text, text_source;
  Lookahead lookahead = Lookahead::kAuto;
  std::string lookahead_flag, remeasure;
};

StatusOr<BenchConfig> ParseConfig(const Flags& f) {
  BenchConfig c;
  c.dir = f.Get("model");
  ModelOptions& o = c.options;
  if (f.Has("dram-budget")) {
    auto whole = ModelWeightBytes(c.dir);
    if (!whole.ok()) return whole.status();
    auto b = ParseByteSize(f.Get("dram-budget"), *whole);
    if (!b.ok()) return b.status();
    o.dram_budget_bytes = *b;
  }
  auto tokens = f.GetInt("tokens", 64);
  auto warmup = f.GetInt("warmup", 8);
  auto window = f.GetInt("window", o.window);
  auto context = f.GetInt("max-context", 2048);
  auto threads = f.GetInt("threads", 0);
  auto prompt_tokens = f.GetInt("prompt-tokens", 0);
  auto token_path = f.GetInt("prefill-token-tokens", 16);
  auto batch = f.GetInt("prefill-batch", 0);
  for (const Status* s : {&tokens.status(), &warmup.status(), &window.status(), &context.status(),
                          &threads.status(), &prompt_tokens.status(), &token_path.status(), &batch.status()}) {
    if (!s->ok()) return *s;
  }
  if (*prompt_tokens < 0 || *prompt_tokens > (1 << 20) || *token_path < 0 || *batch < 0 || *batch > 4096) {
    return Status::InvalidArgument("--prompt-tokens and --prefill-token-tokens must be >= 0, --prefill-batch in [0, 4096]");
  }
  c.prompt_tokens = static_cast<int>(*prompt_tokens);
  c.token_path_tokens = static_cast<int>(*token_path);
  o.prefill_batch = static_cast<int>(*batch);
  if (*tokens < 1 || *warmup < 0 || *window < 0 || *context < 1 || *threads < 0) {
    return Status::InvalidArgument("--tokens and --max-context must be >= 1; --warmup, --window and --threads >= 0");
  }
  c.tokens = static_cast<int>(*tokens);
  c.warmup = static_cast<int>(*warmup);
  o.window = static_cast<int>(*window);
  o.max_context = static_cast<int>(*context);
  o.threads = static_cast<int>(*threads);
  o.device_profile = f.Get("device-profile", "");
  auto kv = ParseKvCacheType(f.Get("kv-cache", "f16"));
  if (!kv.ok()) return kv.status();
  o.kv_cache = *kv;
  c.lookahead_flag = f.Get("lookahead", "auto");
  if (c.lookahead_flag != "auto" && c.lookahead_flag != "on" && c.lookahead_flag != "off") {
    return Status::InvalidArgument("--lookahead must be auto, on or off, not \"" + c.lookahead_flag + "\"");
  }
  c.lookahead = c.lookahead_flag == "on" ? Lookahead::kOn : c.lookahead_flag == "off" ? Lookahead::kOff : Lookahead::kAuto;
  c.remeasure = f.Get("remeasure", "full");
  if (c.remeasure != "full" && c.remeasure != "quick" && c.remeasure != "off") {
    return Status::InvalidArgument("--remeasure must be full, quick or off, not \"" + c.remeasure + "\"");
  }
  c.generate = f.Has("generate");
  c.prompt = f.Get("prompt", "Once upon a time");
  if (f.Has("text")) {
    auto text = ReadFileToString(f.Get("text"), 64ull << 20);
    if (!text.ok()) return text.status();
    c.text = *text;
    c.text_source = f.Get("text");
  } else {
    c.text = DefaultCorpus();
    c.text_source = "the default corpus (bench/corpus/workload.txt)";
  }
  std::stringstream ss(f.Get("modes", f.Has("no-predictor") ? "hybrid" : "llmflash"));
  for (std::string m; std::getline(ss, m, ',');) {
    if (m != "naive" && m != "hybrid" && m != "llmflash" && m != "mmap") {
      return Status::InvalidArgument("--modes: unknown mode \"" + m + "\" (naive, hybrid, mmap, llmflash)");
    }
    c.modes.push_back(m);
  }
  return c;
}

// In the child: join the cgroup, open the model on the mmap backend, run.
int MmapChild(const Flags& f, const BenchConfig& c) {
  { std::ofstream(f.Get("mmap-child") + "/tasks") << ::getpid() << "\n"; }
  auto budget = ParseByteSize(f.Get("child-budget"), 0);
  if (!budget.ok()) return Fail(budget.status());
  ModelOptions o = c.options;
  o.dram_budget_bytes = *budget;
  o.io_backend = IoBackendKind::kMmap;
  auto model = Model::Open(c.dir, o);
  if (!model.ok()) return Fail(model.status());
  auto w = MakeWorkload(**model, c.text, c.text_source, c.warmup, c.tokens);
  if (!w.ok() && !c.generate) return Fail(w.status());
  RunSpec spec{w.ok() ? &*w : nullptr, c.generate, c.prompt, c.tokens};
  auto r = RunMode(**model, "mmap", spec, Lookahead::kOff);
  if (!r.ok()) return Fail(r.status());
  std::ofstream out(f.Get("child-json"));
  out << ToJson(*r).dump() << "\n";
  return out ? 0 : 1;
}

// The cost model after the fact, on the llmflash run's own workload (reads
// it issued, neurons it computed, overlap it measured): where the time went,
// not a prediction.
struct PostHoc {
  double ms = 0, ms_stored_profile = 0;
  CostEstimate parts;
};

PostHoc PostHocCost(const ModeResult& flash, const ModelInfo& info, const DeviceProfile& expect,
                    const DeviceProfile& stored, int queue_depth) {
  TokenWorkload w;
  w.read_ops = flash.reads;
  w.read_batches = flash.reads > 0 ? info.n_layers : 0;
  w.device_bytes = flash.device;
  w.queue_depth = queue_depth;
  w.weight_bytes = info.weight_bytes_per_token_by_type;
  w.weight_bytes[info.ffn_dtype] += flash.computed * info.record_bytes;
  w.predictor_bytes = info.has_predictor ? info.predictor_bytes_per_token : 0;
  w.predictor_dtype = info.predictor_dtype;
  w.moved_bytes = flash.moved;
  w.overlapped_ms = flash.hidden;
  PostHoc p;
  p.parts = EstimateTokenCost(expect, w);
  p.ms = p.parts.total_ms;
  p.ms_stored_profile = EstimateTokenCost(stored, w).total_ms;
  return p;
}

void PrintTable(const std::vector<ModeResult>& results, const ModeResult* naive,
                const DeviceProfile& profile, int queue_depth) {
  std::printf("\n| mode     | ms/token mean |   p50    |   p90    |  io ms   | mem ms | pred ms | compute ms | MiB read/token | reads/token | mean read KiB | read MB/s | profile MB/s | peak RSS MiB | vs naive |\n");
  std::printf("|----------|---------------|----------|----------|----------|--------|---------|------------|----------------|-------------|---------------|-----------|--------------|--------------|----------|\n");
  for (const auto& r : results) {
    const double mean_read = r.reads > 0 ? r.device / r.reads : 0;
    const double at_size = mean_read > 0 ? profile.ReadThroughput(mean_read, queue_depth) / 1e6 : 0;
    std::printf("| %-8s | %13.3f | %8.3f | %8.3f | %8.3f | %6.3f | %7.3f | %10.3f | %14.3f | %11.1f | %13.1f | %9.0f | %12.0f | %12.1f | %7.2fx |\n",
                r.mode.c_str(), r.total.mean, r.total.p50, r.total.p90, r.io, r.memory, r.predictor,
                r.compute, r.bytes / 1048576.0, r.reads, mean_read / 1024, r.reads > 0 ? ReadRate(r) : 0.0, at_size,
                r.peak_rss / 1048576.0, naive ? naive->total.mean / r.total.mean : 1.0);
  }
}

// Prompt processing per mode, apart from decoding: llama-bench's "pp" figure.
void PrintPrefill(const std::vector<ModeResult>& results, const ModelInfo& info) {
  std::printf("\n| mode     | prompt tokens | passes | prompt tokens/s | TTFT ms  | MiB read | peak RSS MiB | one token per step: tokens/s (of) | batch / token |\n");
  std::printf("|----------|---------------|--------|-----------------|----------|----------|--------------|-----------------------------------|---------------|\n");
  for (const auto& r : results) {
    const ModeResult::Prefill& p = r.prefill;
    if (p.tokens == 0) continue;
    char token_path[64] = "-", ratio[32] = "-";
    if (p.token_path_tokens > 0) {
      std::snprintf(token_path, sizeof(token_path), "%.3f (%zu)", p.token_path_tokens_per_s(), p.token_path_tokens);
      std::snprintf(ratio, sizeof(ratio), "%.1fx", p.tokens_per_s() / std::max(1e-9, p.token_path_tokens_per_s()));
    }
    std::printf("| %-8s | %13zu | %6d | %15.3f | %8.0f | %8.1f | %12.1f | %33s | %13s |\n", r.mode.c_str(), p.tokens,
                p.passes, p.tokens_per_s(), p.ttft_ms, p.bytes_read / 1048576.0, p.peak_rss / 1048576.0, token_path,
                ratio);
  }
  std::printf("micro-batch %d tokens (ModelOptions::prefill_batch, --prefill-batch)\n", info.prefill_batch);
}

// Peak RSS against the budget: the library is promised the budget for
// everything it allocates (weights, tokenizer, matrices, KV cache, buffers);
// the process it runs in had process_rss before the model opened. (The mmap
// mode runs in a child of the same binary, whose own start is taken to be
// the same.)
void PrintMemory(const std::vector<ModeResult>& results, const ModelInfo& info, uint64_t process_rss) {
  std::printf("memory: budget %.1f MiB (tokenizer, template and manifest %.1f MiB of it); the process before the "
              "model opened %.1f MiB (binary, libraries, corpus); peak RSS minus that, per mode:",
              info.budget_bytes / 1048576.0, info.text_bytes / 1048576.0, process_rss / 1048576.0);
  for (const auto& r : results) {
    for (const auto& [what, peak] : {std::pair{"", r.peak_rss}, std::pair{" prompt", r.prefill.peak_rss}}) {
      if (peak == 0) continue;
      const double used = (static_cast<double>(peak) - static_cast<double>(process_rss)) / 1048576.0;
      std::printf(" %s%s %.1f (%s)", r.mode.c_str(), what, used,
                  used <= info.budget_bytes / 1048576.0 ? "within" : "OVER");
    }
  }
  std::printf("\n");
}

void PrintNotes(const std::vector<ModeResult>& results, const BenchConfig& c, bool has_predictor) {
  for (const auto& r : results) {
    if (r.hidden > 0) {
      std::printf("%s: %.1f ms/token of reads hidden behind compute (%.0f%% of read time; %.1f ms waited)\n",
                  r.mode.c_str(), r.hidden, 100.0 * r.hidden / std::max(1e-9, r.hidden + r.io), r.io);
    }
    if (r.lookahead_tokens > 0) {
      std::printf("%s: lookahead on for %zu of %zu tokens (--lookahead %s), read %.0f neurons/token "
                  "(%.0f%% of them unused)\n",
                  r.mode.c_str(), r.lookahead_tokens, r.tokens, c.lookahead_flag.c_str(), r.prefetched,
                  100.0 * r.unused / std::max(1.0, r.prefetched));
    } else if (r.mode == "llmflash" && has_predictor) {
      std::printf("%s: lookahead off (--lookahead %s)\n", r.mode.c_str(), c.lookahead_flag.c_str());
    }
  }
}

int Main(int argc, char** argv) {
  Flags f(argc, argv, 1, {"no-predictor", "generate"});
  if (f.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  Status st = f.Check({"model", "modes", "tokens", "warmup", "text", "generate", "prompt", "dram-budget",
                       "window", "json", "no-predictor", "lookahead", "max-context", "kv-cache", "threads",
                       "plot", "device-profile", "remeasure", "mmap-child", "child-budget", "child-json",
                       "prompt-tokens", "prefill-token-tokens", "prefill-batch"});
  if (st.ok()) st = f.Require("model");
  if (!st.ok()) {
    std::fputs(kUsage, stderr);
    return Fail(st);
  }
  auto config = ParseConfig(f);
  if (!config.ok()) return Fail(config.status());
  const BenchConfig& c = *config;
  if (f.Has("mmap-child")) return MmapChild(f, c);
  auto whole = ModelWeightBytes(c.dir);
  if (!whole.ok()) return Fail(whole.status());
  // The process before the model: the binary, its libraries and the corpus,
  // which no budget given to the library covers.
  const uint64_t process_rss = CurrentRss();
  auto model = Model::Open(c.dir, c.options);
  if (!model.ok()) return Fail(model.status());
  const ModelInfo& info = (*model)->info();
  const DeviceProfile& profile = (*model)->device_profile();
  const int qd = c.options.queue_depth;
  std::printf("model %s: %.2f MiB, budget %.2f MiB, %d of %d neurons/layer fit (mean), window %d, "
              "context %d tokens (KV cache %s), %s\n",
              c.dir.c_str(), *whole / 1048576.0, info.budget_bytes / 1048576.0, info.neuron_capacity,
              info.ffn_dim, info.window, info.max_context,
              info.kv_cache_dtype.c_str(),
              info.has_predictor ? "with predictor" : info.n_experts > 0 ? "experts picked by the router" : "no predictor");
  std::printf("device profile: %s\n", info.profile_source.c_str());
  // The prediction that counts, made before the first token from the model,
  // the budget, the stored profile and the predictor's calibration figures.
  std::printf("a-priori prediction (planner, before any token): llmflash %.1f ms/token "
              "(I/O %.1f + compute %.1f + predictor %.1f), %.1f MiB read per token\n\n",
              info.planned_ms_per_token, info.planned_io_ms, info.planned_compute_ms,
              info.planned_predictor_ms, info.planned_bytes_per_token / 1048576.0);

  BenchWorkload workload;
  nlohmann::json workload_json;
  ActivationTrace trace;
  if (!c.generate) {
    auto w = MakeWorkload(**model, c.text, c.text_source, c.warmup, c.tokens);
    if (!w.ok()) return Fail(w.status());
    workload = *std::move(w);
  } else {
    std::printf("workload: greedy decoding from \"%s\" (--generate): not a realistic workload\n\n",
                c.prompt.c_str());
  }
  RunSpec spec{&workload, c.generate, c.prompt, c.tokens};
  if (c.prompt_tokens > 0) {
    auto ids = (*model)->Encode(c.text, info.bos_id >= 0);
    if (!ids.ok()) return Fail(ids.status());
    if (static_cast<int>(ids->size()) < c.prompt_tokens) {
      return Fail(Status::InvalidArgument("--prompt-tokens " + std::to_string(c.prompt_tokens) + ": " +
                                          c.text_source + " has only " + std::to_string(ids->size()) + " tokens"));
    }
    ids->resize(c.prompt_tokens);
    spec.prompt_ids = *ids;
    spec.token_path_tokens = c.token_path_tokens;
    std::printf("prompt: the first %d tokens of %s, in micro-batches of %d (each mode in its own session, "
                "cold page cache); llmflash also one decode step per token on the first %d\n\n",
                c.prompt_tokens, c.text_source.c_str(), info.prefill_batch, std::min(c.prompt_tokens, c.token_path_tokens));
  }

  std::vector<ModeResult> results;
  std::vector<DeviceProfile> around;  // the device measured before and after the llmflash mode
  for (const std::string& m : c.modes) {
    if (m == "llmflash" && !info.has_predictor && info.n_experts == 0) {
      std::printf("llmflash: no predictor stored, running dense (train one with llmflash train-predictor)\n");
    }
    const bool measure = m == "llmflash" && c.remeasure != "off";
    auto remeasure = [&]() -> Status {
      StatusOr<DeviceProfile> p = MeasureDeviceNow(info.ffn_path, c.options.threads, c.remeasure == "quick");
      if (!p.ok()) return p.status();
      around.push_back(*std::move(p));
      return Status::OK();
    };
    if (measure) {
      Status ms = remeasure();
      if (!ms.ok()) return Fail(ms);
    }
    StatusOr<ModeResult> r = m == "mmap" ? RunMmapMode(argc, argv, info, info.budget_bytes)
                                         : RunMode(**model, m, spec, c.lookahead);
    if (measure && r.ok()) {
      Status ms = remeasure();
      if (!ms.ok()) return Fail(ms);
    }
    if (!r.ok() && m == "mmap") {
      std::printf("%s\n", r.status().message().c_str());
      continue;
    }
    if (!r.ok()) return Fail(r.status());
    results.push_back(*r);
  }
  // The workload's dense pass comes after the timed modes: its trace (every
  // token's active and predicted sets, megabytes on a 7B model) is the
  // bench's own data, and would otherwise count in each mode's peak RSS.
  if (!c.generate) {
    Timer timer;
    auto t = TraceActivations(model->get(), workload.tokens);
    if (!t.ok()) return Fail(t.status());
    trace = *std::move(t);
    workload_json = ReportWorkload(workload, trace, info, timer.ElapsedMs() / 1e3);
  }
  const ModeResult* naive = nullptr;
  const ModeResult* flash = nullptr;
  for (const auto& r : results) {
    if (r.mode == "naive") naive = &r;
    if (r.mode == "llmflash") flash = &r;
  }
  // The best the machine was seen to do (stored profile, before, after): the
  // floor's rates; the mean of before and after: the post-hoc model's.
  const bool fresh = around.size() == 2;
  DeviceProfile best = profile;
  if (fresh) best = CombineProfiles(CombineProfiles(around[0], around[1], true), profile, true);
  const DeviceProfile expect = fresh ? CombineProfiles(around[0], around[1], false) : profile;
  OracleFloor floor;
  if (!c.generate) {
    floor = ComputeOracleFloor(trace, info, best, c.warmup, qd);
    std::printf("oracle floor: %.1f ms/token = max(I/O: %.0f reads of %llu B (Belady, the run's %d rows/layer) "
                "at %.0f MB/s (%.0f KiB requests) = %.1f ms, compute: %.1f MiB of resident weights and truly active "
                "neurons at %.1f GB/s = %.1f ms)\n",
                floor.ms, floor.reads_per_token, static_cast<unsigned long long>(info.record_bytes),
                info.neuron_capacity, floor.read_rate / 1e6, floor.read_size / 1024,
                floor.io_ms, floor.weight_bytes_per_token / 1048576.0, DramReadBytesPerSecond(best) / 1e9,
                floor.compute_ms);
  }
  PostHoc post;
  if (flash != nullptr) {
    post = PostHocCost(*flash, info, expect, profile, qd);
    const double read_size = flash->reads > 0 ? flash->device / flash->reads : info.record_bytes;
    if (fresh) {
      std::printf("device just before llmflash: %s\n", ProfileHeadline(around[0], read_size, qd, info.dtype).c_str());
      std::printf("device just after llmflash:  %s\n", ProfileHeadline(around[1], read_size, qd, info.dtype).c_str());
      std::printf("stored profile:              %s\n", ProfileHeadline(profile, read_size, qd, info.dtype).c_str());
    }
    std::printf("post-hoc cost model (the run's own reads and overlap, device as measured around it): "
                "%.1f ms/token = I/O %.1f + compute %.1f + predictor %.1f + memory %.1f - overlap %.1f\n",
                post.ms, post.parts.io_ms, post.parts.compute_ms, post.parts.predictor_ms, post.parts.memory_ms,
                post.parts.io_ms + post.parts.compute_ms + post.parts.predictor_ms + post.parts.memory_ms - post.ms);
  }
  PrintTable(results, naive, best, qd);
  if (flash != nullptr) {
    const double m = flash->total.mean;
    std::printf("\nllmflash: measured %.1f ms/token; a-priori prediction %.1f (%+.0f%%)", m,
                info.planned_ms_per_token, 100.0 * (info.planned_ms_per_token - m) / m);
    if (!c.generate) std::printf("; oracle floor %.1f (measured = %.2fx floor)", floor.ms, m / std::max(1e-9, floor.ms));
    std::printf("; post-hoc %.1f (%+.0f%%)\n", post.ms, 100.0 * (post.ms - m) / m);
  }
  PrintNotes(results, c, info.has_predictor);
  PrintMemory(results, info, process_rss);
  if (c.prompt_tokens > 0) PrintPrefill(results, info);
  if (f.Has("plot")) {
    Status ps = WritePlot(f.Get("plot"), results);
    if (!ps.ok()) return Fail(ps);
  }
  if (f.Has("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& r : results) {
      nlohmann::json m = ToJson(r);
      m["speedup_over_naive"] = naive ? nlohmann::json(naive->total.mean / r.total.mean) : nlohmann::json(nullptr);
      list.push_back(m);
    }
    auto opt = [](bool have, double v) { return have ? nlohmann::json(v) : nlohmann::json(nullptr); };
    nlohmann::json j = {{"model", c.dir}, {"budget_bytes", info.budget_bytes}, {"model_bytes", *whole},
                        {"process_rss_before_open_bytes", process_rss}, {"text_bytes", info.text_bytes},
                        {"neuron_capacity", info.neuron_capacity}, {"ffn_dim", info.ffn_dim},
                        {"window", info.window}, {"max_context", info.max_context}, {"modes", list},
                        {"profile", info.profile_source},
                        {"workload", c.generate ? nlohmann::json(nullptr) : workload_json},
                        {"floor_ms", opt(!c.generate, floor.ms)},
                        {"floor", c.generate ? nlohmann::json(nullptr)
                                             : nlohmann::json{{"io_ms", floor.io_ms}, {"compute_ms", floor.compute_ms},
                                                              {"oracle_reads_per_token", floor.reads_per_token},
                                                              {"weight_bytes_per_token", floor.weight_bytes_per_token}}},
                        {"predicted_ms", info.planned_ms_per_token},
                        {"predicted_bytes_per_token", info.planned_bytes_per_token},
                        {"predicted_ms_post_hoc", opt(flash != nullptr, post.ms)},
                        {"predicted_ms_stored_profile", opt(flash != nullptr, post.ms_stored_profile)},
                        {"device_remeasured", fresh},
                        {"planned_ms", info.planned_ms_per_token}};
    std::ofstream out(f.Get("json"));
    out << j.dump(1) << "\n";
    if (!out) return Fail(Status::IOError(f.Get("json") + ": write failed"));
  }
  return 0;
}

}  // namespace
}  // namespace llmflash::tools

int main(int argc, char** argv) { return llmflash::tools::Main(argc, argv); }

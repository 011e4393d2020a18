// llmflash-bench: latency per token with the FFN read from flash, for one or
// more loading modes on the same model, prompt and budget, in one run:
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

#include "bench/remeasure.h"
#include "llmflash/llmflash.h"
#include "tools/common/flags.h"

namespace llmflash::tools {
namespace {

constexpr char kUsage[] =
    "usage: llmflash-bench --model DIR [--modes naive,hybrid,mmap,llmflash] [--tokens N]\n"
    "                      [--prompt TEXT] [--dram-budget BYTES|N%] [--window K]\n"
    "                      [--max-context N (256)] [--no-predictor]\n"
    "                      [--lookahead auto|on|off (auto)] [--threads N] [--device-profile FILE]\n"
    "                      [--remeasure full|quick|off (full)] [--json FILE] [--plot FILE.svg]\n"
    "--remeasure: calibrate the device just before and just after the llmflash mode\n"
    "(full: ~10 s each, quick: ~0.5 s); the floor takes the better figure of the two,\n"
    "the prediction their mean. off: both from the stored profile.\n";

struct Summary {
  double mean = 0, p50 = 0, p90 = 0;
};

Summary Summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))]; };
  s.p50 = pct(0.5);
  s.p90 = pct(0.9);
  return s;
}

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
};

// MB/s while reads were in flight: the wait plus the read time hidden
// behind compute.
double ReadRate(const ModeResult& r) {
  const double ms = r.io + r.hidden;
  return ms > 0 ? r.device / (ms / 1e3) / 1e6 : 0;
}

int Fail(const Status& st) {
  std::fprintf(stderr, "llmflash-bench: %s\n", st.ToString().c_str());
  return 1;
}

// Drops the page cache (root only) so modes start equally cold.
void DropCaches() {
  std::ofstream("/proc/sys/vm/drop_caches") << "3\n";
}

// Peak RSS since the last reset (VmHWM), and its reset via clear_refs.
uint64_t PeakRss() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}
void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5\n"; }

StatusOr<ModeResult> RunMode(Model& model, const std::string& mode, const std::string& prompt,
                             int tokens, Lookahead lookahead) {
  SessionOptions so;
  so.lookahead = lookahead;
  so.use_predictor = mode == "llmflash";
  so.reuse_resident_neurons = mode != "naive" && mode != "mmap";
  DropCaches();
  ResetPeakRss();
  auto session = model.NewSession(so);
  if (!session.ok()) return session.status();
  GenerateOptions g;
  g.max_tokens = tokens;
  Status st = (*session)->Generate(prompt, g, nullptr);
  if (!st.ok()) return st;
  const Stats& s = (*session)->stats();
  ModeResult r;
  r.mode = mode;
  r.peak_rss = PeakRss();
  std::vector<double> total;
  for (size_t i = std::min<size_t>(s.prompt_tokens, s.tokens.size()); i < s.tokens.size(); ++i) {
    const TokenStats& t = s.tokens[i];
    total.push_back(t.total_ms);
    r.io += t.io_ms;
    r.memory += t.memory_ms;
    r.predictor += t.predictor_ms;
    r.compute += t.compute_ms;
    r.hidden += t.io_hidden_ms;
    r.lookahead_tokens += t.lookahead;
    r.prefetched += t.neurons_prefetched;
    r.unused += t.prefetch_unused;
    r.bytes += t.bytes_read;
    r.device += t.device_bytes;
    r.reads += t.read_ops;
    r.computed += t.neurons_computed;
    r.moved += t.bytes_moved;
  }
  r.tokens = total.size();
  const double n = std::max<size_t>(1, r.tokens);
  for (double* v : {&r.io, &r.memory, &r.predictor, &r.compute, &r.hidden, &r.prefetched, &r.unused,
                    &r.bytes, &r.device, &r.reads, &r.computed, &r.moved}) {
    *v /= n;
  }
  r.per_token = total;
  r.total = Summarize(total);
  return r;
}

// An SVG of latency per token over the sequence, one line per mode.
Status WritePlot(const std::string& path, const std::vector<ModeResult>& results) {
  const double w = 800, h = 400, left = 70, bottom = 40, top = 20, right = 120;
  double ymax = 1;
  size_t n = 1;
  for (const auto& r : results) {
    for (double v : r.per_token) ymax = std::max(ymax, v);
    n = std::max(n, r.per_token.size());
  }
  const char* colors[] = {"#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd"};
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  auto x = [&](size_t i) { return left + (w - left - right) * (n > 1 ? double(i) / (n - 1) : 0.5); };
  auto y = [&](double v) { return h - bottom - (h - top - bottom) * v / ymax; };
  svg << "<line x1=\"" << left << "\" y1=\"" << y(0) << "\" x2=\"" << w - right << "\" y2=\"" << y(0)
      << "\" stroke=\"black\"/>\n<line x1=\"" << left << "\" y1=\"" << y(0) << "\" x2=\"" << left
      << "\" y2=\"" << top << "\" stroke=\"black\"/>\n";
  for (int t = 0; t <= 4; ++t) {
    double v = ymax * t / 4;
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y(v) + 4 << "\" text-anchor=\"end\">" << std::lround(v)
        << "</text>\n";
  }
  svg << "<text x=\"" << (w - right + left) / 2 << "\" y=\"" << h - 8
      << "\" text-anchor=\"middle\">generated token</text>\n"
      << "<text x=\"14\" y=\"" << h / 2 << "\" transform=\"rotate(-90 14 " << h / 2
      << ")\" text-anchor=\"middle\">ms per token</text>\n";
  for (size_t m = 0; m < results.size(); ++m) {
    const auto& r = results[m];
    const char* c = colors[m % 5];
    svg << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\" points=\"";
    for (size_t i = 0; i < r.per_token.size(); ++i) svg << x(i) << "," << y(r.per_token[i]) << " ";
    svg << "\"/>\n<text x=\"" << w - right + 8 << "\" y=\"" << top + 16 * (m + 1) << "\" fill=\"" << c
        << "\">" << r.mode << "</text>\n";
  }
  svg << "</svg>\n";
  std::ofstream out(path);
  out << svg.str();
  if (!out) return Status::IOError(path + ": write failed");
  return Status::OK();
}

nlohmann::json ToJson(const ModeResult& r) {
  return {{"mode", r.mode}, {"ms_per_token_mean", r.total.mean}, {"ms_per_token_p50", r.total.p50},
          {"ms_per_token_p90", r.total.p90}, {"io_ms", r.io}, {"memory_ms", r.memory},
          {"predictor_ms", r.predictor}, {"compute_ms", r.compute},
          {"io_hidden_ms", r.hidden}, {"neurons_prefetched_per_token", r.prefetched},
          {"prefetch_unused_per_token", r.unused}, {"lookahead_tokens", r.lookahead_tokens},
          {"bytes_per_token", r.bytes}, {"device_bytes_per_token", r.device},
          {"reads_per_token", r.reads}, {"neurons_computed_per_token", r.computed},
          {"bytes_moved_per_token", r.moved}, {"peak_rss_bytes", r.peak_rss}, {"tokens", r.tokens},
          {"per_token_ms", r.per_token}};
}

ModeResult FromJson(const nlohmann::json& j) {
  ModeResult r;
  r.mode = j.value("mode", "");
  r.total.mean = j.value("ms_per_token_mean", 0.0);
  r.total.p50 = j.value("ms_per_token_p50", 0.0);
  r.total.p90 = j.value("ms_per_token_p90", 0.0);
  r.io = j.value("io_ms", 0.0);
  r.memory = j.value("memory_ms", 0.0);
  r.predictor = j.value("predictor_ms", 0.0);
  r.compute = j.value("compute_ms", 0.0);
  r.bytes = j.value("bytes_per_token", 0.0);
  r.device = j.value("device_bytes_per_token", 0.0);
  r.reads = j.value("reads_per_token", 0.0);
  r.computed = j.value("neurons_computed_per_token", 0.0);
  r.moved = j.value("bytes_moved_per_token", 0.0);
  r.peak_rss = j.value("peak_rss_bytes", uint64_t{0});
  r.tokens = j.value("tokens", size_t{0});
  r.per_token = j.value("per_token_ms", std::vector<double>{});
  return r;
}

constexpr uint64_t kFixedOverheadBytes = 64ull << 20;

// The mmap mode runs in a child process inside a memory cgroup (v1) limited
// to the budget plus the fixed overhead: the child's own allocations and the page cache holding the
// mapped FFN file share that limit, as they would for an mmap-based engine.
StatusOr<ModeResult> RunMmapMode(int argc, char** argv, const ModelInfo& info, uint64_t budget) {
  const std::string cg = "/sys/fs/cgroup/memory/llmflash-bench-" + std::to_string(::getpid());
  if (::geteuid() != 0 || ::access("/sys/fs/cgroup/memory", W_OK) != 0) {
    return Status::Unsupported("mmap: skipped (needs root and a cgroup v1 memory controller)");
  }
  if (::mkdir(cg.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::Unsupported("mmap: skipped (cannot create " + cg + ": " + std::strerror(errno) + ")");
  }
  // The child keeps 64 neuron rows per layer: the rest of the budget is left
  // to the page cache, the mmap engine's only cache.
  uint64_t rows_given_up = 0;
  for (int cap : info.layer_neuron_capacity) {
    rows_given_up += static_cast<uint64_t>(std::max(0, cap - 64)) * info.record_bytes;
  }
  const uint64_t child_budget = budget - std::min(budget, rows_given_up);
  // The budget plus the fixed overhead the budget does not cover (code,
  // libraries, tokenizer, stacks: docs/cost-model.md).
  { std::ofstream(cg + "/memory.limit_in_bytes") << budget + kFixedOverheadBytes << "\n"; }
  const std::string out = cg + ".json";
  std::vector<std::string> args;
  for (int i = 0; i < argc; ++i) args.push_back(argv[i]);
  args.insert(args.end(), {"--mmap-child", cg, "--child-budget", std::to_string(child_budget),
                           "--child-json", "/tmp/llmflash-bench-mmap-" + std::to_string(::getpid()) + ".json"});
  const std::string result_path = args.back();
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  DropCaches();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execv("/proc/self/exe", cargv.data());
    ::_exit(127);
  }
  int status = 0;
  if (pid > 0) ::waitpid(pid, &status, 0);
  ::rmdir(cg.c_str());
  std::ifstream in(result_path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  std::remove(result_path.c_str());
  if (pid > 0 && WIFSIGNALED(status)) {
    return Status::IOError("mmap: the child run was killed by signal " +
                           std::to_string(WTERMSIG(status)) + " (by the memory cgroup?)");
  }
  if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || j.is_discarded()) {
    return Status::IOError("mmap: the child run failed (its error is above)");
  }
  return FromJson(j);
}

// In the child: join the cgroup, open the model on the mmap backend, run.
int MmapChild(const Flags& f, const std::string& dir, ModelOptions o, int tokens) {
  { std::ofstream(f.Get("mmap-child") + "/tasks") << ::getpid() << "\n"; }
  auto budget = ParseByteSize(f.Get("child-budget"), 0);
  if (!budget.ok()) return Fail(budget.status());
  o.dram_budget_bytes = *budget;
  o.io_backend = IoBackendKind::kMmap;
  auto model = Model::Open(dir, o);
  if (!model.ok()) return Fail(model.status());
  auto r = RunMode(**model, "mmap", f.Get("prompt", "Once upon a time"), tokens, Lookahead::kOff);
  if (!r.ok()) return Fail(r.status());
  std::ofstream out(f.Get("child-json"));
  out << ToJson(*r).dump() << "\n";
  return out ? 0 : 1;
}

int Main(int argc, char** argv) {
  Flags f(argc, argv, 1, {"no-predictor"});
  if (f.help()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  Status st = f.Check({"model", "modes", "tokens", "prompt", "dram-budget", "window", "json",
                       "no-predictor", "lookahead", "max-context", "threads", "plot",
                       "device-profile", "remeasure", "mmap-child", "child-budget", "child-json"});
  if (st.ok()) st = f.Require("model");
  if (!st.ok()) {
    std::fputs(kUsage, stderr);
    return Fail(st);
  }
  std::string dir = f.Get("model");
  auto whole = ModelWeightBytes(dir);
  if (!whole.ok()) return Fail(whole.status());
  ModelOptions o;
  if (f.Has("dram-budget")) {
    auto b = ParseByteSize(f.Get("dram-budget"), *whole);
    if (!b.ok()) return Fail(b.status());
    o.dram_budget_bytes = *b;
  }
  auto tokens = f.GetInt("tokens", 64);
  auto window = f.GetInt("window", o.window);
  auto context = f.GetInt("max-context", 256);
  auto threads = f.GetInt("threads", 0);
  for (const Status* s : {&tokens.status(), &window.status(), &context.status(), &threads.status()}) {
    if (!s->ok()) return Fail(*s);
  }
  const std::string look = f.Get("lookahead", "auto");
  if (look != "auto" && look != "on" && look != "off") {
    return Fail(Status::InvalidArgument("--lookahead must be auto, on or off, not \"" + look + "\""));
  }
  const Lookahead lookahead = look == "on" ? Lookahead::kOn : look == "off" ? Lookahead::kOff : Lookahead::kAuto;
  const std::string remeasure_flag = f.Get("remeasure", "full");
  if (remeasure_flag != "full" && remeasure_flag != "quick" && remeasure_flag != "off") {
    return Fail(Status::InvalidArgument("--remeasure must be full, quick or off, not \"" + remeasure_flag + "\""));
  }
  if (*tokens < 1 || *window < 0 || *context < 1 || *threads < 0) {
    return Fail(Status::InvalidArgument("--tokens and --max-context must be >= 1, --window and --threads >= 0"));
  }
  o.window = static_cast<int>(*window);
  o.max_context = static_cast<int>(*context);
  o.threads = static_cast<int>(*threads);
  o.device_profile = f.Get("device-profile", "");
  if (f.Has("mmap-child")) return MmapChild(f, dir, o, static_cast<int>(*tokens));
  std::vector<std::string> modes;
  std::stringstream ss(f.Get("modes", f.Has("no-predictor") ? "hybrid" : "llmflash"));
  for (std::string m; std::getline(ss, m, ',');) {
    if (m != "naive" && m != "hybrid" && m != "llmflash" && m != "mmap") {
      return Fail(Status::InvalidArgument("--modes: unknown mode \"" + m + "\" (naive, hybrid, mmap, llmflash)"));
    }
    modes.push_back(m);
  }
  auto model = Model::Open(dir, o);
  if (!model.ok()) return Fail(model.status());
  const ModelInfo& info = (*model)->info();
  const DeviceProfile& profile = (*model)->device_profile();
  std::printf("model %s: %.2f MiB, budget %.2f MiB, %d of %d neurons/layer fit (mean), window %d, %s\n",
              dir.c_str(), *whole / 1048576.0, info.budget_bytes / 1048576.0, info.neuron_capacity,
              info.ffn_dim, info.window, info.has_predictor ? "with predictor" : "no predictor");
  std::printf("device profile: %s\n\n", info.profile_source.c_str());
  std::string prompt = f.Get("prompt", "Once upon a time");
  std::vector<ModeResult> results;
  std::vector<DeviceProfile> around;  // the device measured before and after the llmflash mode
  auto remeasure = [&]() -> Status {
    StatusOr<DeviceProfile> p = MeasureDeviceNow(info.ffn_path, o.threads, remeasure_flag == "quick");
    if (!p.ok()) return p.status();
    around.push_back(*std::move(p));
    return Status::OK();
  };
  for (const std::string& m : modes) {
    if (m == "llmflash" && !info.has_predictor) {
      std::printf("llmflash: no predictor stored, running dense (train one with llmflash train-predictor)\n");
    }
    const bool measure = m == "llmflash" && remeasure_flag != "off";
    if (measure) {
      Status ms = remeasure();
      if (!ms.ok()) return Fail(ms);
    }
    StatusOr<ModeResult> r = m == "mmap" ? RunMmapMode(argc, argv, info, info.budget_bytes)
                                         : RunMode(**model, m, prompt, static_cast<int>(*tokens),
                                                   lookahead);
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
  const ModeResult* naive = nullptr;
  const ModeResult* flash = nullptr;
  for (const auto& r : results) {
    if (r.mode == "naive") naive = &r;
    if (r.mode == "llmflash") flash = &r;
  }
  // The cost model on the llmflash run's own workload (reads actually issued),
  // and the floor for it.
  double predicted = 0, floor = 0, profiled_mbps = 0, predicted_stored = 0;
  if (flash != nullptr) {
    const bool fresh = around.size() == 2;
    const DeviceProfile expect = fresh ? CombineProfiles(around[0], around[1], false) : profile;
    const DeviceProfile best = fresh ? CombineProfiles(around[0], around[1], true) : profile;
    TokenWorkload w;
    w.read_ops = flash->reads;
    w.device_bytes = flash->device;
    w.queue_depth = o.queue_depth;
    w.dtype = info.dtype;
    w.weight_bytes = info.weight_bytes_per_token + flash->computed * info.record_bytes;
    w.predictor_bytes = info.has_predictor ? info.predictor_bytes_per_token : 0;
    w.predictor_dtype = info.predictor_dtype;
    w.moved_bytes = flash->moved;  // deletions and rebalancing, as counted
    w.overlapped_ms = flash->hidden;
    CostEstimate e = EstimateTokenCost(expect, w);
    predicted = e.total_ms;
    predicted_stored = EstimateTokenCost(profile, w).total_ms;
    const double read_size = flash->reads > 0 ? flash->device / flash->reads : info.record_bytes;
    floor = FloorMs(best, flash->bytes, read_size, o.queue_depth, w.weight_bytes);
    profiled_mbps = best.ReadThroughput(read_size, o.queue_depth) / 1e6;
    if (fresh) {
      std::printf("device just before llmflash: %s\n", ProfileHeadline(around[0], read_size, o.queue_depth, info.dtype).c_str());
      std::printf("device just after llmflash:  %s\n", ProfileHeadline(around[1], read_size, o.queue_depth, info.dtype).c_str());
      std::printf("stored profile:              %s\n", ProfileHeadline(profile, read_size, o.queue_depth, info.dtype).c_str());
      std::printf("(prediction from the mean of before and after, floor from the better of the two; "
                  "with the stored profile the prediction is %.1f ms)\n", predicted_stored);
    }
    std::printf("cost model for llmflash: %.1f ms/token = I/O %.1f + compute %.1f + predictor %.1f + memory %.1f - overlap %.1f\n",
                e.total_ms, e.io_ms, e.compute_ms, e.predictor_ms, e.memory_ms,
                e.io_ms + e.compute_ms + e.predictor_ms + e.memory_ms - e.total_ms);
    std::printf("floor: %.1f ms/token = max(%.1f MiB to read at %.0f MB/s, %.1f MiB of weights at %.1f GB/s)\n",
                floor, flash->bytes / 1048576.0, profiled_mbps,
                w.weight_bytes / 1048576.0, DramReadBytesPerSecond(best) / 1e9);
  }
  std::printf("\n| mode     | ms/token mean |   p50    |   p90    |  io ms   | mem ms | pred ms | compute ms | MiB read/token | reads/token | mean read KiB | read MB/s | peak RSS MiB | vs naive |\n");
  std::printf("|----------|---------------|----------|----------|----------|--------|---------|------------|----------------|-------------|---------------|-----------|--------------|----------|\n");
  for (const auto& r : results) {
    const double mean_read = r.reads > 0 ? r.device / r.reads : 0;
    const double rate = ReadRate(r);
    std::printf("| %-8s | %13.3f | %8.3f | %8.3f | %8.3f | %6.3f | %7.3f | %10.3f | %14.3f | %11.1f | %13.1f | %9.0f | %12.1f | %7.2fx |\n",
                r.mode.c_str(), r.total.mean, r.total.p50, r.total.p90, r.io, r.memory, r.predictor,
                r.compute, r.bytes / 1048576.0, r.reads, mean_read / 1024, rate, r.peak_rss / 1048576.0,
                naive ? naive->total.mean / r.total.mean : 1.0);
  }
  if (flash != nullptr) {
    std::printf("\nllmflash: measured %.1f ms/token, predicted %.1f (%+.0f%%), floor %.1f (measured = %.2fx floor)\n",
                flash->total.mean, predicted, 100.0 * (predicted - flash->total.mean) / flash->total.mean,
                floor, flash->total.mean / std::max(1e-9, floor));
    if (flash->total.mean < floor && ReadRate(*flash) > profiled_mbps) {
      std::printf("llmflash: below the floor: the device read at %.0f MB/s, the profile says %.0f at this "
                  "read size (re-measure with llmflash calibrate)\n", ReadRate(*flash), profiled_mbps);
    }
  }
  for (const auto& r : results) {
    if (r.hidden > 0) {
      std::printf("%s: %.1f ms/token of reads hidden behind compute (%.0f%% of read time; %.1f ms waited)\n",
                  r.mode.c_str(), r.hidden, 100.0 * r.hidden / std::max(1e-9, r.hidden + r.io), r.io);
    }
    if (r.lookahead_tokens > 0) {
      std::printf("%s: lookahead on for %zu of %zu tokens (--lookahead %s), read %.0f neurons/token "
                  "(%.0f%% of them unused)\n",
                  r.mode.c_str(), r.lookahead_tokens, r.tokens, look.c_str(), r.prefetched,
                  100.0 * r.unused / std::max(1.0, r.prefetched));
    } else if (r.mode == "llmflash" && info.has_predictor) {
      std::printf("%s: lookahead off (--lookahead %s)\n", r.mode.c_str(), look.c_str());
    }
  }
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
    nlohmann::json j = {{"model", dir}, {"budget_bytes", info.budget_bytes}, {"model_bytes", *whole},
                        {"neuron_capacity", info.neuron_capacity}, {"ffn_dim", info.ffn_dim},
                        {"window", info.window}, {"modes", list}, {"profile", info.profile_source},
                        {"floor_ms", flash ? nlohmann::json(floor) : nlohmann::json(nullptr)},
                        {"predicted_ms", flash ? nlohmann::json(predicted) : nlohmann::json(nullptr)},
                        {"predicted_ms_stored_profile", flash ? nlohmann::json(predicted_stored) : nlohmann::json(nullptr)},
                        {"device_remeasured", around.size() == 2},
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

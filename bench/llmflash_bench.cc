// llmflash-bench: latency per token with the FFN read from flash, for one or
// more loading modes on the same model, prompt and budget, in one run:
//   naive     every FFN weight of each layer is read for every token
//   hybrid    as much of the FFN as the budget allows stays resident, the
//             rest is read for every token; no sparsity
//   llmflash  predictor + window + bundling (the model's predictor, if any)
//   mmap      not implemented yet: reported as skipped
// For each: ms/token (mean, p50, p90) split into I/O wait, memory management,
// predictor and compute; bytes and reads per token; peak RSS. --json writes
// the same numbers.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <vector>

#include "llmflash/llmflash.h"
#include "tools/common/flags.h"

namespace llmflash::tools {
namespace {

constexpr char kUsage[] =
    "usage: llmflash-bench --model DIR [--modes naive,hybrid,llmflash] [--tokens N]\n"
    "                      [--prompt TEXT] [--dram-budget BYTES|N%] [--window K]\n"
    "                      [--max-context N (256)] [--no-predictor] [--json FILE]\n";

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
  double bytes = 0, device = 0, reads = 0, computed = 0;
  uint64_t peak_rss = 0;
  size_t tokens = 0;
  std::vector<double> per_token;
};

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
                             int tokens, bool lookahead) {
  SessionOptions so;
  so.lookahead = lookahead;
  so.use_predictor = mode == "llmflash";
  so.reuse_resident_neurons = mode != "naive";
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
    r.prefetched += t.neurons_prefetched;
    r.unused += t.prefetch_unused;
    r.bytes += t.bytes_read;
    r.device += t.device_bytes;
    r.reads += t.read_ops;
    r.computed += t.neurons_computed;
  }
  r.tokens = total.size();
  const double n = std::max<size_t>(1, r.tokens);
  for (double* v : {&r.io, &r.memory, &r.predictor, &r.compute, &r.hidden, &r.prefetched, &r.unused,
                    &r.bytes, &r.device, &r.reads, &r.computed}) {
    *v /= n;
  }
  r.per_token = total;
  r.total = Summarize(total);
  return r;
}

int Main(int argc, char** argv) {
  Flags f(argc, argv, 1, {"no-predictor", "no-lookahead"});
  Status st = f.Check({"model", "modes", "tokens", "prompt", "dram-budget", "window", "json",
                       "no-predictor", "no-lookahead", "max-context", "threads"});
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
  if (!threads.ok()) return Fail(threads.status());
  o.threads = static_cast<int>(*threads);
  for (const Status* s : {&tokens.status(), &window.status(), &context.status()}) if (!s->ok()) return Fail(*s);
  if (*tokens < 1 || *window < 1 || *context < 1) {
    return Fail(Status::InvalidArgument("--tokens, --window and --max-context must be >= 1"));
  }
  o.window = static_cast<int>(*window);
  o.max_context = static_cast<int>(*context);
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
  std::printf("model %s: %.2f MiB, budget %.2f MiB, %d of %d neurons/layer fit, window %d, %s\n\n",
              dir.c_str(), *whole / 1048576.0, info.budget_bytes / 1048576.0, info.neuron_capacity,
              info.ffn_dim, o.window, info.has_predictor ? "with predictor" : "no predictor");
  std::string prompt = f.Get("prompt", "Once upon a time");
  std::vector<ModeResult> results;
  for (const std::string& m : modes) {
    if (m == "mmap") {
      std::printf("mmap: skipped (not implemented yet)\n");
      continue;
    }
    if (m == "llmflash" && !info.has_predictor) {
      std::printf("llmflash: no predictor stored, running dense (train one with llmflash train-predictor)\n");
    }
    auto r = RunMode(**model, m, prompt, static_cast<int>(*tokens), !f.Has("no-lookahead"));
    if (!r.ok()) return Fail(r.status());
    results.push_back(*r);
  }
  const ModeResult* naive = nullptr;
  for (const auto& r : results) if (r.mode == "naive") naive = &r;
  std::printf("\n| mode     | ms/token mean |   p50    |   p90    |  io ms   | mem ms | pred ms | compute ms | MiB read/token | reads/token | peak RSS MiB | vs naive |\n");
  std::printf("|----------|---------------|----------|----------|----------|--------|---------|------------|----------------|-------------|--------------|----------|\n");
  for (const auto& r : results) {
    std::printf("| %-8s | %13.3f | %8.3f | %8.3f | %8.3f | %6.3f | %7.3f | %10.3f | %14.3f | %11.1f | %12.1f | %7.2fx |\n",
                r.mode.c_str(), r.total.mean, r.total.p50, r.total.p90, r.io, r.memory, r.predictor,
                r.compute, r.bytes / 1048576.0, r.reads, r.peak_rss / 1048576.0,
                naive ? naive->total.mean / r.total.mean : 1.0);
  }
  for (const auto& r : results) {
    if (r.prefetched > 0) {
      std::printf("%s: lookahead read %.0f neurons/token (%.0f%% of them unused), %.1f ms/token of reads hidden behind compute\n",
                  r.mode.c_str(), r.prefetched, 100.0 * r.unused / r.prefetched, r.hidden);
    }
  }
  if (f.Has("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& r : results) {
      list.push_back({{"mode", r.mode}, {"ms_per_token_mean", r.total.mean}, {"ms_per_token_p50", r.total.p50},
                      {"ms_per_token_p90", r.total.p90}, {"io_ms", r.io}, {"memory_ms", r.memory},
                      {"predictor_ms", r.predictor}, {"compute_ms", r.compute},
                      {"io_hidden_ms", r.hidden}, {"neurons_prefetched_per_token", r.prefetched},
                      {"prefetch_unused_per_token", r.unused},
                      {"bytes_per_token", r.bytes}, {"device_bytes_per_token", r.device},
                      {"reads_per_token", r.reads}, {"neurons_computed_per_token", r.computed},
                      {"peak_rss_bytes", r.peak_rss}, {"tokens", r.tokens}, {"per_token_ms", r.per_token},
                      {"speedup_over_naive", naive ? nlohmann::json(naive->total.mean / r.total.mean)
                                                   : nlohmann::json(nullptr)}});
    }
    nlohmann::json j = {{"model", dir}, {"budget_bytes", info.budget_bytes}, {"model_bytes", *whole},
                        {"neuron_capacity", info.neuron_capacity}, {"ffn_dim", info.ffn_dim},
                        {"window", o.window}, {"modes", list},
                        {"floor_ms", nullptr}, {"predicted_ms", nullptr}};  // cost model: not built yet
    std::ofstream out(f.Get("json"));
    out << j.dump(1) << "\n";
    if (!out) return Fail(Status::IOError(f.Get("json") + ": write failed"));
  }
  return 0;
}

}  // namespace
}  // namespace llmflash::tools

int main(int argc, char** argv) { return llmflash::tools::Main(argc, argv); }

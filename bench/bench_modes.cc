// One run of a benchmark mode, its JSON and its plot.
#include "bench/bench_modes.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <numeric>
#include <sstream>

#include "util/heap_usage.h"
#include "util/timer.h"

namespace llmflash::tools {
namespace {

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

// Drops the page cache (root only) so modes start equally cold.
void DropCaches() {
  std::ofstream("/proc/sys/vm/drop_caches") << "3\n";
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
  if (j.contains("prefill") && j["prefill"].is_object()) {
    const nlohmann::json& p = j["prefill"];
    r.prefill.tokens = p.value("tokens", size_t{0});
    r.prefill.passes = p.value("passes", 0);
    r.prefill.ms = p.value("ms", 0.0);
    r.prefill.ttft_ms = p.value("ttft_ms", 0.0);
    r.prefill.bytes_read = p.value("bytes_read", 0.0);
    r.prefill.peak_rss = p.value("peak_rss_bytes", uint64_t{0});
    r.prefill.token_path_tokens = p.value("token_path_tokens", size_t{0});
    r.prefill.token_path_ms = p.value("token_path_ms", 0.0);
  }
  return r;
}

constexpr uint64_t kFixedOverheadBytes = 64ull << 20;

}  // namespace

uint64_t CurrentRss() { return ResidentBytes(); }

// MB/s while reads were in flight: the wait plus the read time hidden
// behind compute.
double ReadRate(const ModeResult& r) {
  const double ms = r.io + r.hidden;
  return ms > 0 ? r.device / (ms / 1e3) / 1e6 : 0;
}

namespace {

// The prompt in micro-batches from a cold page cache, then the first token
// sampled; for llmflash also a prefix of it one decode step per token.
Status RunPrefill(Model& model, const std::string& mode, const RunSpec& spec, const SessionOptions& so,
                  ModeResult::Prefill* p) {
  DropCaches();
  ResetPeakResidentBytes();
  auto session = model.NewSession(so);
  if (!session.ok()) return session.status();
  Timer timer;
  Status st = (*session)->AppendTokens(spec.prompt_ids, Prefill::kBatch, nullptr);
  if (!st.ok()) return st;
  p->ms = timer.ElapsedMs();
  st = (*session)->Generate("", {.max_tokens = 1}, nullptr);
  if (!st.ok()) return st;
  p->ttft_ms = timer.ElapsedMs();
  p->tokens = spec.prompt_ids.size();
  for (const TokenStats& t : (*session)->stats().tokens) {
    if (!t.prompt) continue;
    ++p->passes;
    p->bytes_read += t.bytes_read;
  }
  p->peak_rss = PeakResidentBytes();
  const size_t m = std::min<size_t>(spec.token_path_tokens, spec.prompt_ids.size());
  if (mode != "llmflash" || m == 0) return Status::OK();
  (*session)->Reset();
  DropCaches();
  std::vector<TokenId> prefix(spec.prompt_ids.begin(), spec.prompt_ids.begin() + m);
  Timer token_timer;
  st = (*session)->AppendTokens(prefix, Prefill::kToken, nullptr);
  if (!st.ok()) return st;
  p->token_path_ms = token_timer.ElapsedMs();
  p->token_path_tokens = m;
  return Status::OK();
}

}  // namespace

StatusOr<ModeResult> RunMode(Model& model, const std::string& mode, const RunSpec& spec,
                             Lookahead lookahead) {
  SessionOptions so;
  so.lookahead = lookahead;
  so.use_predictor = mode == "llmflash";
  so.reuse_resident_neurons = mode != "naive" && mode != "mmap";
  ModeResult::Prefill prefill;
  if (!spec.prompt_ids.empty()) {
    Status st = RunPrefill(model, mode, spec, so, &prefill);
    if (!st.ok()) return st;
  }
  DropCaches();
  ResetPeakResidentBytes();
  auto session = model.NewSession(so);
  if (!session.ok()) return session.status();
  size_t skip = 0;
  if (spec.generate) {
    GenerateOptions g;
    g.max_tokens = spec.tokens;
    Status st = (*session)->Generate(spec.prompt, g, nullptr);
    if (!st.ok()) return st;
    for (const TokenStats& t : (*session)->stats().tokens) skip += t.prompt;  // the prompt's passes
  } else {
    Status st = (*session)->Run(spec.workload->tokens, nullptr);
    if (!st.ok()) return st;
    skip = spec.workload->warmup;
  }
  const Stats& s = (*session)->stats();
  ModeResult r;
  r.mode = mode;
  r.peak_rss = PeakResidentBytes();
  r.prefill = prefill;
  std::vector<double> total;
  for (size_t i = std::min(skip, s.tokens.size()); i < s.tokens.size(); ++i) {
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
      << "\" text-anchor=\"middle\">timed token</text>\n"
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
          {"per_token_ms", r.per_token},
          {"prefill_tokens_per_s", r.prefill.tokens > 0 ? nlohmann::json(r.prefill.tokens_per_s()) : nlohmann::json(nullptr)},
          {"ttft_ms", r.prefill.tokens > 0 ? nlohmann::json(r.prefill.ttft_ms) : nlohmann::json(nullptr)},
          {"prefill_token_by_token_tokens_per_s", r.prefill.token_path_tokens > 0
                                                      ? nlohmann::json(r.prefill.token_path_tokens_per_s())
                                                      : nlohmann::json(nullptr)},
          {"prefill", {{"tokens", r.prefill.tokens}, {"passes", r.prefill.passes}, {"ms", r.prefill.ms},
                       {"ttft_ms", r.prefill.ttft_ms}, {"bytes_read", r.prefill.bytes_read},
                       {"peak_rss_bytes", r.prefill.peak_rss}, {"token_path_tokens", r.prefill.token_path_tokens},
                       {"token_path_ms", r.prefill.token_path_ms}}}};
}

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

}  // namespace llmflash::tools

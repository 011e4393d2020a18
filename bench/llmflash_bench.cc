// llmflash-bench: latency per token of generation with the FFN read from
// flash, split into I/O wait, memory management and compute, with bytes and
// read operations per token. Prints a table; --json writes the same numbers.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "llmflash/llmflash.h"
#include "tools/common/flags.h"

namespace llmflash::tools {
namespace {

constexpr char kUsage[] =
    "usage: llmflash-bench --model DIR [--tokens N] [--prompt TEXT] [--dram-budget BYTES|N%]\n"
    "                      [--window K] [--max-context N (256)] [--no-predictor] [--json FILE]\n";

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

int Fail(const Status& st) {
  std::fprintf(stderr, "llmflash-bench: %s\n", st.ToString().c_str());
  return 1;
}

int Main(int argc, char** argv) {
  Flags f(argc, argv, 1, {"no-predictor"});
  Status st = f.Check({"model", "tokens", "prompt", "dram-budget", "window", "json", "no-predictor",
                       "max-context"});
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
  if (!tokens.ok()) return Fail(tokens.status());
  if (!window.ok()) return Fail(window.status());
  if (*tokens < 1 || *window < 1) return Fail(Status::InvalidArgument("--tokens and --window must be >= 1"));
  o.window = static_cast<int>(*window);
  auto context = f.GetInt("max-context", 256);
  if (!context.ok()) return Fail(context.status());
  o.max_context = static_cast<int>(*context);
  auto model = Model::Open(dir, o);
  if (!model.ok()) return Fail(model.status());
  auto session = (*model)->NewSession({.use_predictor = !f.Has("no-predictor")});
  if (!session.ok()) return Fail(session.status());
  std::string prompt = f.Get("prompt", "Once upon a time");
  GenerateOptions g;
  g.max_tokens = static_cast<int>(*tokens);
  st = (*session)->Generate(prompt, g, nullptr);
  if (!st.ok()) return Fail(st);

  const Stats& s = (*session)->stats();
  const ModelInfo& info = (*model)->info();
  // Generated tokens only: the prompt's forward passes are reported apart.
  size_t first = std::min<size_t>(s.prompt_tokens, s.tokens.size());
  std::vector<double> total, io, mem, pred, comp;
  double bytes = 0, device = 0, reads = 0, computed = 0;
  for (size_t i = first; i < s.tokens.size(); ++i) {
    const TokenStats& t = s.tokens[i];
    total.push_back(t.total_ms);
    io.push_back(t.io_ms);
    mem.push_back(t.memory_ms);
    pred.push_back(t.predictor_ms);
    comp.push_back(t.compute_ms);
    bytes += t.bytes_read;
    device += t.device_bytes;
    computed += t.neurons_computed;
    reads += t.read_ops;
  }
  const double n = std::max<size_t>(1, total.size());
  Summary T = Summarize(total), I = Summarize(io), M = Summarize(mem), P = Summarize(pred),
          C = Summarize(comp);
  std::printf("model %s: %.2f MiB, budget %.2f MiB, %d of %d neurons/layer resident%s, window %d, "
              "backend %s%s\n",
              dir.c_str(), *whole / 1048576.0, info.budget_bytes / 1048576.0, info.neuron_capacity,
              info.ffn_dim, info.streams_layers ? " (streamed)" : "", o.window, s.io_backend,
              s.direct_io ? " O_DIRECT" : " buffered");
  std::printf("%zu prompt passes, %zu generated tokens measured\n\n", first, total.size());
  std::printf("| %-10s | %9s | %9s | %9s |\n", "ms/token", "mean", "p50", "p90");
  std::printf("|------------|-----------|-----------|-----------|\n");
  for (auto [name, v] : {std::pair{"total", T}, {"io wait", I}, {"memory", M}, {"predictor", P}, {"compute", C}}) {
    std::printf("| %-10s | %9.3f | %9.3f | %9.3f |\n", name, v.mean, v.p50, v.p90);
  }
  std::printf("\nFFN bytes read/token %.0f (%.3f MiB; device transferred %.0f), reads/token %.1f, "
              "mean read %.0f bytes, neurons computed/token %.0f of %d\n",
              bytes / n, bytes / n / 1048576.0, device / n, reads / n,
              reads > 0 ? device / reads : 0.0, computed / n,
              info.ffn_dim * info.n_layers);

  if (f.Has("json")) {
    nlohmann::json j = {
        {"model", dir}, {"budget_bytes", info.budget_bytes}, {"model_bytes", *whole},
        {"neuron_capacity", info.neuron_capacity}, {"ffn_dim", info.ffn_dim},
        {"window", o.window}, {"io_backend", s.io_backend}, {"direct_io", s.direct_io},
        {"tokens", total.size()},
        {"ms_per_token_mean", T.mean}, {"ms_per_token_p50", T.p50}, {"ms_per_token_p90", T.p90},
        {"io_ms", I.mean}, {"memory_ms", M.mean}, {"predictor_ms", P.mean}, {"compute_ms", C.mean},
        {"bytes_per_token", bytes / n}, {"device_bytes_per_token", device / n},
        {"reads_per_token", reads / n}, {"neurons_computed_per_token", computed / n},
        {"per_token_ms", total}};
    std::ofstream out(f.Get("json"));
    out << j.dump(1) << "\n";
    if (!out) return Fail(Status::IOError(f.Get("json") + ": write failed"));
  }
  return 0;
}

}  // namespace
}  // namespace llmflash::tools

int main(int argc, char** argv) { return llmflash::tools::Main(argc, argv); }

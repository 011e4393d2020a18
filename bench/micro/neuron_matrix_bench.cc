// Cost of neuron-matrix updates: the per-token delete (move last row in) and
// append, at record sizes of stories260K (768 B) and OPT-6.7B f16 (16 KiB).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "cache/layer_cache.h"

namespace llmflash {
namespace {

// Each iteration: a token whose active set replaces `churn` of the resident
// neurons (the paper's ~2.4% of the FFN per token under windowing).
void BM_WindowChurn(benchmark::State& state) {
  const int n = 16384, cap = 2048;
  const uint64_t row = state.range(0);
  const int churn = static_cast<int>(state.range(1));
  LayerCache cache;
  if (!cache.Init(n, cap, row, 1).ok()) std::abort();
  std::mt19937 rng(1);
  std::vector<int32_t> active(cap), slots, missing;
  for (int i = 0; i < cap; ++i) active[i] = i;
  int64_t t = 0;
  for (auto _ : state) {
    for (int i = 0; i < churn; ++i) active[rng() % cap] = cap + rng() % (n - cap);
    std::vector<int32_t> sorted = active;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    cache.BeginToken(t++, sorted, &slots, &missing);
    cache.MakeRoom(static_cast<int>(missing.size()), t - 1);
    for (int32_t id : missing) cache.matrix().Append(id);
    benchmark::DoNotOptimize(cache.matrix().Row(0));
  }
  state.counters["bytes_moved/token"] =
      benchmark::Counter(static_cast<double>(cache.matrix().bytes_moved()) / state.iterations());
}
BENCHMARK(BM_WindowChurn)->Args({768, 50})->Args({16384, 50})->Args({16384, 400});

}  // namespace
}  // namespace llmflash

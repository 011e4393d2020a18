// One thread's MatVec per storage type and code path, on a matrix that fits
// the caches (what the arithmetic costs) and one eight times the last-level
// cache (what streaming it from DRAM costs). Counters: bytes of weights and
// elements per second.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/parallel_kernels.h"
#include "kernels/typed_kernels.h"
#include "util/dtype.h"
#include "util/quantize.h"

namespace llmflash {
namespace {

// A rows x cols matrix of normal values stored as `t`, and n inputs of cols.
std::vector<char> RandomMatrix(DType t, int rows, int cols, int n, std::vector<float>* x) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  x->resize(static_cast<size_t>(n) * cols);
  for (auto& v : *x) v = d(rng);
  std::vector<float> row(cols);
  std::vector<char> w(static_cast<size_t>(rows) * RowBytes(t, cols));
  for (int r = 0; r < rows; ++r) {
    for (auto& v : row) v = d(rng);
    QuantizeRow(t, row.data(), cols, w.data() + static_cast<size_t>(r) * RowBytes(t, cols));
  }
  return w;
}

void BM_MatVec(benchmark::State& state, DType t, KernelPath path) {
  if (!UseKernelPath(path)) {
    state.SkipWithError("path not available on this CPU");
    return;
  }
  const int cols = 4096, rows = static_cast<int>(state.range(0));
  std::vector<float> x, out(rows);
  std::vector<char> w = RandomMatrix(t, rows, cols, 1, &x);
  for (auto _ : state) {
    MatVec(WeightRef{w.data(), t}, x.data(), rows, cols, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["weight_bytes_per_s"] =
      benchmark::Counter(static_cast<double>(w.size()), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["elements_per_s"] =
      benchmark::Counter(static_cast<double>(rows) * cols, benchmark::Counter::kIsIterationInvariantRate);
  UseKernelPath(BestKernelPath());
}

void Sizes(benchmark::internal::Benchmark* b) {
  b->Arg(256);    // 1-4 MiB: in cache
  b->Arg(16384);  // 36-256 MiB: from DRAM
}

#define LLMFLASH_MATVEC(type, path)                                                              \
  BENCHMARK_CAPTURE(BM_MatVec, type##_##path, DType::k##type, KernelPath::k##path)->Apply(Sizes)
LLMFLASH_MATVEC(F32, Portable);
LLMFLASH_MATVEC(F16, Avx2);
LLMFLASH_MATVEC(F16, Avx512);
LLMFLASH_MATVEC(Q8_0, Portable);
LLMFLASH_MATVEC(Q8_0, Avx2);
LLMFLASH_MATVEC(Q4_0, Portable);
LLMFLASH_MATVEC(Q4_0, Avx2);
LLMFLASH_MATVEC(F16, Neon);
LLMFLASH_MATVEC(Q8_0, Neon);
LLMFLASH_MATVEC(Q4_0, Neon);
#undef LLMFLASH_MATVEC

// One thread's MatMul of a prompt's micro-batch (range(1) inputs) over a
// 1024 x 4096 matrix: multiply-adds per second, the prefill's compute rate.
void BM_MatMul(benchmark::State& state, DType t) {
  const int cols = 4096, rows = 1024, n = static_cast<int>(state.range(0));
  std::vector<float> x, out(static_cast<size_t>(n) * rows);
  std::vector<char> w = RandomMatrix(t, rows, cols, n, &x);
  for (auto _ : state) {
    MatMul(WeightRef{w.data(), t}, x.data(), n, rows, cols, out.data(), rows);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["macs_per_s"] = benchmark::Counter(static_cast<double>(rows) * cols * n,
                                                    benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_CAPTURE(BM_MatMul, F16, DType::kF16)->Arg(1)->Arg(16)->Arg(64)->Arg(128);
BENCHMARK_CAPTURE(BM_MatMul, F32, DType::kF32)->Arg(64);
BENCHMARK_CAPTURE(BM_MatMul, Q8_0, DType::kQ8_0)->Arg(64);
BENCHMARK_CAPTURE(BM_MatMul, Q4_0, DType::kQ4_0)->Arg(64);

// The FFN of a micro-batch (range(1) inputs) over range(0) neuron records
// of type t of a Llama-7B layer (dim 4096, gated: gate, up and down), every
// input computing every neuron: the batched prefill's FFN rate
// (kernels/kernels.cc FfnRowsBatch).
void BM_FfnBatch(benchmark::State& state, DType t) {
  const int threads = static_cast<int>(state.range(2));
  ThreadPool pool(threads);
  std::vector<float> scratch;
  const int d = 4096, neurons = static_cast<int>(state.range(0)), n = static_cast<int>(state.range(1));
  const uint64_t row = RowBytes(t, d);
  RecordLayout l;
  l.dim = d;
  l.gate_offset = 0;
  l.up_offset = static_cast<int64_t>(row);
  l.down_offset = static_cast<int64_t>(2 * row);
  l.act.kind = ActivationKind::kRelu;
  l.dtype = t;
  std::vector<float> x, out(static_cast<size_t>(n) * d);
  std::vector<char> w = RandomMatrix(t, 3 * neurons, d, n, &x);
  std::vector<int32_t> slots(neurons);
  for (int i = 0; i < neurons; ++i) slots[i] = i;
  for (auto _ : state) {
    FfnRowsBatch(&pool, l, w.data(), 3 * row, slots, slots, x.data(), n, out.data(), nullptr, 0, nullptr,
                 &scratch);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["macs_per_s"] = benchmark::Counter(3.0 * neurons * d * n,
                                                    benchmark::Counter::kIsIterationInvariantRate);
}
// range(2) threads (the pool's split; wall-clock time).
BENCHMARK_CAPTURE(BM_FfnBatch, F16, DType::kF16)
    ->Args({256, 128, 1})->Args({256, 64, 1})->Args({512, 128, 2})->Args({64, 128, 2})->Args({341, 128, 2})
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_FfnBatch, Q4_0, DType::kQ4_0)->Args({256, 128, 1})->Args({512, 128, 2})->UseRealTime();
BENCHMARK_CAPTURE(BM_FfnBatch, Q8_0, DType::kQ8_0)->Args({256, 128, 1})->UseRealTime();

}  // namespace
}  // namespace llmflash

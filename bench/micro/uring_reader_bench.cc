// Read throughput of the I/O backends by chunk size and queue depth, with
// O_DIRECT on a 256 MiB file in $TMPDIR (or /tmp), random aligned offsets.
// Run as root after `echo 3 > /proc/sys/vm/drop_caches` for cold numbers;
// O_DIRECT bypasses the page cache either way.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "io/io_backend.h"
#include "util/aligned_buffer.h"

namespace llmflash {
namespace {

constexpr uint64_t kFileBytes = 256ull << 20;

const std::string& BenchFile() {
  static std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string p = std::string(dir ? dir : "/tmp") + "/llmflash_bench_reader.bin";
    int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char> buf(1 << 20, 'x');
    for (uint64_t i = 0; i < kFileBytes; i += buf.size()) {
      if (write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) std::abort();
    }
    fsync(fd);
    close(fd);
    return p;
  }();
  return path;
}

void BM_Read(benchmark::State& state, IoBackendKind kind) {
  const uint64_t chunk = state.range(0);
  const int depth = static_cast<int>(state.range(1));
  IoOptions o;
  o.queue_depth = depth;
  auto io = OpenIoBackend(BenchFile(), kind, o);
  if (!io.ok()) {
    state.SkipWithError(io.status().ToString().c_str());
    return;
  }
  // One batch = `depth` reads of `chunk` bytes at random aligned offsets.
  AlignedBuffer buf;
  buf.Allocate(chunk * depth);
  std::mt19937_64 rng(1);
  std::vector<ReadRequest> reqs(depth);
  IoCounters c;
  for (auto _ : state) {
    for (int i = 0; i < depth; ++i) {
      reqs[i] = {rng() % (kFileBytes / chunk) * chunk, chunk, buf.data() + i * chunk};
    }
    Status st = (*io)->ReadBatch(reqs, &c);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * chunk * depth);
  state.counters["direct"] = (*io)->direct_io();
}

void Args(benchmark::internal::Benchmark* b) {
  for (int64_t chunk : {4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20}) {
    for (int64_t depth : {1, 4, 16, 64}) b->Args({chunk, depth});
  }
}

BENCHMARK_CAPTURE(BM_Read, uring, IoBackendKind::kUring)->Apply(Args)->UseRealTime();
BENCHMARK_CAPTURE(BM_Read, pread, IoBackendKind::kPread)->Apply(Args)->UseRealTime();

}  // namespace
}  // namespace llmflash

// CalibrateDevice: measures flash reads by chunk size and queue depth through
// the io_uring backend with O_DIRECT, DRAM copy bandwidth, and matvec
// throughput per storage dtype.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "io/io_backend.h"
#include "kernels/parallel_kernels.h"
#include "llmflash/profile.h"
#include "util/aligned_buffer.h"
#include "util/file.h"
#include "util/macros.h"
#include "util/timer.h"

namespace llmflash {
namespace {

// Writes `size` bytes of non-zero data to a new file.
Status WriteScratch(const std::string& path, uint64_t size) {
  WritableFile f;
  RETURN_IF_ERROR(f.Open(path));
  std::vector<char> block(1 << 20);
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 131 + 7);
  for (uint64_t done = 0; done < size; done += block.size()) {
    RETURN_IF_ERROR(f.Append(block.data(), std::min<uint64_t>(block.size(), size - done)));
  }
  return f.Close();
}

// Bytes/s of random aligned reads of `chunk` bytes, `depth` in flight.
StatusOr<double> MeasureReads(const std::string& path, uint64_t file_size, uint64_t chunk,
                              int depth, double seconds, AlignedBuffer* buf) {
  IoOptions io;
  io.queue_depth = depth;
  io.max_read_bytes = std::max<uint64_t>(chunk, 1 << 20);
  ASSIGN_OR_RETURN(auto backend, OpenIoBackend(path, IoBackendKind::kUring, io));
  const uint64_t slots = file_size / chunk;
  if (slots == 0) return Status::InvalidArgument(path + ": too small to calibrate with " + std::to_string(chunk) + "-byte reads");
  const int batch = static_cast<int>(std::min<uint64_t>(64, buf->size() / chunk));
  std::vector<ReadRequest> reqs(batch);
  uint64_t state = 0x9e3779b97f4a7c15ull ^ chunk ^ (static_cast<uint64_t>(depth) << 32);
  uint64_t bytes = 0;
  Timer t;
  do {
    for (int i = 0; i < batch; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      uint64_t slot = (state >> 17) % slots;
      reqs[i] = {slot * chunk, chunk, buf->data() + static_cast<uint64_t>(i) * chunk};
    }
    IoCounters c;
    RETURN_IF_ERROR(backend->ReadBatch(reqs, &c));
    bytes += c.bytes;
  } while (t.ElapsedMs() < seconds * 1000);
  return bytes / (t.ElapsedMs() / 1000.0);
}

double MeasureMemcpy(double seconds) {
  std::vector<char> a(64 << 20, 1), b(64 << 20);
  uint64_t bytes = 0;
  Timer t;
  do {
    std::memcpy(b.data(), a.data(), a.size());
    a[bytes % a.size()] ^= b[(bytes + 1) % b.size()];  // keep the copy observable
    bytes += a.size();
  } while (t.ElapsedMs() < seconds * 1000);
  return bytes / (t.ElapsedMs() / 1000.0);
}

// Bytes of weights the matvec benchmark streams: 8x the last-level cache
// (4x when quick), at least 128 MiB (64 MiB). A model's token streams
// gigabytes; a 4096 x 4096 f16 matrix (32 MiB) fits this machine's L3 and
// read 46 GB/s where the models' own products ran at ~30.
size_t MatVecBytes(bool quick) {
  long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  size_t cache = l3 > 0 ? static_cast<size_t>(l3) : (32u << 20);
  return std::clamp<size_t>(cache * (quick ? 4 : 8), quick ? (64u << 20) : (128u << 20), 512u << 20);
}

double MeasureMatVec(DType dtype, ThreadPool* pool, double seconds, bool quick) {
  const int cols = 4096;
  const int rows = static_cast<int>(MatVecBytes(quick) / RowBytes(dtype, cols));
  // 0x11 bytes: finite values in every type (q8_0/q4_0 scales 0x1111).
  std::vector<char> w(static_cast<size_t>(rows) * RowBytes(dtype, cols), 0x11);
  std::vector<float> x(cols, 0.5f), y(rows);
  uint64_t bytes = 0;
  Timer t;
  do {
    MatVec(pool, WeightRef{w.data(), dtype}, x.data(), rows, cols, y.data());
    x[0] += y[1] * 1e-9f;
    bytes += w.size();
  } while (t.ElapsedMs() < seconds * 1000);
  return bytes / (t.ElapsedMs() / 1000.0);
}

// Bytes/s of a read-only stream over MatVecBytes() with every thread of
// `pool`: each chunk sums its part with eight independent accumulators, so
// the loads, not the adds, set the pace.
double MeasureDramRead(ThreadPool* pool, double seconds, bool quick) {
  const size_t words = MatVecBytes(quick) / sizeof(uint64_t);
  std::vector<uint64_t> buf(words);
  for (size_t i = 0; i < words; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
  std::vector<uint64_t> sums(pool->chunks(), 0);
  uint64_t bytes = 0;
  Timer t;
  do {
    pool->ParallelFor(static_cast<int>(words), [&](int chunk, int begin, int end) {
      uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int i = begin;
      for (; i + 8 <= end; i += 8) {
        for (int k = 0; k < 8; ++k) a[k] += buf[i + k];
      }
      for (; i < end; ++i) a[0] += buf[i];
      sums[chunk] += a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    });
    bytes += words * sizeof(uint64_t);
  } while (t.ElapsedMs() < seconds * 1000);
  const double rate = bytes / (t.ElapsedMs() / 1000.0);
  volatile uint64_t keep = sums[0];  // the sums must be computed
  (void)keep;
  return rate;
}

}  // namespace

StatusOr<DeviceProfile> CalibrateDevice(const CalibrateOptions& o) {
  auto say = [&](const std::string& s) { if (o.progress) o.progress(s); };
  DeviceProfile p;
  p.quick = o.quick;
  std::string path = o.file;
  bool scratch = path.empty();
  if (scratch) {
    if (o.size_bytes < (8u << 20) || o.size_bytes > (64ull << 30)) {
      return Status::InvalidArgument("calibrate: --size must be in [8 MiB, 64 GiB]");
    }
    path = JoinPath(o.scratch_dir, ".llmflash-calibrate-" + std::to_string(::getpid()));
    say("writing a " + std::to_string(o.size_bytes >> 20) + " MiB scratch file " + path);
    Status st = WriteScratch(path, o.size_bytes);
    if (!st.ok()) {
      std::remove(path.c_str());
      return st;
    }
  }
  p.measured_file = path;
  auto cleanup = [&] { if (scratch) std::remove(path.c_str()); };
  auto size = FileSize(path);
  if (!size.ok()) return size.status();
  std::vector<uint64_t> chunks = o.quick ? std::vector<uint64_t>{4096, 65536, 1 << 20}
                                         : std::vector<uint64_t>{4096, 16384, 65536, 262144, 1 << 20};
  for (uint64_t c : chunks) {
    if (c * 8 <= *size) p.chunk_bytes.push_back(c);
  }
  if (p.chunk_bytes.empty()) {
    cleanup();
    return Status::InvalidArgument(path + ": too small to calibrate (needs 32 KiB or more)");
  }
  p.queue_depths = o.quick ? std::vector<int>{1, 64} : std::vector<int>{1, 4, 16, 64};
  const double cell_s = o.quick ? 0.04 : 0.4;
  AlignedBuffer buf;
  if (!buf.Allocate(64ull << 20)) return Status::ResourceExhausted("calibrate: cannot allocate 64 MiB");
  for (uint64_t chunk : p.chunk_bytes) {
    std::vector<double> row;
    for (int depth : p.queue_depths) {
      auto r = MeasureReads(path, *size, chunk, depth, cell_s, &buf);
      if (!r.ok()) {
        cleanup();
        return r.status();
      }
      say("read " + std::to_string(chunk >> 10) + " KiB at queue depth " + std::to_string(depth) +
          ": " + std::to_string(static_cast<int>(*r / 1e6)) + " MB/s");
      row.push_back(*r);
    }
    p.read_bytes_per_s.push_back(row);
  }
  cleanup();
  p.read_latency_us = 4096.0 / p.read_bytes_per_s[0][0] * 1e6;
  p.memcpy_bytes_per_s = MeasureMemcpy(o.quick ? 0.03 : 0.3);
  p.threads = o.threads > 0 ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  ThreadPool pool(p.threads);
  const double mv_s = o.quick ? 0.05 : 0.4;
  std::string rates;
  for (DType t : kAllDTypes) {
    const double r = MeasureMatVec(t, &pool, mv_s, o.quick);
    p.matvec_bytes_per_s[DTypeName(t)] = r;
    rates += (rates.empty() ? "" : ", ") + std::string(DTypeName(t)) + " " + std::to_string(static_cast<int>(r / 1e6));
  }
  p.dram_read_bytes_per_s = MeasureDramRead(&pool, mv_s, o.quick);
  say("memcpy " + std::to_string(static_cast<int>(p.memcpy_bytes_per_s / 1e6)) + " MB/s, matvec (MB/s of weights) " +
      rates + ", DRAM read " +
      std::to_string(static_cast<int>(p.dram_read_bytes_per_s / 1e6)) + " MB/s with " +
      std::to_string(p.threads) + " threads");
  return p;
}

}  // namespace llmflash

// Device profiles: what the flash device, DRAM and CPU of this machine can do,
// measured once by CalibrateDevice (CLI: `llmflash calibrate`) and used by the
// planner and cost model (docs/cost-model.md).
#ifndef LLMFLASH_PROFILE_H_
#define LLMFLASH_PROFILE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "llmflash/export.h"
#include "llmflash/status.h"

namespace llmflash {

struct DeviceProfile {
  std::string measured_file;             // the file whose device was read
  std::vector<uint64_t> chunk_bytes;     // read sizes measured, increasing
  std::vector<int> queue_depths;         // queue depths measured, increasing
  // read_bytes_per_s[c][q]: O_DIRECT throughput through io_uring with reads
  // of chunk_bytes[c] and queue_depths[q] reads in flight.
  std::vector<std::vector<double>> read_bytes_per_s;
  double read_latency_us = 0;            // one 4 KiB read at queue depth 1
  double memcpy_bytes_per_s = 0;         // DRAM copy bandwidth
  // DRAM read bandwidth with every thread: a read-only stream over a buffer
  // well beyond the caches, no arithmetic but a sum (the best any kernel
  // could stream weights at). 0 in profiles written before it was measured.
  double dram_read_bytes_per_s = 0;
  // Matrix-vector throughput in bytes of weights per second, with the
  // session's threads, by storage type ("f32", "f16", "bf16", "q8_0",
  // "q4_0"; older profiles lack the quantized ones).
  std::map<std::string, double> matvec_bytes_per_s;
  int threads = 1;                       // threads the matvec figures used
  bool quick = false;                    // measured by Open's short calibration

  // Read throughput for reads of `bytes` at `queue_depth`, interpolated in
  // log-log space between measured points and clamped at the edges.
  double ReadThroughput(double bytes, int queue_depth) const;
  // Seconds to read `ops` reads of `bytes_per_read` each at `queue_depth`.
  double ReadSeconds(double ops, double bytes_per_read, int queue_depth) const;
  // matvec_bytes_per_s[dtype]; for a type the profile did not measure, f16's
  // rate (a guess, said by `llmflash calibrate`), else 1 GB/s.
  double MatVecBytesPerSecond(const std::string& dtype) const;
};

struct CalibrateOptions {
  // A file on the device to measure. Empty: a scratch file of `size_bytes`
  // is written in `scratch_dir` and removed afterwards.
  std::string file;
  std::string scratch_dir = ".";
  uint64_t size_bytes = 256ull << 20;
  bool quick = false;  // ~0.5 s instead of ~10 s: fewer points, fewer bytes
  int threads = 0;     // for the matvec figures; 0: one per core
  std::function<void(const std::string&)> progress;
};

// What one token costs, by the cost model of docs/cost-model.md.
struct TokenWorkload {
  double read_ops = 0;          // read requests issued to the device
  // Batches they come in, each waited for before the next is issued (a
  // layer's misses: one per layer). A batch costs at least one read's
  // latency, and a small one cannot fill the queue. 0: a single stream.
  double read_batches = 0;
  double device_bytes = 0;      // bytes the device transfers
  int queue_depth = 64;         // reads in flight
  // Weight bytes the compute streams from DRAM, by storage type.
  std::map<std::string, double> weight_bytes;
  double predictor_bytes = 0;   // predictor weights evaluated
  std::string predictor_dtype = "f32";  // as held in DRAM (f32 or f16)
  double moved_bytes = 0;       // neuron-matrix bytes copied (deletions)
  double overlapped_ms = 0;     // I/O the schedule runs during compute

  double WeightBytes() const {  // all types together
    double s = 0;
    for (const auto& [type, bytes] : weight_bytes) s += bytes;
    return s;
  }
};

struct CostEstimate {
  double io_ms = 0, memory_ms = 0, predictor_ms = 0, compute_ms = 0;
  double total_ms = 0;  // io + memory + predictor + compute - overlap
};

LLMFLASH_EXPORT CostEstimate EstimateTokenCost(const DeviceProfile& profile, const TokenWorkload& w);

// The floor for a token: max(bytes it must read ÷ the profile's throughput
// at that read size, weight bytes it must touch ÷ DRAM read bandwidth).
LLMFLASH_EXPORT double FloorMs(const DeviceProfile& profile, double must_read_bytes,
                               double read_size, int queue_depth, double weight_bytes);

// The fastest streaming read of DRAM the profile saw: the read-only stream,
// or for older profiles its best matvec rate.
inline double DramReadBytesPerSecond(const DeviceProfile& p) {
  double best = p.dram_read_bytes_per_s;
  for (const auto& [type, rate] : p.matvec_bytes_per_s) best = rate > best ? rate : best;
  return best > 0 ? best : 1e9;
}

LLMFLASH_EXPORT StatusOr<DeviceProfile> CalibrateDevice(const CalibrateOptions& options);
LLMFLASH_EXPORT Status SaveDeviceProfile(const DeviceProfile& profile, const std::string& path);
LLMFLASH_EXPORT StatusOr<DeviceProfile> LoadDeviceProfile(const std::string& path);
// $LLMFLASH_DEVICE_PROFILE, else $XDG_CACHE_HOME/llmflash/device.json, else
// $HOME/.cache/llmflash/device.json.
LLMFLASH_EXPORT std::string DefaultDeviceProfilePath();

}  // namespace llmflash

#endif  // LLMFLASH_PROFILE_H_

// The device measured again around the llmflash mode (remeasure.h).
#include "bench/remeasure.h"

#include <algorithm>
#include <cstdio>

namespace llmflash::tools {

StatusOr<DeviceProfile> MeasureDeviceNow(const std::string& file, int threads, bool quick) {
  CalibrateOptions c;
  c.file = file;
  c.threads = threads;
  c.quick = quick;
  return CalibrateDevice(c);
}

DeviceProfile CombineProfiles(const DeviceProfile& a, const DeviceProfile& b, bool best) {
  if (a.chunk_bytes != b.chunk_bytes || a.queue_depths != b.queue_depths ||
      a.read_bytes_per_s.size() != b.read_bytes_per_s.size()) {
    return a;
  }
  auto pick = [best](double x, double y) { return best ? std::max(x, y) : (x + y) / 2; };
  DeviceProfile p = a;
  for (size_t c = 0; c < p.read_bytes_per_s.size(); ++c) {
    if (a.read_bytes_per_s[c].size() != b.read_bytes_per_s[c].size()) return a;
    for (size_t q = 0; q < p.read_bytes_per_s[c].size(); ++q) {
      p.read_bytes_per_s[c][q] = pick(a.read_bytes_per_s[c][q], b.read_bytes_per_s[c][q]);
    }
  }
  // Latency: smaller is better.
  p.read_latency_us = best ? std::min(a.read_latency_us, b.read_latency_us)
                           : (a.read_latency_us + b.read_latency_us) / 2;
  p.memcpy_bytes_per_s = pick(a.memcpy_bytes_per_s, b.memcpy_bytes_per_s);
  for (const auto& [type, rate] : a.matvec_bytes_per_s) {
    auto other = b.matvec_bytes_per_s.find(type);
    p.matvec_bytes_per_s[type] = other == b.matvec_bytes_per_s.end() ? rate : pick(rate, other->second);
  }
  return p;
}

std::string ProfileHeadline(const DeviceProfile& p, double read_size, int queue_depth,
                            const std::string& dtype) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%.0f KiB reads at queue depth %d: %.0f MB/s, %s matvec %.1f GB/s, DRAM %.1f GB/s",
                read_size / 1024, queue_depth, p.ReadThroughput(read_size, queue_depth) / 1e6,
                dtype.c_str(), p.MatVecBytesPerSecond(dtype) / 1e9, DramReadBytesPerSecond(p) / 1e9);
  return buf;
}

}  // namespace llmflash::tools

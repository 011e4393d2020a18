// The device measured again around the llmflash mode of llmflash-bench.
//
// This machine's DRAM bandwidth and its virtual disk move by up to 2x within
// minutes (other tenants): a profile measured an hour ago, or during a stall,
// says little about the minute the llmflash mode ran. So the bench runs the
// calibration (llmflash calibrate, on the model's own FFN file) just
// before and just after that mode, and derives:
//   - the floor from the better figure of the two at every point (the
//     fastest this machine was seen to be around the run: a lower floor);
//   - the prediction from their mean (what to expect during the run).
#ifndef LLMFLASH_BENCH_REMEASURE_H_
#define LLMFLASH_BENCH_REMEASURE_H_

#include <string>

#include "llmflash/profile.h"
#include "llmflash/status.h"

namespace llmflash::tools {

// A calibration of `file` with `threads` compute threads (~10 s; quick: ~0.5 s).
StatusOr<DeviceProfile> MeasureDeviceNow(const std::string& file, int threads, bool quick);

// Element-wise over two profiles of the same grid: the larger figure at every
// point (best = true) or the mean. Profiles of different grids: `a`.
DeviceProfile CombineProfiles(const DeviceProfile& a, const DeviceProfile& b, bool best);

// "16 KiB reads at queue depth 64: 1250 MB/s, f16 matvec 49.5 GB/s, DRAM 49.5 GB/s"
std::string ProfileHeadline(const DeviceProfile& p, double read_size, int queue_depth,
                            const std::string& dtype);

}  // namespace llmflash::tools

#endif  // LLMFLASH_BENCH_REMEASURE_H_

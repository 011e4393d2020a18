// Bytes the process's heap holds in allocated blocks, for counting what a
// component keeps after it loads (the heap's growth across the load), and
// the process's resident set and its peak, for measuring a budget.
//
// Thread-safety: safe to call from any thread; the figure is process-wide,
// so another thread allocating during a measured load adds to its estimate.
#ifndef LLMFLASH_UTIL_HEAP_USAGE_H_
#define LLMFLASH_UTIL_HEAP_USAGE_H_

#include <cstdint>

namespace llmflash {

// glibc's mallinfo2().uordblks; 0 where the C library cannot say (then
// nothing measured this way is counted).
uint64_t HeapBytesInUse();

// The process's resident set now (VmRSS) and its peak since the last
// ResetPeakResidentBytes (VmHWM), from /proc/self/status; 0 without it.
uint64_t ResidentBytes();
uint64_t PeakResidentBytes();
// Starts a new peak at the current resident set (/proc/self/clear_refs).
void ResetPeakResidentBytes();

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_HEAP_USAGE_H_

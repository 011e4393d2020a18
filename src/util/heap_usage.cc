#include "util/heap_usage.h"

#include <fstream>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace llmflash {

uint64_t HeapBytesInUse() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  return mallinfo2().uordblks;
#else
  return 0;
#endif
}

namespace {

// A line of /proc/self/status in bytes (its figures are KiB).
uint64_t StatusBytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(key.size())) * 1024;
  }
  return 0;
}

}  // namespace

uint64_t ResidentBytes() { return StatusBytes("VmRSS:"); }
uint64_t PeakResidentBytes() { return StatusBytes("VmHWM:"); }
void ResetPeakResidentBytes() { std::ofstream("/proc/self/clear_refs") << "5\n"; }

}  // namespace llmflash

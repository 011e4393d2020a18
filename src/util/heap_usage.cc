#include "util/heap_usage.h"

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

}  // namespace llmflash

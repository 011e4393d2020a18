// Choosing a backend, with the fallback from io_uring to pread.
#include "io/io_backend.h"

#include <cstdio>
#include <mutex>

#include "io/uring_reader.h"

namespace llmflash {

StatusOr<std::unique_ptr<IoBackend>> OpenIoBackend(const std::string& path, IoBackendKind kind,
                                                   const IoOptions& options) {
  if (kind == IoBackendKind::kPread) return OpenPreadReader(path, options);
  if (kind == IoBackendKind::kMmap) return OpenMmapReader(path);
  auto uring = OpenUringReader(path, options);
  if (uring.ok() || kind == IoBackendKind::kUring ||
      uring.status().code() != StatusCode::kUnsupported) {
    return uring;
  }
  static std::once_flag said;
  std::call_once(said, [&] {
    std::fprintf(stderr, "llmflash: %s; reading with pread instead\n",
                 uring.status().message().c_str());
  });
  return OpenPreadReader(path, options);
}

}  // namespace llmflash

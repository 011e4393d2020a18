// Choosing a backend, with the fallback from io_uring to pread.
#include "io/io_backend.h"

#include <cstdio>
#include <mutex>

#include "io/uring_reader.h"
#include "util/thread_pool.h"
#include "util/timer.h"

namespace llmflash {

IoBackend::IoBackend() = default;

IoBackend::~IoBackend() { WaitIdle(); }

void IoBackend::WaitIdle() {
  if (in_flight_) Wait();
}

void IoBackend::Submit(std::span<const ReadRequest> requests) {
  if (in_flight_) WaitIdle();  // misuse: never two batches in flight
  if (worker_ == nullptr) worker_ = std::make_unique<Worker>();
  pending_ = requests;
  async_counters_ = IoCounters{};
  async_busy_ms_ = 0;
  in_flight_ = true;
  worker_->Start([this] {
    Timer timer;
    Status st = ReadBatch(pending_, &async_counters_);
    async_busy_ms_ = timer.ElapsedMs();
    return st;
  });
}

IoCompletion IoBackend::Wait() {
  IoCompletion done;
  if (!in_flight_) return done;
  {
    ScopedTimer timer(&done.waited_ms);
    done.status = worker_->Wait();
  }
  in_flight_ = false;
  done.read = true;
  done.counters = async_counters_;
  done.busy_ms = async_busy_ms_;
  return done;
}

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

// A scriptable IoFaultInjector: turns chosen device reads into short reads,
// EAGAIN, EBUSY or EIO, and chosen io_uring submissions into EAGAIN/EBUSY.
// Thread-safe: the pread backend calls it from its worker threads.
#ifndef LLMFLASH_TESTS_TESTING_FAULT_INJECTOR_H_
#define LLMFLASH_TESTS_TESTING_FAULT_INJECTOR_H_

#include <cerrno>
#include <mutex>

#include "io/io_backend.h"

namespace llmflash::testing {

class FaultInjector final : public IoFaultInjector {
 public:
  enum class Mode { kNone, kShortRead, kErrno };

  // Every `every`-th read (counting from 1) gets the fault; `limit` caps how
  // many faults are injected (-1: no cap).
  void Set(Mode mode, int every, int err = EIO, int limit = -1) {
    std::lock_guard<std::mutex> lock(mu_);
    mode_ = mode;
    every_ = every;
    errno_ = err;
    limit_ = limit;
  }
  void FailSubmits(int count, int err) {
    std::lock_guard<std::mutex> lock(mu_);
    submit_failures_ = count;
    submit_errno_ = err;
  }

  int64_t OnRead(uint64_t, uint64_t, int64_t result) override {
    std::lock_guard<std::mutex> lock(mu_);
    int n = ++reads_;
    if (mode_ == Mode::kNone || result <= 0 || n % every_ != 0 || limit_ == 0) return result;
    // Kernels cut reads short at block boundaries; so does the injector.
    if (mode_ == Mode::kShortRead && result < 8192) return result;
    if (limit_ > 0) --limit_;
    ++injected_;
    if (mode_ == Mode::kShortRead) return result / 2 / 4096 * 4096;
    return -errno_;
  }
  int OnSubmit() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (submit_failures_ <= 0) return 0;
    --submit_failures_;
    ++injected_;
    return -submit_errno_;
  }

  int injected() const {
    std::lock_guard<std::mutex> lock(mu_);
    return injected_;
  }

 private:
  Mode mode_ = Mode::kNone;
  int every_ = 1, errno_ = EIO, limit_ = -1;
  int submit_failures_ = 0, submit_errno_ = EAGAIN;
  int reads_ = 0, injected_ = 0;
  mutable std::mutex mu_;
};

}  // namespace llmflash::testing

#endif  // LLMFLASH_TESTS_TESTING_FAULT_INJECTOR_H_

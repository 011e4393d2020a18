// Monotonic wall-clock timing for per-token statistics.
#ifndef LLMFLASH_UTIL_TIMER_H_
#define LLMFLASH_UTIL_TIMER_H_

#include <chrono>

namespace llmflash {

class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  double ElapsedMs() const {
    return std::chrono::duration<double, std::milli>(
               std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Adds the lifetime of the scope, in ms, to *sink.
class ScopedTimer {
 public:
  explicit ScopedTimer(double* sink) : sink_(sink) {}
  ~ScopedTimer() { *sink_ += timer_.ElapsedMs(); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  double* sink_;
  Timer timer_;
};

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_TIMER_H_

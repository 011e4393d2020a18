// ThreadPool and Worker.
#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace llmflash {

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { Run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  start_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {

void Chunk(int n, int parts, int index, int* begin, int* end) {
  const int base = n / parts, extra = n % parts;
  *begin = index * base + std::min(index, extra);
  *end = *begin + base + (index < extra ? 1 : 0);
}

// Spins until done() or ~kSpin has passed; true when done() became true.
constexpr auto kSpin = std::chrono::microseconds(50);
template <typename Done>
bool SpinUntil(Done done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return false;
  }
}

}  // namespace

void ThreadPool::RunChunks() {
  const int chunks = this->chunks();
  for (int c = next_chunk_.fetch_add(1, std::memory_order_relaxed); c < chunks;
       c = next_chunk_.fetch_add(1, std::memory_order_relaxed)) {
    int b, e;
    Chunk(n_, chunks, c, &b, &e);
    (*fn_)(c, b, e);
  }
}

void ThreadPool::ParallelFor(int n, const std::function<void(int, int, int)>& fn) {
  if (workers_.empty() || n <= 1) {
    fn(0, 0, n);
    for (int i = 1; i < chunks(); ++i) fn(i, n, n);
    return;
  }
  fn_ = &fn;
  n_ = n;
  next_chunk_.store(0, std::memory_order_relaxed);
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // Under the lock, so a worker between its check and its wait cannot
    // miss the bump.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_.notify_all();
  RunChunks();
  auto all_done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!SpinUntil(all_done)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, all_done);
  }
  fn_ = nullptr;
}

void ThreadPool::Run() {
  uint64_t seen = 0;
  while (true) {
    auto ready = [&] {
      return stop_.load(std::memory_order_acquire) ||
             generation_.load(std::memory_order_acquire) != seen;
    };
    if (!SpinUntil(ready)) {
      std::unique_lock<std::mutex> lock(mu_);
      start_.wait(lock, ready);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    RunChunks();
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);  // the caller may be between check and wait
      done_.notify_one();
    }
  }
}

Worker::Worker() : thread_([this] { Loop(); }) {}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Worker::Start(std::function<Status()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = std::move(job);
    has_job_ = true;
    finished_ = false;
  }
  busy_ = true;
  cv_.notify_all();
}

Status Worker::Wait() {
  if (!busy_) return Status::OK();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return finished_; });
  busy_ = false;
  return std::move(result_);
}

void Worker::Loop() {
  while (true) {
    std::function<Status()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || has_job_; });
      if (stop_ && !has_job_) return;
      job = std::move(job_);
      has_job_ = false;
    }
    Status st = job();
    {
      std::lock_guard<std::mutex> lock(mu_);
      result_ = std::move(st);
      finished_ = true;
    }
    cv_.notify_all();
  }
}

}  // namespace llmflash

// ThreadPool and Worker.
#include "util/thread_pool.h"

#include <algorithm>

namespace llmflash {

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { Run(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
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
}  // namespace

void ThreadPool::ParallelFor(int n, const std::function<void(int, int, int)>& fn) {
  if (workers_.empty() || n <= 1) {
    fn(0, 0, n);
    for (int i = 1; i < size(); ++i) fn(i, n, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    pending_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  start_.notify_all();
  int b, e;
  Chunk(n, size(), 0, &b, &e);
  fn(0, b, e);
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [this] { return pending_ == 0; });
  fn_ = nullptr;
}

void ThreadPool::Run(int index) {
  uint64_t seen = 0;
  while (true) {
    const std::function<void(int, int, int)>* fn;
    int n;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      fn = fn_;
      n = n_;
    }
    int b, e;
    Chunk(n, size(), index, &b, &e);
    (*fn)(index, b, e);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --pending_;
    }
    done_.notify_one();
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

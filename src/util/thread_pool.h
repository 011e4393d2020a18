// ThreadPool: splits a loop over [0, n) into contiguous chunks run by the
// caller and `threads - 1` persistent workers (the compute of one Session).
// There are kChunksPerThread chunks per thread, handed out in order to
// whichever thread is free: on a shared machine a thread that loses its core
// for a few milliseconds holds up one small chunk, not half the loop.
// A token makes a few hundred ParallelFor calls a few hundred microseconds
// apart, and waking a sleeping thread costs ~45 us on this VM; so workers
// (and the caller, for the last chunk) spin briefly before sleeping.
//
// Worker: one background thread that runs one job at a time, so the caller
// can overlap a job (a batch of flash reads) with its own work and collect
// the job's Status later.
//
// Thread-safety: a ThreadPool or Worker is driven by one thread at a time.
#ifndef LLMFLASH_UTIL_THREAD_POOL_H_
#define LLMFLASH_UTIL_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "llmflash/status.h"

namespace llmflash {

class ThreadPool {
 public:
  // threads <= 1: no workers; ParallelFor runs inline.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  static constexpr int kChunksPerThread = 4;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // How many chunks ParallelFor splits a loop into.
  int chunks() const { return workers_.empty() ? 1 : size() * kChunksPerThread; }

  // Calls fn(chunk, begin, end) once for each of chunks() contiguous chunks
  // of [0, n) (some possibly empty), in parallel, and returns when all are
  // done. The split depends only on n and chunks() (not on which thread ran
  // a chunk), so results that combine chunks in chunk order are
  // deterministic.
  void ParallelFor(int n, const std::function<void(int chunk, int begin, int end)>& fn);

 private:
  void Run();
  // Runs chunks until none are left.
  void RunChunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;  // with the condition variables, for threads that stopped spinning
  std::condition_variable start_, done_;
  // Written before generation_ is bumped (release), read after (acquire).
  const std::function<void(int, int, int)>* fn_ = nullptr;
  int n_ = 0;
  std::atomic<int> next_chunk_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

class Worker {
 public:
  Worker();
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts `job` on the background thread. At most one job at a time: call
  // Wait() before the next Start().
  void Start(std::function<Status()> job);
  // Blocks until the started job finished; returns its Status (OK when no
  // job was started).
  Status Wait();
  bool busy() const { return busy_; }

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<Status()> job_;
  Status result_;
  bool has_job_ = false, finished_ = false, stop_ = false;
  bool busy_ = false;  // touched only by the driving thread
  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_THREAD_POOL_H_

// The pread backend: for kernels or containers without io_uring (Docker's
// default seccomp profile blocks it). The pieces of a batch are shared out to
// a small pool of threads plus the calling thread, each with its own staging
// buffer, so several reads are in flight as with io_uring.
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "io/read_outcome.h"
#include "io/uring_reader.h"

namespace llmflash {
namespace {

class PreadReader final : public IoBackend {
 public:
  ~PreadReader() override {
    WaitIdle();  // a batch on the I/O thread uses the threads below
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  Status Init(const std::string& path, const IoOptions& options) {
    Status st = file_.Open(path, options);
    if (!st.ok()) return st;
    // Worker w uses staging slot w; the caller is worker 0.
    int workers = std::max(1, std::min(options.pread_threads, options.bounce_slots));
    for (int w = 1; w < workers; ++w) threads_.emplace_back([this, w] { Loop(w); });
    return Status::OK();
  }

  Status ReadBatch(std::span<const ReadRequest> requests, IoCounters* counters) override {
    PlanPieces(requests, file_.options(), &plan_);
    counters->requested += plan_.wanted_bytes;
    {
      std::lock_guard<std::mutex> lock(mu_);
      next_ = 0;
      failed_ = false;
      error_ = Status::OK();
      busy_ = static_cast<int>(threads_.size());
      ++generation_;
    }
    wake_.notify_all();
    IoCounters mine;
    Work(0, &mine);
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return busy_ == 0; });
    counters->bytes += mine.bytes + shared_.bytes;
    counters->ops += mine.ops + shared_.ops;
    shared_ = {};
    return error_;
  }

  const char* name() const override { return "pread"; }
  bool direct_io() const override { return file_.direct(); }
  const std::string& path() const override { return file_.path(); }

 private:
  void Loop(int worker) {
    uint64_t seen = 0;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      IoCounters mine;
      Work(worker, &mine);
      std::lock_guard<std::mutex> lock(mu_);
      shared_.bytes += mine.bytes;
      shared_.ops += mine.ops;
      if (--busy_ == 0) done_.notify_all();
    }
  }

  // Takes pieces until none is left or one failed.
  void Work(int worker, IoCounters* c) {
    while (!failed_.load()) {
      size_t i = next_.fetch_add(1);
      if (i >= plan_.pieces.size()) return;
      ReadPiece& p = plan_.pieces[i];
      if (p.staged) p.slot = worker;
      int attempts = 0;
      Status err;
      Outcome o;
      do {
        ssize_t r = pread(file_.fd(), ReadTarget(file_, p), p.read_length - p.done,
                          static_cast<off_t>(p.read_offset + p.done));
        ++c->ops;
        o = Apply(file_, plan_, p, r < 0 ? -static_cast<int64_t>(errno) : r, &attempts, &err, c);
      } while (o == Outcome::kAgain);
      if (o == Outcome::kFailed) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!failed_.exchange(true)) error_ = err;
      }
    }
  }

  FileHandle file_;
  PiecePlan plan_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  int busy_ = 0;
  bool stop_ = false;
  std::atomic<size_t> next_{0};
  std::atomic<bool> failed_{false};
  Status error_;
  IoCounters shared_;
};

}  // namespace

StatusOr<std::unique_ptr<IoBackend>> OpenPreadReader(const std::string& path,
                                                     const IoOptions& options) {
  auto r = std::make_unique<PreadReader>();
  Status st = r->Init(path, options);
  if (!st.ok()) return st;
  return std::unique_ptr<IoBackend>(std::move(r));
}

}  // namespace llmflash

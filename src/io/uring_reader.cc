// The io_uring backend.
#include "io/uring_reader.h"

#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "io/file_handle.h"
#include "io/read_pieces.h"
#include "io/read_outcome.h"

namespace llmflash {
namespace {

class UringReader final : public IoBackend {
 public:
  ~UringReader() override {
    WaitIdle();  // a batch on the I/O thread uses the ring
    if (ring_ok_) io_uring_queue_exit(&ring_);
  }

  Status Init(const std::string& path, const IoOptions& options) {
    Status st = file_.Open(path, options);
    if (!st.ok()) return st;
    int r = io_uring_queue_init(static_cast<unsigned>(options.queue_depth), &ring_, 0);
    if (r < 0) {
      return Status::Unsupported(path + ": io_uring is unavailable: " + std::strerror(-r));
    }
    ring_ok_ = true;
    return Status::OK();
  }

  Status ReadBatch(std::span<const ReadRequest> requests, IoCounters* counters) override {
    PlanPieces(requests, file_.options(), &plan_);
    counters->requested += plan_.wanted_bytes;
    std::vector<ReadPiece>& pieces = plan_.pieces;
    std::vector<int> attempts(pieces.size(), 0);
    std::vector<size_t> again;
    const int depth = file_.options().queue_depth;
    size_t next = 0;
    int inflight = 0, unsubmitted = 0, stalls = 0;
    Status err;
    while (true) {
      while (err.ok() && inflight < depth) {
        size_t idx;
        if (!again.empty()) {
          idx = again.back();
          again.pop_back();
        } else if (next < pieces.size()) {
          ReadPiece& p = pieces[next];
          if (p.staged && p.slot < 0 && (p.slot = file_.AcquireSlot()) < 0) break;
          idx = next++;
        } else {
          break;
        }
        Prep(pieces[idx], idx);
        ++inflight;
        ++unsubmitted;
      }
      if (unsubmitted > 0) {
        IoFaultInjector* fi = file_.options().faults;
        int r = fi != nullptr ? fi->OnSubmit() : 0;
        if (r == 0) r = io_uring_submit(&ring_);
        if (r >= 0) {
          counters->ops += static_cast<uint64_t>(r);
          unsubmitted -= r;
        } else if ((r == -EAGAIN || r == -EBUSY || r == -EINTR) && ++stalls < 1000) {
          std::this_thread::yield();  // the kernel is short of resources: let reads finish
        } else {
          return Status::IOError(file_.path() + ": io_uring_submit failed: " + std::strerror(-r));
        }
      }
      if (inflight == 0) break;
      if (inflight == unsubmitted) continue;  // nothing in the kernel to wait for yet
      io_uring_cqe* cqe;
      int r = io_uring_wait_cqe(&ring_, &cqe);
      if (r == -EINTR) continue;
      if (r < 0) {
        return Status::IOError(file_.path() + ": io_uring_wait_cqe failed: " + std::strerror(-r));
      }
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        size_t idx = static_cast<size_t>(reinterpret_cast<uintptr_t>(io_uring_cqe_get_data(cqe)));
        ReadPiece& p = pieces[idx];
        Status piece_err;
        Outcome o = Apply(file_, plan_, p, cqe->res, &attempts[idx], &piece_err, counters);
        if (o == Outcome::kAgain && err.ok()) {
          again.push_back(idx);
          continue;
        }
        if (o == Outcome::kFailed && err.ok()) err = piece_err;
        if (p.staged && p.slot >= 0) {
          file_.ReleaseSlot(p.slot);
          p.slot = -1;
        }
      }
      io_uring_cq_advance(&ring_, seen);
      inflight -= static_cast<int>(seen);
    }
    for (size_t idx : again) {  // abandoned after an error
      if (pieces[idx].slot >= 0) file_.ReleaseSlot(pieces[idx].slot);
    }
    return err;
  }

  const char* name() const override { return "io_uring"; }
  bool direct_io() const override { return file_.direct(); }
  const std::string& path() const override { return file_.path(); }

 private:
  void Prep(ReadPiece& p, size_t idx) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);  // never null: inflight <= depth
    io_uring_prep_read(sqe, file_.fd(), ReadTarget(file_, p),
                       static_cast<unsigned>(p.read_length - p.done), p.read_offset + p.done);
    io_uring_sqe_set_data(sqe, reinterpret_cast<void*>(static_cast<uintptr_t>(idx)));
  }

  FileHandle file_;
  PiecePlan plan_;
  io_uring ring_{};
  bool ring_ok_ = false;
};

}  // namespace

StatusOr<std::unique_ptr<IoBackend>> OpenUringReader(const std::string& path,
                                                     const IoOptions& options) {
  auto r = std::make_unique<UringReader>();
  Status st = r->Init(path, options);
  if (!st.ok()) return st;
  return std::unique_ptr<IoBackend>(std::move(r));
}

}  // namespace llmflash

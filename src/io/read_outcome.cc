// Interpreting device read results.
#include "io/read_outcome.h"

#include <cerrno>

namespace llmflash {

Outcome Apply(FileHandle& f, const PiecePlan& plan, ReadPiece& p, int64_t res, int* attempts,
              Status* err, IoCounters* c) {
  if (IoFaultInjector* fi = f.options().faults) {
    res = fi->OnRead(p.read_offset + p.done, p.read_length - p.done, res);
  }
  if (res < 0) {
    int e = static_cast<int>(-res);
    if ((e == EAGAIN || e == EINTR || e == EBUSY) && ++*attempts < kMaxAttempts) {
      return Outcome::kAgain;
    }
    *err = f.ErrorAt(p, e);
    return Outcome::kFailed;
  }
  c->bytes += static_cast<uint64_t>(res);
  p.done += static_cast<uint64_t>(res);
  if (p.done >= p.needed) {
    if (p.staged) f.FinishStaged(p, plan);
    return Outcome::kDone;
  }
  if (res == 0) {  // end of file before the wanted bytes
    *err = f.EndOfFileAt(p);
    return Outcome::kFailed;
  }
  if (++*attempts >= kMaxAttempts) {
    *err = f.ErrorAt(p, EIO);
    return Outcome::kFailed;
  }
  return Outcome::kAgain;  // short read: ask for the rest
}

}  // namespace llmflash

// What a finished device read means for its piece: done, ask again (short
// read, EAGAIN, EINTR, EBUSY; bounded), or failed with a Status naming the
// file and offset. Shared by both backends, with the fault-injection hook.
#ifndef LLMFLASH_IO_READ_OUTCOME_H_
#define LLMFLASH_IO_READ_OUTCOME_H_

#include "io/file_handle.h"
#include "io/read_pieces.h"

namespace llmflash {

inline constexpr int kMaxAttempts = 16;  // per piece: EAGAIN/EINTR and short reads

enum class Outcome { kDone, kAgain, kFailed };

// Applies a read result (`res`: bytes, or -errno; passed through the fault
// injector first) to `p`.
Outcome Apply(FileHandle& f, const PiecePlan& plan, ReadPiece& p, int64_t res, int* attempts,
              Status* err, IoCounters* c);

// Where the next device read of `p` lands.
inline char* ReadTarget(FileHandle& f, const ReadPiece& p) {
  return (p.staged ? f.slot(p.slot) : p.dst) + p.done;
}

}  // namespace llmflash

#endif  // LLMFLASH_IO_READ_OUTCOME_H_

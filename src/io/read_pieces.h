// ReadPiece: one device read derived from a ReadRequest, shared by the
// io_uring and pread backends so both issue exactly the same reads.
//
// With O_DIRECT the file offset, length and memory address must all be
// multiples of the block size. An aligned request is read straight into its
// destination (in chunks of at most max_read_bytes); an unaligned one is
// read as the covering aligned span into a staging buffer and copied out.
#ifndef LLMFLASH_IO_READ_PIECES_H_
#define LLMFLASH_IO_READ_PIECES_H_

#include <cstdint>
#include <span>
#include <vector>

#include "io/io_backend.h"

namespace llmflash {

inline constexpr uint64_t kIoAlignment = 4096;

struct ReadPiece {
  uint64_t offset = 0;   // wanted bytes: file offset
  uint64_t length = 0;   // wanted bytes: length
  char* dst = nullptr;   // wanted bytes: destination
  bool staged = false;   // read through a staging buffer
  uint64_t read_offset = 0;  // device read: file offset
  uint64_t read_length = 0;  // device read: length
  uint64_t done = 0;         // device bytes received so far (short reads)
  int slot = -1;             // staging buffer in use
};

// Splits requests into pieces. Staged pieces' spans fit in bounce_bytes.
std::vector<ReadPiece> SplitIntoPieces(std::span<const ReadRequest> requests,
                                       const IoOptions& options);

}  // namespace llmflash

#endif  // LLMFLASH_IO_READ_PIECES_H_

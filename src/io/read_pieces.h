// ReadPiece: one device read derived from ReadRequests, shared by the
// io_uring and pread backends so both issue exactly the same reads.
//
// With O_DIRECT the file offset, length and memory address must all be
// multiples of the block size. An aligned request is read straight into its
// destination (in chunks of at most max_read_bytes). Unaligned requests are
// read as covering aligned spans into a staging buffer and copied out; when
// the spans of neighbouring requests overlap or touch (small neuron records
// sharing 4 KiB blocks) they are coalesced into one device read, so each
// block is read once.
#ifndef LLMFLASH_IO_READ_PIECES_H_
#define LLMFLASH_IO_READ_PIECES_H_

#include <cstdint>
#include <span>
#include <vector>

#include "io/io_backend.h"

namespace llmflash {

inline constexpr uint64_t kIoAlignment = 4096;

// Bytes to copy out of a staged read.
struct CopyOut {
  uint64_t offset = 0;  // file offset of the wanted bytes
  uint64_t length = 0;
  char* dst = nullptr;
};

struct ReadPiece {
  bool staged = false;       // read through a staging buffer
  char* dst = nullptr;       // direct pieces: destination of the read
  uint64_t read_offset = 0;  // device read: file offset
  uint64_t read_length = 0;  // device read: length
  uint64_t needed = 0;       // bytes of the read that must arrive (the rest may lie past EOF)
  uint32_t first_copy = 0;   // staged pieces: copies[first_copy, first_copy + n_copies)
  uint32_t n_copies = 0;
  uint64_t done = 0;         // device bytes received so far (short reads)
  int slot = -1;             // staging buffer in use
};

struct PiecePlan {
  std::vector<ReadPiece> pieces;
  std::vector<CopyOut> copies;
  uint64_t wanted_bytes = 0;  // sum of request lengths
};

// Splits (and coalesces) requests into pieces. Staged spans fit bounce_bytes.
void PlanPieces(std::span<const ReadRequest> requests, const IoOptions& options, PiecePlan* plan);

}  // namespace llmflash

#endif  // LLMFLASH_IO_READ_PIECES_H_

// FileHandle: an fd opened for reading, with O_DIRECT when it is allowed, and
// the staging buffers both backends use for unaligned ranges.
#ifndef LLMFLASH_IO_FILE_HANDLE_H_
#define LLMFLASH_IO_FILE_HANDLE_H_

#include <string>
#include <vector>

#include "io/io_backend.h"
#include "io/read_pieces.h"
#include "util/aligned_buffer.h"

namespace llmflash {

class FileHandle {
 public:
  ~FileHandle();
  // Opens `path`; if O_DIRECT is refused (EINVAL, e.g. tmpfs) opens it
  // buffered and reports direct() == false.
  Status Open(const std::string& path, const IoOptions& options);

  int fd() const { return fd_; }
  bool direct() const { return direct_; }
  const std::string& path() const { return path_; }
  const IoOptions& options() const { return options_; }

  // Staging buffers: slot index in [0, options.bounce_slots).
  char* slot(int i) { return bounce_.data() + static_cast<size_t>(i) * options_.bounce_bytes; }
  int AcquireSlot();  // -1 when none is free
  void ReleaseSlot(int i) { free_slots_.push_back(i); }

  // Copies a finished staged piece to its destinations.
  void FinishStaged(const ReadPiece& p, const PiecePlan& plan);
  Status ErrorAt(const ReadPiece& p, int err) const;
  Status EndOfFileAt(const ReadPiece& p) const;

 private:
  int fd_ = -1;
  bool direct_ = false;
  std::string path_;
  IoOptions options_;
  AlignedBuffer bounce_;
  std::vector<int> free_slots_;
};

}  // namespace llmflash

#endif  // LLMFLASH_IO_FILE_HANDLE_H_

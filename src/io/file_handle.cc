// FileHandle: opening with O_DIRECT and managing staging buffers.
#include "io/file_handle.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace llmflash {

FileHandle::~FileHandle() {
  if (fd_ >= 0) close(fd_);
}

Status FileHandle::Open(const std::string& path, const IoOptions& options) {
  path_ = path;
  options_ = options;
  if (options.queue_depth < 1 || options.queue_depth > 4096 || options.bounce_slots < 1 ||
      options.bounce_bytes < 4 * kIoAlignment || options.bounce_bytes % kIoAlignment != 0 ||
      options.max_read_bytes < kIoAlignment || options.max_read_bytes % kIoAlignment != 0) {
    return Status::InvalidArgument(path + ": invalid I/O options");
  }
  direct_ = options.direct_io;
  fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC | (direct_ ? O_DIRECT : 0));
  if (fd_ < 0 && direct_ && errno == EINVAL) {
    direct_ = false;
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd_ < 0) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::IOError(path + ": open failed: " + std::strerror(err));
  }
  if (!direct_) options_.direct_io = false;
  if (direct_) {
    if (!bounce_.Allocate(options_.MemoryBytes())) {
      return Status::ResourceExhausted(path + ": cannot allocate I/O staging buffers");
    }
    for (int i = options_.bounce_slots - 1; i >= 0; --i) free_slots_.push_back(i);
  }
  return Status::OK();
}

int FileHandle::AcquireSlot() {
  if (free_slots_.empty()) return -1;
  int s = free_slots_.back();
  free_slots_.pop_back();
  return s;
}

void FileHandle::FinishStaged(const ReadPiece& p, const PiecePlan& plan) {
  const char* base = slot(p.slot);
  for (uint32_t i = 0; i < p.n_copies; ++i) {
    const CopyOut& c = plan.copies[p.first_copy + i];
    std::memcpy(c.dst, base + (c.offset - p.read_offset), c.length);
  }
}

Status FileHandle::ErrorAt(const ReadPiece& p, int err) const {
  return Status::IOError(path_ + ": read of " + std::to_string(p.read_length) +
                         " bytes at offset " + std::to_string(p.read_offset) +
                         " failed: " + std::strerror(err) + " (errno " + std::to_string(err) + ")");
}

Status FileHandle::EndOfFileAt(const ReadPiece& p) const {
  return Status::IOError(path_ + ": file ends before offset " +
                         std::to_string(p.read_offset + p.needed) +
                         " (truncated while open?)");
}

}  // namespace llmflash

// File helpers: sizes, whole-file reads, exact preads and checksummed writes.
#include "util/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "util/crc32c.h"

namespace llmflash {

static std::string ErrnoText(int err) { return std::strerror(err); }

StatusOr<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::IOError(path + ": stat failed: " + ErrnoText(err));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(path + ": not a regular file");
  }
  return static_cast<uint64_t>(st.st_size);
}

StatusOr<std::string> ReadFileToString(const std::string& path,
                                       uint64_t max_bytes) {
  auto size = FileSize(path);
  if (!size.ok()) return size.status();
  if (*size > max_bytes) {
    return Status::InvalidArgument(path + ": file is " + std::to_string(*size) +
                                   " bytes, more than the limit of " +
                                   std::to_string(max_bytes));
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": open failed: " + ErrnoText(errno));
  std::string out(*size, '\0');
  Status st = PreadExact(fd, path, 0, out.data(), *size);
  close(fd);
  if (!st.ok()) return st;
  return out;
}

Status ReadFileInto(const std::string& path, uint64_t size, AlignedBuffer* buf) {
  if (!buf->Allocate(size, 64)) {
    return Status::ResourceExhausted(path + ": cannot allocate " + std::to_string(size) + " bytes");
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": open failed: " + ErrnoText(errno));
  Status st = PreadExact(fd, path, 0, buf->data(), size);
  close(fd);
  return st;
}

Status PreadExact(int fd, const std::string& path, uint64_t offset, void* dst,
                  uint64_t n) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t r = pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(path + ": read at offset " + std::to_string(offset) +
                             " failed: " + ErrnoText(errno));
    }
    if (r == 0) {
      return Status::Corruption(path + ": file ends before offset " +
                                std::to_string(offset + n));
    }
    p += r;
    offset += static_cast<uint64_t>(r);
    n -= static_cast<uint64_t>(r);
  }
  return Status::OK();
}

Status PwriteExact(int fd, const std::string& path, uint64_t offset, const void* src, uint64_t n) {
  const auto* p = static_cast<const char*>(src);
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      return Status::IOError(path + ": write at offset " + std::to_string(offset) +
                             " failed: " + ErrnoText(w < 0 ? errno : ENOSPC));
    }
    p += w;
    offset += static_cast<uint64_t>(w);
    n -= static_cast<uint64_t>(w);
  }
  return Status::OK();
}

WritableFile::~WritableFile() {
  if (file_ != nullptr) std::fclose(file_);
}

Status WritableFile::Open(const std::string& path) {
  path_ = path;
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) {
    return Status::IOError(path + ": cannot create: " + ErrnoText(errno));
  }
  return Status::OK();
}

Status WritableFile::Append(const void* data, uint64_t n) {
  if (n == 0) return Status::OK();
  if (std::fwrite(data, 1, n, file_) != n) {
    return Status::IOError(path_ + ": write failed: " + ErrnoText(errno));
  }
  crc_ = Crc32cExtend(crc_, data, n);
  size_ += n;
  return Status::OK();
}

Status WritableFile::PadTo(uint64_t alignment) {
  uint64_t pad = (alignment - size_ % alignment) % alignment;
  std::vector<char> zeros(pad, 0);
  return Append(zeros.data(), pad);
}

Status WritableFile::Close() {
  if (file_ == nullptr) return Status::OK();
  bool ok = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
  int err = errno;
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok) return Status::IOError(path_ + ": close failed: " + ErrnoText(err));
  return Status::OK();
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

}  // namespace llmflash

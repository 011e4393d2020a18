// Small file helpers that report failures as Status naming the path.
//
// Thread-safety: free functions on distinct paths are independent.
#ifndef LLMFLASH_UTIL_FILE_H_
#define LLMFLASH_UTIL_FILE_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "llmflash/status.h"
#include "util/aligned_buffer.h"

namespace llmflash {

StatusOr<uint64_t> FileSize(const std::string& path);

// Reads a whole file, refusing files larger than `max_bytes`.
StatusOr<std::string> ReadFileToString(const std::string& path,
                                       uint64_t max_bytes);

// Allocates `*buf` (64-byte aligned) and reads the first `size` bytes of
// `path` into it.
Status ReadFileInto(const std::string& path, uint64_t size, AlignedBuffer* buf);

// Reads exactly `n` bytes at `offset` with pread; IOError/Corruption if the
// file is shorter.
Status PreadExact(int fd, const std::string& path, uint64_t offset, void* dst,
                  uint64_t n);

// Writes exactly `n` bytes at `offset` with pwrite; IOError naming `path`
// (a full disk included).
Status PwriteExact(int fd, const std::string& path, uint64_t offset, const void* src, uint64_t n);

// A file being written: tracks size and CRC-32C of what was written.
class WritableFile {
 public:
  WritableFile() = default;
  ~WritableFile();
  WritableFile(const WritableFile&) = delete;
  WritableFile& operator=(const WritableFile&) = delete;

  Status Open(const std::string& path);
  Status Append(const void* data, uint64_t n);
  Status PadTo(uint64_t alignment);  // appends zeros up to a multiple
  Status Close();                    // flushes and fsyncs

  uint64_t size() const { return size_; }
  uint32_t crc32c() const { return crc_; }
  const std::string& path() const { return path_; }

 private:
  std::FILE* file_ = nullptr;
  std::string path_;
  uint64_t size_ = 0;
  uint32_t crc_ = 0;
};

std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_FILE_H_

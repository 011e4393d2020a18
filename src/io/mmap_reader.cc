// The mmap backend: the bundle file mapped read-only and copied from the
// page cache. Not for production (the page cache holds the model outside the
// budget); it is the "mmap" baseline of llmflash-bench, run inside a memory
// cgroup, as an mmap-based engine would load a model.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/uring_reader.h"

namespace llmflash {
namespace {

class MmapReader final : public IoBackend {
 public:
  ~MmapReader() override {
    WaitIdle();
    if (map_ != MAP_FAILED) ::munmap(map_, size_);
    if (fd_ >= 0) ::close(fd_);
  }

  Status Init(const std::string& path) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Status::IOError(path + ": open failed: " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Status::IOError(path + ": fstat failed: " + std::strerror(errno));
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ == 0) return Status::Corruption(path + ": empty file");
    map_ = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
    if (map_ == MAP_FAILED) return Status::IOError(path + ": mmap failed: " + std::strerror(errno));
    return Status::OK();
  }

  Status ReadBatch(std::span<const ReadRequest> requests, IoCounters* counters) override {
    for (const ReadRequest& r : requests) {
      if (r.offset > size_ || r.length > size_ - r.offset) {
        return Status::IOError(path_ + ": read of " + std::to_string(r.length) + " bytes at offset " +
                               std::to_string(r.offset) + " is past the end of the file (truncated?)");
      }
      std::memcpy(r.dst, static_cast<const char*>(map_) + r.offset, r.length);
      counters->requested += r.length;
      counters->bytes += r.length;
      counters->ops += 1;
    }
    return Status::OK();
  }

  const char* name() const override { return "mmap"; }
  bool direct_io() const override { return false; }
  const std::string& path() const override { return path_; }
  const char* mapping() const override { return static_cast<const char*>(map_); }

 private:
  std::string path_;
  int fd_ = -1;
  void* map_ = MAP_FAILED;
  uint64_t size_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<IoBackend>> OpenMmapReader(const std::string& path) {
  auto r = std::make_unique<MmapReader>();
  Status st = r->Init(path);
  if (!st.ok()) return st;
  return std::unique_ptr<IoBackend>(std::move(r));
}

}  // namespace llmflash

// Full verification of a model directory: sizes and CRC-32C of every file.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "format/manifest.h"
#include "llmflash/convert.h"
#include "util/crc32c.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash {

using Progress = std::function<void(double, const std::string&)>;

static Status ChecksumFile(const std::string& path, uint64_t size, uint32_t* crc,
                          const Progress& progress, uint64_t* done, uint64_t total,
                          const std::string& name) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": open failed: " + std::strerror(errno));
  std::vector<char> buf(4 << 20);
  uint32_t c = 0;
  Status st;
  for (uint64_t off = 0; off < size && st.ok();) {
    uint64_t n = std::min<uint64_t>(buf.size(), size - off);
    st = PreadExact(fd, path, off, buf.data(), n);
    c = Crc32cExtend(c, buf.data(), n);
    off += n;
    *done += n;
    if (progress) progress(total ? static_cast<double>(*done) / total : 1.0, name);
  }
  close(fd);
  *crc = c;
  return st;
}

Status VerifyModel(const std::string& dir, const Progress& progress) {
  ASSIGN_OR_RETURN(Manifest m, LoadManifest(dir));
  uint64_t total = 0, done = 0;
  for (const FileEntry& f : m.files) total += f.size;
  for (const FileEntry& f : m.files) {
    std::string path = JoinPath(dir, f.name);
    uint32_t crc = 0;
    RETURN_IF_ERROR(ChecksumFile(path, f.size, &crc, progress, &done, total, f.name));
    if (crc != f.crc32c) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), ": checksum mismatch (crc32c %08x, manifest says %08x)",
                    crc, f.crc32c);
      return Status::Corruption(path + buf);
    }
  }
  return Status::OK();
}

}  // namespace llmflash

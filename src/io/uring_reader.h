// UringReader: the io_uring backend. Submits up to queue_depth reads at once
// (one io_uring_submit per refill, so a batch of records costs a handful of
// system calls), stages unaligned ranges through preallocated aligned
// buffers, and retries short reads and EAGAIN/EINTR completions.
//
// Thread-safety: one thread at a time (the ring is not shared).
#ifndef LLMFLASH_IO_URING_READER_H_
#define LLMFLASH_IO_URING_READER_H_

#include <memory>
#include <string>

#include "io/io_backend.h"

namespace llmflash {

// Opens `path` (O_DIRECT when options.direct_io and the file system allows
// it) and sets up a ring. Unsupported when the kernel refuses io_uring.
StatusOr<std::unique_ptr<IoBackend>> OpenUringReader(const std::string& path,
                                                     const IoOptions& options);

// The pread(2) backend (io/pread_reader.cc): the same pieces, issued by a
// small pool of threads.
// Copies from a read-only mapping (the page cache): the bench's mmap baseline.
StatusOr<std::unique_ptr<IoBackend>> OpenMmapReader(const std::string& path);
StatusOr<std::unique_ptr<IoBackend>> OpenPreadReader(const std::string& path,
                                                     const IoOptions& options);

}  // namespace llmflash

#endif  // LLMFLASH_IO_URING_READER_H_

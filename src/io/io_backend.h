// IoBackend: reads byte ranges of one file (the FFN bundle) into memory.
//
// The cache layer asks for whole neuron records or runs of them; a backend
// turns them into device reads (aligned for O_DIRECT, split, kept many in
// flight) and returns when every byte has landed. Backends are the seam for
// fault injection in tests: wrap one and alter its results.
//
// Reads are synchronous (ReadBatch) or asynchronous (Submit, then Wait): the
// loader starts a batch, computes while it lands, and waits for it.
//
// Thread-safety: an IoBackend is used by one thread at a time (each Session
// opens its own); an asynchronous batch runs on the backend's own I/O thread.
#ifndef LLMFLASH_IO_IO_BACKEND_H_
#define LLMFLASH_IO_IO_BACKEND_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "llmflash/options.h"
#include "llmflash/status.h"

namespace llmflash {

class Worker;

struct ReadRequest {
  uint64_t offset = 0;  // byte offset in the file; any alignment
  uint64_t length = 0;  // bytes; any alignment
  void* dst = nullptr;  // destination; any alignment
};

struct IoCounters {
  uint64_t requested = 0;  // bytes asked for (sum of request lengths)
  uint64_t bytes = 0;  // bytes transferred from the device (aligned spans)
  uint64_t ops = 0;    // read operations submitted
};

// What an asynchronous batch did.
struct IoCompletion {
  Status status;        // as ReadBatch would have returned
  IoCounters counters;  // the batch's reads
  double busy_ms = 0;   // the read's duration on the I/O thread
  double waited_ms = 0; // how long Wait blocked the caller
  bool read = false;    // a batch was submitted (false: nothing was in flight)
};

class IoBackend {
 public:
  IoBackend();
  // Waits for a batch still in flight. Backends whose ReadBatch touches
  // their own members call WaitIdle() first in their destructor.
  virtual ~IoBackend();
  // Reads every request completely or returns an error naming the file and
  // offset. Requests must not overlap in `dst`.
  virtual Status ReadBatch(std::span<const ReadRequest> requests,
                           IoCounters* counters) = 0;
  virtual const char* name() const = 0;   // "io_uring", "pread"
  virtual bool direct_io() const = 0;     // opened with O_DIRECT
  virtual const std::string& path() const = 0;
  // The whole file mapped into memory (the mmap backend), for computing on
  // the mapped pages without copying them; nullptr for backends that read.
  virtual const char* mapping() const { return nullptr; }

  // Starts ReadBatch(requests) on the backend's I/O thread and returns at
  // once. One batch at a time: Wait() before the next Submit(). `requests`
  // and the memory they point to must stay valid until Wait() returns.
  void Submit(std::span<const ReadRequest> requests);
  // Blocks until the submitted batch has landed (or failed); returns at once,
  // with read == false, when none is in flight.
  IoCompletion Wait();
  bool in_flight() const { return in_flight_; }

 protected:
  void WaitIdle();

 private:
  std::unique_ptr<Worker> worker_;  // started by the first Submit
  std::span<const ReadRequest> pending_;
  IoCounters async_counters_;
  double async_busy_ms_ = 0;
  bool in_flight_ = false;
};

// Test seam (leveldb's ErrorEnv in spirit): sees the result of every device
// read, and every io_uring submission, before the backend acts on it, so
// tests can provoke short reads, EIO, EAGAIN and EBUSY on the real code path.
// Must be thread-safe: the pread backend calls it from several threads.
class IoFaultInjector {
 public:
  virtual ~IoFaultInjector() = default;
  // `result` is the byte count read (or -errno); return what to report.
  virtual int64_t OnRead(uint64_t offset, uint64_t length, int64_t result) = 0;
  // Return -errno (EAGAIN, EBUSY) to fail this io_uring_submit, 0 to run it.
  virtual int OnSubmit() { return 0; }
};

struct IoOptions {
  bool direct_io = true;
  int queue_depth = 64;              // reads in flight at once
  int bounce_slots = 16;             // staging buffers for unaligned ranges
  uint64_t bounce_bytes = 256 << 10; // size of each staging buffer
  uint64_t max_read_bytes = 1 << 20; // largest single read submitted
  int pread_threads = 4;             // pread backend: threads issuing reads
  IoFaultInjector* faults = nullptr; // tests only

  // Bytes of DRAM the backend allocates (staging buffers).
  uint64_t MemoryBytes() const { return static_cast<uint64_t>(bounce_slots) * bounce_bytes; }
};

// Opens `path` for reading with the requested backend. kAuto tries io_uring
// and falls back to pread when the kernel refuses it.
StatusOr<std::unique_ptr<IoBackend>> OpenIoBackend(const std::string& path,
                                                   IoBackendKind kind,
                                                   const IoOptions& options);

}  // namespace llmflash

#endif  // LLMFLASH_IO_IO_BACKEND_H_

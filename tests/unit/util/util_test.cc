// CRC-32C and Status.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <random>
#include <string>

#include "llmflash/status.h"
#include "util/checked_math.h"
#include "util/crc32c.h"
#include "util/thread_pool.h"

namespace llmflash {
namespace {

TEST(Crc32c, KnownVector) {
  // The standard check value of CRC-32C.
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32cExtendPortable(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
}

TEST(Crc32c, FastPathEqualsPortableAndExtends) {
  std::mt19937 rng(7);
  std::string data(100003, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t n : {1u, 7u, 8u, 9u, 63u, 4096u, 100003u}) {
    EXPECT_EQ(Crc32c(data.data(), n), Crc32cExtendPortable(0, data.data(), n)) << n;
  }
  uint32_t split = Crc32cExtend(Crc32c(data.data(), 1000), data.data() + 1000, data.size() - 1000);
  EXPECT_EQ(split, Crc32c(data.data(), data.size()));
}

TEST(Status, CarriesCodeAndMessage) {
  Status st = Status::IOError("ffn.bundle: read failed");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_EQ(st.ToString(), "IOError: ffn.bundle: read failed");
  EXPECT_TRUE(Status().ok());
  StatusOr<int> v = 3;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 3);
  StatusOr<int> e = Status::NotFound("x");
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  StatusOr<int> from_ok = Status::OK();  // a bug in the caller, not a value
  EXPECT_FALSE(from_ok.ok());
}

TEST(CheckedMath, DetectsOverflow) {
  uint64_t out;
  EXPECT_TRUE(CheckedMul(1ull << 31, 1ull << 31, &out));
  EXPECT_FALSE(CheckedMul(1ull << 33, 1ull << 31, &out));
  EXPECT_FALSE(CheckedAdd(~0ull, 1, &out));
  EXPECT_EQ(RoundUp(4097, 4096), 8192u);
}

}  // namespace
}  // namespace llmflash

namespace llmflash {
namespace {

// Named Concurrency.* so the TSan build runs them.
TEST(Concurrency, ThreadPoolCoversEveryIndexOnceInFixedChunks) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int n : {0, 1, 2, 7, 1000}) {
      std::vector<int> hits(n, 0), chunk_of(n, -1);
      std::vector<std::atomic<int>> chunk_calls(pool.chunks());
      for (int round = 0; round < 20; ++round) {
        pool.ParallelFor(n, [&](int chunk, int begin, int end) {
          ++chunk_calls[chunk];
          for (int i = begin; i < end; ++i) {
            ++hits[i];
            chunk_of[i] = chunk;
          }
        });
      }
      for (auto& c : chunk_calls) EXPECT_EQ(c.load(), 20) << threads << " " << n;
      for (int i = 0; i < n; ++i) EXPECT_EQ(hits[i], 20) << threads << " " << n;
      for (int i = 1; i < n; ++i) EXPECT_LE(chunk_of[i - 1], chunk_of[i]);  // contiguous, in order
    }
  }
}

// A thread that stalls (here: sleeps in its first chunk) holds up only that
// chunk: the other thread takes every other chunk meanwhile.
TEST(Concurrency, ThreadPoolHandsChunksToWhicheverThreadIsFree) {
  ThreadPool pool(2);
  ASSERT_EQ(pool.chunks(), 2 * ThreadPool::kChunksPerThread);
  std::vector<std::thread::id> ran_by(pool.chunks());
  pool.ParallelFor(1000, [&](int chunk, int, int) {
    ran_by[chunk] = std::this_thread::get_id();
    if (chunk == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  });
  for (int c = 1; c < pool.chunks(); ++c) EXPECT_NE(ran_by[c], ran_by[0]) << c;
}

TEST(Concurrency, WorkerRunsJobsOneAtATimeAndReturnsTheirStatus) {
  Worker w;
  EXPECT_TRUE(w.Wait().ok());  // nothing started
  int value = 0;
  for (int i = 0; i < 100; ++i) {
    w.Start([&value, i] {
      value += i;
      return i == 50 ? Status::IOError("job 50") : Status::OK();
    });
    EXPECT_TRUE(w.busy());
    Status st = w.Wait();
    EXPECT_EQ(st.ok(), i != 50) << i;
    EXPECT_FALSE(w.busy());
  }
  EXPECT_EQ(value, 99 * 100 / 2);
}

}  // namespace
}  // namespace llmflash

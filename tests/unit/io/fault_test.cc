// Injected I/O faults on the real backends and a real file: short reads,
// EAGAIN, EBUSY, EIO and failing submissions.
#include <gtest/gtest.h>

#include <random>

#include "io/io_backend.h"
#include "testing/fault_injector.h"
#include "testing/test_util.h"
#include "util/aligned_buffer.h"

namespace llmflash {
namespace {

using testing::FaultInjector;
using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

class FaultTest : public ::testing::TestWithParam<IoBackendKind> {
 protected:
  void SetUp() override {
    content_.resize(2 << 20);
    std::mt19937 rng(5);
    for (char& c : content_) c = static_cast<char>(rng());
    path_ = tmp_.File("bundle.bin");
    testing::WriteFile(path_, content_);
    IoOptions o;
    o.faults = &faults_;
    o.queue_depth = 8;
    auto io = OpenIoBackend(path_, GetParam(), o);
    ASSERT_THAT(io.status(), IsOk());
    io_ = std::move(*io);
  }

  // Reads aligned 64 KiB chunks and unaligned records; checks every byte.
  Status ReadAndCheck() {
    AlignedBuffer aligned;
    aligned.Allocate(1 << 20);
    std::vector<std::string> small(50, std::string(700, '\0'));
    std::vector<ReadRequest> reqs;
    for (int i = 0; i < 16; ++i) reqs.push_back({uint64_t(i) << 16, 1 << 16, aligned.data() + (i << 16)});
    for (int i = 0; i < 50; ++i) reqs.push_back({(1 << 20) + uint64_t(i) * 9000 + 13, 700, small[i].data()});
    IoCounters c;
    Status st = io_->ReadBatch(reqs, &c);
    if (!st.ok()) return st;
    EXPECT_EQ(std::string(aligned.data(), 1 << 20), content_.substr(0, 1 << 20));
    for (int i = 0; i < 50; ++i) EXPECT_EQ(small[i], content_.substr(reqs[16 + i].offset, 700));
    return st;
  }

  testing::TempDir tmp_;
  std::string path_, content_;
  FaultInjector faults_;
  std::unique_ptr<IoBackend> io_;
};

TEST_P(FaultTest, ShortReadsAreCompleted) {
  faults_.Set(FaultInjector::Mode::kShortRead, 1);
  EXPECT_THAT(ReadAndCheck(), IsOk());
  EXPECT_GT(faults_.injected(), 10);
}

TEST_P(FaultTest, EagainAndEbusyAreRetried) {
  faults_.Set(FaultInjector::Mode::kErrno, 3, EAGAIN, 12);  // < kMaxAttempts per piece
  EXPECT_THAT(ReadAndCheck(), IsOk());
  EXPECT_GT(faults_.injected(), 5);
  faults_.Set(FaultInjector::Mode::kErrno, 2, EBUSY, 12);
  EXPECT_THAT(ReadAndCheck(), IsOk());
}

TEST_P(FaultTest, EndlessEagainFailsInsteadOfHanging) {
  faults_.Set(FaultInjector::Mode::kErrno, 1, EAGAIN);
  EXPECT_THAT(ReadAndCheck(), StatusIs(StatusCode::kIOError, HasSubstr("bundle.bin")));
}

TEST_P(FaultTest, EioNamesFileAndOffsetAndTheBackendStaysUsable) {
  faults_.Set(FaultInjector::Mode::kErrno, 7, EIO, 1);
  Status st = ReadAndCheck();
  EXPECT_THAT(st, StatusIs(StatusCode::kIOError, HasSubstr("bundle.bin: read of")));
  EXPECT_THAT(st.message(), HasSubstr("at offset"));
  EXPECT_THAT(st.message(), HasSubstr("Input/output error"));
  EXPECT_THAT(ReadAndCheck(), IsOk());  // the fault is gone: reads work again
}

TEST_P(FaultTest, TruncatedFileIsAnErrorNotGarbage) {
  ASSERT_EQ(truncate(path_.c_str(), 1 << 19), 0);
  EXPECT_THAT(ReadAndCheck(), StatusIs(StatusCode::kIOError, HasSubstr("file ends before offset")));
}

INSTANTIATE_TEST_SUITE_P(Backends, FaultTest,
                         ::testing::Values(IoBackendKind::kUring, IoBackendKind::kPread),
                         [](const auto& info) {
                           return info.param == IoBackendKind::kUring ? "uring" : "pread";
                         });

TEST(UringFaults, FailedSubmissionsAreRetried) {
  testing::TempDir tmp;
  std::string content(1 << 20, 'q');
  testing::WriteFile(tmp.File("f"), content);
  FaultInjector faults;
  faults.FailSubmits(3, EBUSY);
  IoOptions o;
  o.faults = &faults;
  auto io = OpenIoBackend(tmp.File("f"), IoBackendKind::kUring, o);
  ASSERT_THAT(io.status(), IsOk());
  std::string out(5000, '\0');
  ReadRequest r{100, 5000, out.data()};
  IoCounters c;
  ASSERT_THAT((*io)->ReadBatch({&r, 1}, &c), IsOk());
  EXPECT_EQ(out, content.substr(100, 5000));
  EXPECT_EQ(faults.injected(), 3);
}

// Far more reads than the ring holds: completions are reaped as they come,
// so the completion queue never overflows.
TEST(UringFaults, QueueDepthOneWithManyReads) {
  testing::TempDir tmp;
  std::string content(1 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7);
  testing::WriteFile(tmp.File("f"), content);
  IoOptions o;
  o.queue_depth = 1;
  o.bounce_slots = 1;
  auto io = OpenIoBackend(tmp.File("f"), IoBackendKind::kUring, o);
  ASSERT_THAT(io.status(), IsOk());
  std::vector<std::string> out(300, std::string(100, '\0'));
  std::vector<ReadRequest> reqs;
  for (int i = 0; i < 300; ++i) reqs.push_back({uint64_t(i) * 3000 + 1, 100, out[i].data()});
  IoCounters c;
  ASSERT_THAT((*io)->ReadBatch(reqs, &c), IsOk());
  for (int i = 0; i < 300; ++i) ASSERT_EQ(out[i], content.substr(reqs[i].offset, 100));
}

}  // namespace
}  // namespace llmflash

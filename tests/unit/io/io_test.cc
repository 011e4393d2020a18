// The I/O backends on a real file: exact bytes for unaligned ranges, many
// reads in flight, direct reads into aligned memory, and errors.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "io/io_backend.h"
#include "io/read_pieces.h"
#include "io/uring_reader.h"
#include "testing/test_util.h"
#include "util/aligned_buffer.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

class IoTest : public ::testing::TestWithParam<IoBackendKind> {
 protected:
  void SetUp() override {
    content_.resize(3 * 1024 * 1024 + 123);
    std::mt19937 rng(1);
    for (char& c : content_) c = static_cast<char>(rng());
    path_ = tmp_.File("data.bin");
    testing::WriteFile(path_, content_);
  }
  std::unique_ptr<IoBackend> Open(IoOptions o) {
    auto r = OpenIoBackend(path_, GetParam(), o);
    EXPECT_THAT(r.status(), IsOk());
    return r.ok() ? std::move(*r) : nullptr;
  }

  testing::TempDir tmp_;
  std::string path_;
  std::string content_;
};

TEST_P(IoTest, UsesTheRequestedBackendWithDirectIo) {
  auto io = Open(IoOptions{});
  ASSERT_NE(io, nullptr);
  EXPECT_STREQ(io->name(), GetParam() == IoBackendKind::kPread ? "pread" : "io_uring");
  EXPECT_TRUE(io->direct_io()) << "the test file system refused O_DIRECT";
}

TEST_P(IoTest, ReadsExactBytesOfManyUnalignedRangesInFlight) {
  IoOptions o;
  o.queue_depth = 8;
  o.bounce_slots = 3;  // fewer staging buffers than reads in flight
  o.bounce_bytes = 16 << 10;
  auto io = Open(o);
  ASSERT_NE(io, nullptr);
  std::mt19937 rng(2);
  std::vector<ReadRequest> reqs;
  std::vector<std::string> out(500);
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t len = 1 + rng() % 40000;  // spans several staging buffers sometimes
    uint64_t off = rng() % (content_.size() - len);
    out[i].assign(len, '\0');
    reqs.push_back({off, len, out[i].data()});
  }
  IoCounters c;
  ASSERT_THAT(io->ReadBatch(reqs, &c), IsOk());
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i], content_.substr(reqs[i].offset, reqs[i].length)) << "request " << i;
  }
  EXPECT_GE(c.ops, out.size());
  EXPECT_GE(c.bytes, 500u);
}

TEST_P(IoTest, AlignedRangesGoStraightIntoAlignedMemory) {
  auto io = Open(IoOptions{});
  ASSERT_NE(io, nullptr);
  AlignedBuffer buf;
  ASSERT_TRUE(buf.Allocate(3 << 20));
  ReadRequest r{4096, (2 << 20) + 8192, buf.data()};  // larger than one read: split
  IoCounters c;
  ASSERT_THAT(io->ReadBatch({&r, 1}, &c), IsOk());
  EXPECT_EQ(std::string(buf.data(), r.length), content_.substr(4096, r.length));
  EXPECT_EQ(c.bytes, r.length);  // no staging overhead
  EXPECT_EQ(c.ops, 3u);          // 1 MiB + 1 MiB + 8 KiB
}

TEST_P(IoTest, ReadingPastTheEndNamesFileAndOffset) {
  auto io = Open(IoOptions{});
  ASSERT_NE(io, nullptr);
  std::string out(100, '\0');
  ReadRequest r{content_.size() - 50, 100, out.data()};
  IoCounters c;
  EXPECT_THAT(io->ReadBatch({&r, 1}, &c),
              StatusIs(StatusCode::kIOError, HasSubstr("data.bin: file ends before offset")));
  // The backend stays usable after the error.
  ReadRequest ok{10, 20, out.data()};
  ASSERT_THAT(io->ReadBatch({&ok, 1}, &c), IsOk());
  EXPECT_EQ(out.substr(0, 20), content_.substr(10, 20));
}

INSTANTIATE_TEST_SUITE_P(Backends, IoTest,
                         ::testing::Values(IoBackendKind::kUring, IoBackendKind::kPread),
                         [](const auto& info) {
                           return info.param == IoBackendKind::kUring ? "uring" : "pread";
                         });

TEST(ReadPieces, StagesOnlyWhatIsUnaligned) {
  IoOptions o;
  o.bounce_bytes = 64 << 10;
  char* aligned = reinterpret_cast<char*>(uintptr_t{1} << 20);
  ReadRequest reqs[] = {{8192, 4096, aligned}, {100, 10, aligned}, {0, 200000, aligned + 1}};
  PiecePlan plan;
  PlanPieces(reqs, o, &plan);
  const auto& p = plan.pieces;
  ASSERT_GE(p.size(), 3u);
  EXPECT_FALSE(p[0].staged);
  EXPECT_TRUE(p[1].staged);
  EXPECT_EQ(p[1].read_offset, 0u);
  EXPECT_EQ(p[1].n_copies, 2u);  // bytes 100..110 share block 0 with the next request
  uint64_t covered = 0;
  for (const CopyOut& c : plan.copies) covered += c.length;
  EXPECT_EQ(covered, 200010u);
  for (const ReadPiece& q : p) {
    EXPECT_LE(q.read_length, o.bounce_bytes);
    EXPECT_EQ(q.read_offset % 4096, 0u);
  }
  EXPECT_EQ(plan.wanted_bytes, 4096u + 10 + 200000);
  o.direct_io = false;  // buffered reads need no staging at all
  PlanPieces(reqs, o, &plan);
  for (const ReadPiece& q : plan.pieces) EXPECT_FALSE(q.staged);
}

// Small records that share 4 KiB blocks are read once, in one device read.
TEST(ReadPieces, CoalescesNeighbouringRecordsThatShareBlocks) {
  IoOptions o;
  o.bounce_bytes = 64 << 10;
  std::vector<char> dst(100 * 768);
  std::vector<ReadRequest> reqs;
  for (int i : {0, 1, 3, 4, 9, 10, 11, 40}) {  // 768-byte records, ids with gaps
    reqs.push_back({uint64_t(i) * 768, 768, dst.data() + i * 768});
  }
  PiecePlan plan;
  PlanPieces(reqs, o, &plan);
  // Records 0..11 span bytes [0, 9216): three blocks, one read; record 40 is
  // in block 7, not touching the first span.
  ASSERT_EQ(plan.pieces.size(), 2u);
  EXPECT_EQ(plan.pieces[0].read_offset, 0u);
  EXPECT_EQ(plan.pieces[0].read_length, 12288u);
  EXPECT_EQ(plan.pieces[0].n_copies, 7u);
  EXPECT_EQ(plan.pieces[1].read_offset, 28672u);
  EXPECT_EQ(plan.pieces[1].n_copies, 1u);
}

TEST(OpenIoBackend, MissingFileIsNotFound) {
  EXPECT_THAT(OpenIoBackend("/nonexistent/ffn.bundle", IoBackendKind::kAuto, {}).status(),
              StatusIs(StatusCode::kNotFound, HasSubstr("/nonexistent/ffn.bundle")));
}

}  // namespace
}  // namespace llmflash

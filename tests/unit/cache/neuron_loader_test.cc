// NeuronLoader on a real bundle file through the real backends: every part
// it hands over holds the file's bytes for the neurons it names, each active
// neuron arrives exactly once per token, streaming keeps a full region, and
// a failed read leaves no neuron resident whose row did not land.
#include "cache/neuron_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <random>

#include "testing/fault_injector.h"
#include "testing/test_util.h"
#include "testing/tiny_model.h"
#include "util/file.h"

namespace llmflash {
namespace {

using ::testing::HasSubstr;

struct Shape {
  const char* name;
  int dim;  // 16: records smaller than a block (staged); 512: whole 4 KiB records, read in place
  IoBackendKind backend;
};

void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

class NeuronLoaderTest : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    testing::TinyModelSpec spec;
    spec.dim = GetParam().dim;
    spec.ffn_dim = 96;
    spec.n_layers = 2;
    dir_ = tmp_.File("m");
    ASSERT_TRUE(testing::WriteTinyModel(dir_, spec).ok());
    auto m = LoadManifest(dir_);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    m_ = *m;
    bundle_ = testing::ReadFile(JoinPath(dir_, m_.bundle.file));
    stride_ = m_.bundle.record_stride;
  }

  Status Open(int capacity, IoFaultInjector* faults = nullptr, bool in_place = false) {
    NeuronLoaderOptions o;
    o.capacity = capacity;
    o.window = 3;
    o.replace_in_place = in_place;  // as mixtures of experts are planned: with frequencies
    o.frequency_half_life = in_place ? 16 : 0;
    o.backend = GetParam().backend;
    o.io.faults = faults;
    return loader_.Init(m_, dir_, o);
  }

  // Loads and checks every part against the file; returns the ids handed
  // over, in order, each once.
  std::vector<int32_t> LoadAndCheck(int l, int64_t t, std::span<const int32_t> active,
                                    LoadOptions o, TokenStats* stats, Status* status) {
    std::vector<int32_t> got;
    parts_ = overlapped_parts_ = 0;
    *status = loader_.Load(
        l, t, active, o,
        [&](const ReadyRows& rows) {
          ++parts_;
          overlapped_parts_ += loader_.io().in_flight();
          EXPECT_EQ(rows.slots.size(), rows.ids.size());
          for (size_t k = 0; k < rows.slots.size(); ++k) {
            const char* row = rows.base + static_cast<uint64_t>(rows.slots[k]) * rows.row_bytes;
            const char* want = bundle_.data() + m_.RecordOffset(l, rows.ids[k]);
            EXPECT_EQ(std::memcmp(row, want, m_.bundle.record_bytes), 0)
                << "layer " << l << " neuron " << rows.ids[k];
            got.push_back(rows.ids[k]);
          }
        },
        stats);
    return got;
  }

  // Every resident neuron's row holds its record.
  void ExpectResidentRowsMatchTheFile(int l) {
    const NeuronMatrix& mat = loader_.layer(l).matrix();
    for (int s = 0; s < mat.size(); ++s) {
      ASSERT_EQ(std::memcmp(mat.Row(s), bundle_.data() + m_.RecordOffset(l, mat.IdAt(s)),
                            m_.bundle.record_bytes),
                0)
          << "slot " << s << " neuron " << mat.IdAt(s);
    }
  }

  static std::vector<int32_t> Sorted(std::vector<int32_t> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  static std::vector<int32_t> Random(int n, int count, uint32_t seed) {
    std::vector<int32_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    std::mt19937 rng(seed);
    std::shuffle(all.begin(), all.end(), rng);
    all.resize(count);
    return Sorted(all);
  }

  testing::TempDir tmp_;
  std::string dir_, bundle_;
  Manifest m_;
  uint64_t stride_ = 0;
  int parts_ = 0, overlapped_parts_ = 0;  // of the last load: parts, and parts computed while a read was in flight
  NeuronLoader loader_;
};

TEST_P(NeuronLoaderTest, ReadsOnlyWhatTheWindowLacks) {
  ASSERT_TRUE(Open(60).ok());
  const std::vector<int32_t> a = Random(96, 30, 1), b = Random(96, 30, 2);
  for (int64_t t = 0; t < 3; ++t) {
    const std::vector<int32_t>& active = t == 1 ? b : a;
    TokenStats stats;
    Status st;
    std::vector<int32_t> got = LoadAndCheck(0, t, active, {}, &stats, &st);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(got, active) << "one part, in neuron order";
    size_t fresh = active.size();  // t = 0: everything
    if (t == 1) {
      fresh = 0;
      for (int32_t id : b) fresh += !std::binary_search(a.begin(), a.end(), id);
    }
    if (t == 2) fresh = 0;  // a and b fit in 60 rows, and a is still in the window (k = 3)
    EXPECT_EQ(stats.neurons_loaded, fresh) << "token " << t;
    EXPECT_EQ(stats.bytes_read, stats.neurons_loaded * stride_);
  }
  ExpectResidentRowsMatchTheFile(0);
}

// Runs of neurons replacing the runs they evict (a mixture of experts):
// with replace_in_place (and frequencies, so nothing leaves by age alone)
// the new rows land where the evicted ones were, no row is copied, and every part and resident row still holds its record,
// through plain loads, overlapped loads, prefetches and a stream that does
// not fit.
TEST_P(NeuronLoaderTest, InPlaceReplacementCopiesNoRowAndKeepsEveryRowRight) {
  for (bool in_place : {false, true}) {
    ASSERT_TRUE(Open(48, nullptr, in_place).ok());
    std::mt19937 rng(3);
    uint64_t loaded = 0;
    for (int64_t t = 0; t < 24; ++t) {
      // Two "experts" of 12 neurons out of 8.
      std::vector<int32_t> active;
      const int e1 = rng() % 8, e2 = (e1 + 1 + rng() % 7) % 8;
      for (int e : {std::min(e1, e2), std::max(e1, e2)}) {
        for (int i = 0; i < 12; ++i) active.push_back(e * 12 + i);
      }
      TokenStats stats;
      Status st;
      if (t % 3 == 1) ASSERT_TRUE(loader_.Prefetch(0, t, active, &stats).ok());
      LoadOptions o;
      if (t % 4 == 2) o.overlap_min_rows = 0;
      std::vector<int32_t> got = LoadAndCheck(0, t, active, o, &stats, &st);
      ASSERT_TRUE(st.ok()) << st.ToString();
      EXPECT_EQ(Sorted(got), active) << "token " << t;
      loaded += stats.neurons_loaded;
      ExpectResidentRowsMatchTheFile(0);
    }
    if (in_place) {
      EXPECT_EQ(loader_.bytes_moved(), 0u) << "rows read into the evicted ones' places";
    } else {
      EXPECT_GT(loader_.bytes_moved(), 0u) << "rows copied to keep the matrix dense";
    }
    // A token needing more than the rows: streamed, the matrix dense after.
    std::vector<int32_t> many = Random(96, 80, 9);
    TokenStats stats;
    Status st;
    EXPECT_EQ(Sorted(LoadAndCheck(0, 24, many, {}, &stats, &st)), many);
    ASSERT_TRUE(st.ok());
    ExpectResidentRowsMatchTheFile(0);
    const NeuronMatrix& mat = loader_.layer(0).matrix();
    for (int s = 0; s < mat.size(); ++s) EXPECT_GE(mat.IdAt(s), 0) << "no hole left at slot " << s;
    EXPECT_GT(loaded, 48u) << "evictions happened";
  }
}

TEST_P(NeuronLoaderTest, OverlappedReadsHandOverResidentRowsFirst) {
  ASSERT_TRUE(Open(96).ok());
  const std::vector<int32_t> first = Random(96, 40, 3);
  TokenStats stats;
  Status st;
  LoadAndCheck(1, 0, first, {}, &stats, &st);
  ASSERT_TRUE(st.ok());
  std::vector<int32_t> active = Sorted([&] {
    std::vector<int32_t> v(first.begin(), first.begin() + 20);
    for (int32_t id : Random(96, 40, 4)) {
      if (!std::binary_search(first.begin(), first.end(), id)) v.push_back(id);
    }
    return v;
  }());
  LoadOptions o;
  o.overlap_min_rows = 0;
  TokenStats s2;
  std::vector<int32_t> got = LoadAndCheck(1, 1, active, o, &s2, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Sorted(got), active);
  EXPECT_EQ(parts_, 2);
  EXPECT_EQ(overlapped_parts_, 1) << "the resident part is computed while the rest is read";
  // The 20 resident neurons come first (in neuron order), then the new ones.
  std::vector<int32_t> resident(got.begin(), got.begin() + 20);
  EXPECT_EQ(resident, std::vector<int32_t>(first.begin(), first.begin() + 20));
  EXPECT_EQ(s2.neurons_loaded, active.size() - 20);
  ExpectResidentRowsMatchTheFile(1);
}

// 70 active neurons through 10 rows: a double-buffered stream of 5-row
// parts. Each neuron is read and handed over once, and a full region stays.
TEST_P(NeuronLoaderTest, SparseStreamReadsEachNeuronOnceAndKeepsARegion) {
  ASSERT_TRUE(Open(10).ok());
  const std::vector<int32_t> active = Random(96, 70, 5);
  TokenStats stats;
  Status st;
  std::vector<int32_t> got = LoadAndCheck(0, 0, active, {}, &stats, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Sorted(got), active);
  EXPECT_EQ(got.size(), active.size());
  EXPECT_EQ(stats.neurons_loaded, 70u);
  EXPECT_EQ(stats.bytes_read, 70 * stride_);
  // Double-buffered: 14 parts of 5 rows, each but the last computed while
  // the next one is read.
  EXPECT_EQ(parts_, 14);
  EXPECT_EQ(overlapped_parts_, 13);
  const NeuronMatrix& mat = loader_.layer(0).matrix();
  EXPECT_EQ(mat.size(), 10) << "the last two parts stay resident";
  for (int k = 60; k < 70; ++k) EXPECT_TRUE(mat.Contains(active[k])) << active[k];
  ExpectResidentRowsMatchTheFile(0);
  // The next token needs the same neurons: the kept ones are not read again.
  TokenStats s2;
  got = LoadAndCheck(0, 1, active, {}, &s2, &st);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(Sorted(got), active);
  EXPECT_EQ(s2.neurons_loaded, 60u);
  ExpectResidentRowsMatchTheFile(0);
}

TEST_P(NeuronLoaderTest, OneRowStreamsOneNeuronAtATime) {
  ASSERT_TRUE(Open(1).ok());
  const std::vector<int32_t> active = Random(96, 7, 6);
  TokenStats stats;
  Status st;
  std::vector<int32_t> got = LoadAndCheck(0, 0, active, {}, &stats, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(got, active);
  EXPECT_EQ(overlapped_parts_, 0) << "one row cannot be read while it is computed";
  EXPECT_EQ(loader_.layer(0).matrix().size(), 1);
  EXPECT_TRUE(loader_.layer(0).matrix().Contains(active.back()));
  ExpectResidentRowsMatchTheFile(0);
}

// A dense layer bigger than its rows: the whole layer streams through the
// region; the rows beyond it are filled once and kept, so from the second
// token on every token reads the same bytes, less than the layer.
TEST_P(NeuronLoaderTest, DenseStreamCoversTheLayerAndReadsTheSameBytesEachToken) {
  ASSERT_TRUE(Open(40).ok());
  std::vector<uint64_t> bytes;
  for (int64_t t = 0; t < 3; ++t) {
    TokenStats stats;
    Status st;
    std::vector<int32_t> got = LoadAndCheck(0, t, loader_.all_ids(), {}, &stats, &st);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(Sorted(got), loader_.all_ids());
    bytes.push_back(stats.bytes_read);
  }
  EXPECT_EQ(bytes[0], 96 * stride_);
  EXPECT_LT(bytes[1], bytes[0]);
  EXPECT_EQ(bytes[2], bytes[1]);
  const int kept = loader_.layer(0).matrix().size();
  EXPECT_GT(kept, 0);
  EXPECT_EQ(bytes[1], (96 - kept) * stride_);
  ExpectResidentRowsMatchTheFile(0);
}

TEST_P(NeuronLoaderTest, PrefetchedRowsAreNotReadAgain) {
  ASSERT_TRUE(Open(60).ok());
  const std::vector<int32_t> guess = Random(96, 30, 7);
  std::vector<int32_t> active(guess.begin(), guess.begin() + 25);
  active.push_back(95);
  active = Sorted(active);
  active.erase(std::unique(active.begin(), active.end()), active.end());
  TokenStats stats;
  ASSERT_TRUE(loader_.Prefetch(0, 0, guess, &stats).ok());
  Status st;
  std::vector<int32_t> got = LoadAndCheck(0, 0, active, {}, &stats, &st);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Sorted(got), active);
  EXPECT_EQ(stats.neurons_prefetched, guess.size());
  size_t unused = 0;
  for (int32_t id : guess) unused += !std::binary_search(active.begin(), active.end(), id);
  EXPECT_EQ(stats.prefetch_unused, unused);
  const bool guessed_95 = std::binary_search(guess.begin(), guess.end(), 95);
  EXPECT_EQ(stats.neurons_loaded, guess.size() + (guessed_95 ? 0 : 1));
  ExpectResidentRowsMatchTheFile(0);
}

// Every third device read fails with EIO, on every path: the error names
// the bundle, no neuron whose read failed looks resident, and once the
// device recovers the same loads succeed.
TEST_P(NeuronLoaderTest, FailedReadsLeaveNoRowBehind) {
  testing::FaultInjector faults;
  ASSERT_TRUE(Open(10, &faults).ok());
  const std::vector<std::vector<int32_t>> sets = {Random(96, 8, 8), Random(96, 70, 9),
                                                  loader_.all_ids()};
  int failures = 0;
  int64_t t = 0;
  for (const auto& active : sets) {
    for (int64_t overlap : {int64_t{-1}, int64_t{0}}) {
      faults.Set(testing::FaultInjector::Mode::kErrno, 3, EIO);
      LoadOptions o;
      o.overlap_min_rows = overlap;
      TokenStats stats;
      Status st;
      LoadAndCheck(0, t++, active, o, &stats, &st);
      if (!st.ok()) {
        ++failures;
        EXPECT_THAT(st.message(), HasSubstr(m_.bundle.file));
      }
      ExpectResidentRowsMatchTheFile(0);
      faults.Set(testing::FaultInjector::Mode::kNone, 1);
      TokenStats ok_stats;
      std::vector<int32_t> got = LoadAndCheck(0, t++, active, o, &ok_stats, &st);
      ASSERT_TRUE(st.ok()) << st.ToString();
      EXPECT_EQ(Sorted(got), active);
      ExpectResidentRowsMatchTheFile(0);
    }
  }
  EXPECT_GT(failures, 0) << "the injector never hit a read";
  EXPECT_GT(faults.injected(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, NeuronLoaderTest,
                         ::testing::Values(Shape{"uring_staged", 16, IoBackendKind::kUring},
                                           Shape{"uring_direct", 512, IoBackendKind::kUring},
                                           Shape{"pread_direct", 512, IoBackendKind::kPread}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace llmflash

// The neuron matrix, the window and the layer cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "cache/layer_cache.h"
#include "cache/neuron_matrix.h"
#include "cache/row_split.h"
#include "cache/window.h"
#include "testing/test_util.h"
#include "util/aligned_buffer.h"

namespace llmflash {
namespace {

using testing::IsOk;

// Fills a row with a pattern derived from the neuron id.
void Fill(NeuronMatrix& m, int slot, int id) {
  auto* row = reinterpret_cast<int32_t*>(m.Row(slot));
  for (uint64_t j = 0; j < m.row_bytes() / 4; ++j) row[j] = id * 1000 + static_cast<int>(j);
}

void ExpectConsistent(const NeuronMatrix& m, const std::set<int>& resident, int n) {
  ASSERT_EQ(m.size(), static_cast<int>(resident.size()));
  for (int s = 0; s < m.size(); ++s) {
    int id = m.IdAt(s);
    ASSERT_TRUE(resident.count(id)) << "slot " << s << " holds unexpected " << id;
    ASSERT_EQ(m.SlotOf(id), s);
    auto* row = reinterpret_cast<const int32_t*>(m.Row(s));
    for (uint64_t j = 0; j < m.row_bytes() / 4; ++j) ASSERT_EQ(row[j], id * 1000 + int(j));
  }
  for (int id = 0; id < n; ++id) ASSERT_EQ(m.Contains(id), resident.count(id) > 0) << id;
}

TEST(NeuronMatrix, RandomAppendsAndDeletesKeepIdsSlotsAndRows) {
  const int n = 300, cap = 64;
  NeuronMatrix m;
  ASSERT_THAT(m.Init(n, cap, 256), IsOk());
  const void* storage = m.storage();
  std::mt19937 rng(3);
  std::set<int> resident;
  for (int step = 0; step < 5000; ++step) {
    bool add = resident.empty() || (m.free_rows() > 0 && rng() % 2);
    if (add) {
      int id;
      do id = rng() % n; while (resident.count(id));
      Fill(m, m.Append(id), id);
      resident.insert(id);
    } else {
      auto it = resident.begin();
      std::advance(it, rng() % resident.size());
      m.Remove(*it);
      resident.erase(it);
    }
    if (step % 97 == 0) ExpectConsistent(m, resident, n);
  }
  ExpectConsistent(m, resident, n);
  EXPECT_EQ(m.storage(), storage) << "the matrix was reallocated";
  EXPECT_EQ(m.capacity(), cap);
  m.Clear();
  ExpectConsistent(m, {}, n);
}

TEST(NeuronMatrix, DeleteMovesTheLastRowIntoTheHole) {
  NeuronMatrix m;
  ASSERT_THAT(m.Init(10, 4, 64), IsOk());
  for (int id : {5, 6, 7}) Fill(m, m.Append(id), id);
  m.Remove(5);
  EXPECT_EQ(m.SlotOf(7), 0);
  EXPECT_EQ(m.IdAt(0), 7);
  EXPECT_EQ(m.bytes_moved(), 64u);
  m.Remove(6);  // the last row: nothing moves
  EXPECT_EQ(m.bytes_moved(), 64u);
  ExpectConsistent(m, {7}, 10);
}

TEST(NeuronMatrix, RejectsBadShapes) {
  NeuronMatrix m;
  EXPECT_FALSE(m.Init(10, 11, 64).ok());
  EXPECT_FALSE(m.Init(10, 0, 64).ok());
  EXPECT_FALSE(m.Init(10, 5, 100).ok());
}

TEST(Window, NeuronsStayForKTokens) {
  Window w;
  w.Init(10, 3);
  std::vector<int32_t> a = {1, 2};
  w.Touch(a, 5);
  EXPECT_TRUE(w.InWindow(1, 5));
  EXPECT_TRUE(w.InWindow(1, 7));
  EXPECT_FALSE(w.InWindow(1, 8));
  EXPECT_FALSE(w.InWindow(3, 5));
  EXPECT_TRUE(w.UsedAt(2, 5));
  EXPECT_FALSE(w.UsedAt(2, 6));
  w.Reset();
  EXPECT_FALSE(w.InWindow(1, 5));
}

TEST(LayerCache, ReadsOnlyNeuronsNotInTheWindow) {
  LayerCache c;
  ASSERT_THAT(c.Init(100, 50, 64, 2), IsOk());
  std::vector<int32_t> slots, missing;
  auto run = [&](int64_t t, std::vector<int32_t> active) {
    c.BeginToken(t, active, &slots, &missing);
    c.MakeRoom(static_cast<int>(missing.size()), t);
    for (int32_t id : missing) c.matrix().Append(id);
  };
  run(0, {1, 2, 3});
  EXPECT_EQ(missing, (std::vector<int32_t>{1, 2, 3}));
  run(1, {2, 3, 4});
  EXPECT_EQ(missing, (std::vector<int32_t>{4}));
  EXPECT_EQ(slots.size(), 2u);
  run(2, {4, 5});  // 1 was last used at token 0: outside a 2-token window
  EXPECT_EQ(missing, (std::vector<int32_t>{5}));
  EXPECT_FALSE(c.matrix().Contains(1));
  EXPECT_TRUE(c.matrix().Contains(2));  // used at token 1: still in the window
  run(3, {5});
  EXPECT_FALSE(c.matrix().Contains(2));
  EXPECT_TRUE(missing.empty());
}

TEST(LayerCache, MakeRoomEvictsLeastRecentlyUsedButNeverTheCurrentToken) {
  LayerCache c;
  ASSERT_THAT(c.Init(100, 4, 64, 100), IsOk());
  std::vector<int32_t> slots, missing;
  for (int64_t t = 0; t < 4; ++t) {
    std::vector<int32_t> a = {static_cast<int32_t>(10 + t)};
    c.BeginToken(t, a, &slots, &missing);
    c.matrix().Append(missing[0]);
  }
  std::vector<int32_t> a = {12, 20, 21};
  c.BeginToken(4, a, &slots, &missing);
  EXPECT_EQ(missing, (std::vector<int32_t>{20, 21}));
  EXPECT_EQ(c.MakeRoom(2, 4), 2);
  EXPECT_FALSE(c.matrix().Contains(10));  // oldest
  EXPECT_FALSE(c.matrix().Contains(11));
  EXPECT_TRUE(c.matrix().Contains(12));   // needed now
  EXPECT_TRUE(c.matrix().Contains(13));
  EXPECT_EQ(c.MakeRoom(4, 4), 3);  // 12 is protected: at most 3 rows can be freed
}


// With frequencies, a neuron used on most tokens survives a run of one-off
// neurons that LRU would have kept instead; the uses decay, so a neuron
// hot long ago gives way.
TEST(LayerCache, FrequencyEvictionKeepsTheNeuronsUsedMostLately) {
  for (double half_life : {0.0, 8.0}) {
    LayerCache c;
    ASSERT_THAT(c.Init(100, 3, 64, 100, nullptr, half_life), IsOk());
    std::vector<int32_t> slots, missing;
    auto run = [&](int64_t t, std::vector<int32_t> a) {
      c.BeginToken(t, a, &slots, &missing);
      c.MakeRoom(static_cast<int>(missing.size()), t);
      for (int32_t id : missing) c.matrix().Append(id);
    };
    // Neuron 7 on every even token; each token also one neuron never seen again.
    for (int64_t t = 0; t < 10; ++t) run(t, t % 2 == 0 ? std::vector<int32_t>{7, int32_t(50 + t)} : std::vector<int32_t>{int32_t(50 + t)});
    // Two tokens of one-offs only: LRU keeps the last three, dropping 7.
    run(10, {80});
    run(11, {81});
    run(12, {82});
    EXPECT_EQ(c.matrix().Contains(7), half_life > 0) << "half-life " << half_life;
    if (half_life > 0) {
      EXPECT_GT(c.window().Frequency(7, 12), 1.0);
      EXPECT_LT(c.window().Frequency(82, 12), c.window().Frequency(7, 12));
      // Long unused, 7 decays below a neuron used twice just now.
      for (int64_t t = 13; t < 80; ++t) run(t, {int32_t(90 + t % 3)});
      EXPECT_FALSE(c.matrix().Contains(7));
    }
  }
}

TEST(SplitRows, SharesRowsByWantWithinBounds) {
  std::vector<double> want = {1, 3, 0, 4};
  std::vector<int> rows = SplitRows(800, want, 1000);
  EXPECT_EQ(std::accumulate(rows.begin(), rows.end(), 0), 800);
  EXPECT_EQ(rows[2], 1);  // wants nothing: the one-row minimum
  // Past the one-row minimum each, the other 796 rows go 1 : 3 : 0 : 4.
  EXPECT_NEAR(rows[0], 1 + 796 * 1 / 8.0, 2);
  EXPECT_NEAR(rows[1], 1 + 796 * 3 / 8.0, 2);
  EXPECT_NEAR(rows[3], 1 + 796 * 4 / 8.0, 2);
  // A layer that would pass its neuron count is filled and the rest re-shared.
  rows = SplitRows(700, std::vector<double>{1, 1, 8}, 300);
  EXPECT_EQ(rows, (std::vector<int>{200, 200, 300}));
  // More rows than neurons: every layer is full.
  EXPECT_EQ(SplitRows(5000, std::vector<double>{1, 2}, 300), (std::vector<int>{300, 300}));
  // Uniform wants split evenly, the remainder a row each in layer order.
  EXPECT_EQ(SplitRows(10, std::vector<double>{1, 1, 1}, 100), (std::vector<int>{4, 3, 3}));
}

// A view moved by k rows copies only the rows that fall outside its new
// place: min(k, size) rows, in either direction; every neuron keeps its row.
TEST(NeuronMatrix, RelocateCopiesOnlyTheRowsOutsideTheNewPlace) {
  const int n = 100, stride = 128;
  AlignedBuffer arena;
  ASSERT_TRUE(arena.Allocate(60 * stride, 64));
  NeuronMatrix m;
  ASSERT_THAT(m.InitView(n, 10, stride, arena.data() + 20 * stride), IsOk());
  std::set<int> resident;
  for (int id : {7, 3, 50, 99, 12, 40, 41, 0}) {
    Fill(m, m.Append(id), id);
    resident.insert(id);
  }
  struct Step { int to_row, capacity; uint64_t copied_rows; };
  for (Step s : {Step{23, 10, 3}, Step{19, 12, 4}, Step{40, 9, 8}, Step{35, 8, 5}, Step{5, 20, 8}}) {
    EXPECT_EQ(m.Relocate(arena.data() + s.to_row * stride, s.capacity), s.copied_rows * stride) << s.to_row;
    EXPECT_EQ(m.storage(), arena.data() + s.to_row * stride);
    EXPECT_EQ(m.capacity(), s.capacity);
    ExpectConsistent(m, resident, n);
  }
  m.Remove(50);  // still a working matrix
  resident.erase(50);
  Fill(m, m.Append(60), 60);
  resident.insert(60);
  ExpectConsistent(m, resident, n);
}

// Layers as views of one arena, re-sized back and forth at random: every
// resident neuron keeps its row, shrinking layers drop their least recently
// used neurons, and the rows stay inside the arena in layer order.
TEST(ResizeLayers, MovesRowsWithoutLosingThemAndEvictsLeastRecentlyUsed) {
  const int n = 200, layers = 5, total = 400;
  const uint64_t stride = 256;
  AlignedBuffer arena;
  ASSERT_TRUE(arena.Allocate(total * stride, 64));
  std::vector<LayerCache> cache(layers);
  std::vector<int> rows(layers, total / layers);
  for (int l = 0, at = 0; l < layers; at += rows[l], ++l) {
    ASSERT_THAT(cache[l].Init(n, rows[l], stride, 1000, arena.data() + at * stride), IsOk());
  }
  std::mt19937 rng(5);
  std::vector<std::set<int>> resident(layers);
  std::vector<int32_t> slots, missing;
  for (int64_t t = 0; t < 40; ++t) {
    for (int l = 0; l < layers; ++l) {  // a token: some neurons, read if missing
      std::set<int> want;
      const int k = static_cast<int>(rng() % std::min(cache[l].matrix().capacity(), 60)) + 1;
      while (static_cast<int>(want.size()) < k) want.insert(static_cast<int>(rng() % n));
      std::vector<int32_t> active(want.begin(), want.end());
      cache[l].BeginToken(t, active, &slots, &missing);
      ASSERT_GE(cache[l].MakeRoom(static_cast<int>(missing.size()), t), static_cast<int>(missing.size()));
      for (int32_t id : missing) Fill(cache[l].matrix(), cache[l].matrix().Append(id), id);
      resident[l].clear();
      for (int s = 0; s < cache[l].matrix().size(); ++s) resident[l].insert(cache[l].matrix().IdAt(s));
    }
    std::vector<double> w(layers);
    for (double& x : w) x = 1 + rng() % 20;
    std::vector<int> next = SplitRows(total, w, n);
    std::vector<const void*> was(layers);
    for (int l = 0; l < layers; ++l) was[l] = cache[l].matrix().storage();
    const uint64_t moved = ResizeLayers(cache, arena.data(), stride, next);
    uint64_t want_moved = 0;  // a layer whose start moved by k rows copies min(k, its rows)
    for (int l = 0; l < layers; ++l) {
      const int64_t shift = (static_cast<const char*>(cache[l].matrix().storage()) -
                             static_cast<const char*>(was[l])) / static_cast<int64_t>(stride);
      want_moved += std::min<uint64_t>(std::llabs(shift), cache[l].matrix().size()) * stride;
    }
    EXPECT_EQ(moved, want_moved);
    for (int l = 0, at = 0; l < layers; at += next[l], ++l) {
      const NeuronMatrix& m = cache[l].matrix();
      ASSERT_EQ(m.capacity(), next[l]);
      ASSERT_EQ(m.storage(), arena.data() + at * stride) << "layer " << l;
      std::set<int> now;
      for (int s = 0; s < m.size(); ++s) now.insert(m.IdAt(s));
      ASSERT_EQ(now.size(), std::min<size_t>(resident[l].size(), next[l]));
      for (int id : now) ASSERT_TRUE(resident[l].count(id));
      // Only neurons at least as recent as the ones dropped survive.
      if (now.size() < resident[l].size()) {
        int64_t newest_dropped = -1, oldest_kept = INT64_MAX;
        for (int id : resident[l]) {
          int64_t u = cache[l].window().last_used(id);
          if (now.count(id)) oldest_kept = std::min(oldest_kept, u);
          else newest_dropped = std::max(newest_dropped, u);
        }
        ASSERT_LE(newest_dropped, oldest_kept);
      }
      ExpectConsistent(m, now, n);
      resident[l] = now;
    }
  }
}

}  // namespace
}  // namespace llmflash

// The neuron matrix, the window and the layer cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "cache/layer_cache.h"
#include "cache/neuron_matrix.h"
#include "cache/window.h"
#include "testing/test_util.h"

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

}  // namespace
}  // namespace llmflash

// Device profiles (JSON round trip, validation, interpolation), the cost
// model, the floor, the planner, and a real quick calibration on a file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "llmflash/profile.h"
#include "runtime/planner.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using ::testing::HasSubstr;

DeviceProfile TwoByTwo() {
  DeviceProfile p;
  p.measured_file = "/dev/test";
  p.chunk_bytes = {4096, 1 << 20};
  p.queue_depths = {1, 64};
  p.read_bytes_per_s = {{40e6, 300e6}, {800e6, 2000e6}};
  p.read_latency_us = 100;
  p.memcpy_bytes_per_s = 10e9;
  p.matvec_bytes_per_s = {{"f32", 20e9}, {"f16", 16e9}, {"bf16", 12e9}, {"q8_0", 10e9}, {"q4_0", 6e9}};
  p.threads = 2;
  return p;
}

TEST(DeviceProfile, SavesAndLoads) {
  testing::TempDir tmp;
  DeviceProfile p = TwoByTwo();
  ASSERT_THAT(SaveDeviceProfile(p, tmp.File("sub/dir/device.json")), testing::IsOk());
  auto q = LoadDeviceProfile(tmp.File("sub/dir/device.json"));
  ASSERT_THAT(q.status(), testing::IsOk());
  EXPECT_EQ(q->chunk_bytes, p.chunk_bytes);
  EXPECT_EQ(q->queue_depths, p.queue_depths);
  EXPECT_EQ(q->read_bytes_per_s, p.read_bytes_per_s);
  EXPECT_EQ(q->matvec_bytes_per_s.size(), p.matvec_bytes_per_s.size());
  for (const auto& [type, rate] : p.matvec_bytes_per_s) EXPECT_FLOAT_EQ(q->matvec_bytes_per_s.at(type), rate) << type;
  EXPECT_EQ(q->threads, 2);
}

// Profiles written before the quantized types were measured still load;
// their quantized rates fall back to f16's. A type a later library measured
// loads too (kept, unused here).
TEST(DeviceProfile, RatesAreKeyedByTypeOldAndNewProfilesLoad) {
  testing::TempDir tmp;
  DeviceProfile p = TwoByTwo();
  p.matvec_bytes_per_s = {{"f32", 20e9}, {"f16", 16e9}, {"bf16", 12e9}};
  ASSERT_THAT(SaveDeviceProfile(p, tmp.File("old.json")), testing::IsOk());
  auto old = LoadDeviceProfile(tmp.File("old.json"));
  ASSERT_THAT(old.status(), testing::IsOk());
  EXPECT_DOUBLE_EQ(old->MatVecBytesPerSecond("q4_0"), old->MatVecBytesPerSecond("f16"));
  EXPECT_NEAR(old->MatVecBytesPerSecond("bf16"), 12e9, 1e3);
  p.matvec_bytes_per_s["q3_future"] = 5e9;
  ASSERT_THAT(SaveDeviceProfile(p, tmp.File("new.json")), testing::IsOk());
  auto newer = LoadDeviceProfile(tmp.File("new.json"));
  ASSERT_THAT(newer.status(), testing::IsOk());
  EXPECT_NEAR(newer->MatVecBytesPerSecond("q3_future"), 5e9, 1e3);
  p.matvec_bytes_per_s["q4_0"] = -1;
  ASSERT_THAT(SaveDeviceProfile(p, tmp.File("bad.json")), testing::IsOk());
  EXPECT_THAT(LoadDeviceProfile(tmp.File("bad.json")).status().message(), HasSubstr("q4_0"));
}

TEST(DeviceProfile, RejectsBadFilesNamingThem) {
  testing::TempDir tmp;
  ASSERT_THAT(SaveDeviceProfile(TwoByTwo(), tmp.File("good.json")), testing::IsOk());
  const std::string good = testing::ReadFile(tmp.File("good.json"));
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "{"},
      {"wrong format", replaced("llmflash-device-profile", "something-else")},
      {"wrong version", replaced("\"version\": 1", "\"version\": 7")},
      {"decreasing chunks", replaced("4096", "2097152")},
      {"missing matvec", replaced("\"matvec_bytes_per_s\"", "\"matvec\"")},
      {"negative rate", replaced("40000000.0", "-1.0")},
  };
  for (const auto& [name, text] : cases) {
    std::ofstream(tmp.File("bad.json")) << text;
    auto p = LoadDeviceProfile(tmp.File("bad.json"));
    EXPECT_FALSE(p.ok()) << name;
    EXPECT_THAT(p.status().message(), HasSubstr("bad.json")) << name;
  }
  EXPECT_FALSE(LoadDeviceProfile(tmp.File("missing.json")).ok());
}

TEST(DeviceProfile, InterpolatesInLogSpaceAndClamps) {
  DeviceProfile p = TwoByTwo();
  EXPECT_NEAR(p.ReadThroughput(4096, 1), 40e6, 1);
  EXPECT_NEAR(p.ReadThroughput(1 << 20, 64), 2000e6, 1);
  EXPECT_NEAR(p.ReadThroughput(512, 1), 40e6, 1);          // below the smallest chunk
  EXPECT_NEAR(p.ReadThroughput(64 << 20, 4096), 2000e6, 1);  // above the largest
  double mid = p.ReadThroughput(65536, 8);
  EXPECT_GT(mid, 40e6);
  EXPECT_LT(mid, 2000e6);
  EXPECT_LT(p.ReadThroughput(16384, 64), p.ReadThroughput(262144, 64));
  EXPECT_NEAR(p.ReadSeconds(100, 4096, 1), 100 * 4096 / 40e6, 1e-9);
}

TEST(CostModel, SumsStagesMinusOverlapAndStaysAboveTheFloor) {
  DeviceProfile p = TwoByTwo();
  TokenWorkload w;
  w.read_ops = 1000;
  w.device_bytes = 1000 * 16384.0;
  // Attention in q8_0, FFN records in q4_0: each priced at its own rate.
  w.weight_bytes = {{"q8_0", 0.6e9}, {"q4_0", 0.4e9}};
  w.predictor_bytes = 2e8;
  CostEstimate e = EstimateTokenCost(p, w);
  EXPECT_NEAR(e.io_ms, 1e3 * p.ReadSeconds(1000, 16384, 64), 1e-6);
  EXPECT_NEAR(e.compute_ms, 1e3 * (0.6e9 / 10e9 + 0.4e9 / 6e9), 1e-6);
  EXPECT_NEAR(e.predictor_ms, 1e3 * 2e8 / 20e9, 1e-6);
  EXPECT_NEAR(e.total_ms, e.io_ms + e.compute_ms + e.predictor_ms + e.memory_ms, 1e-6);
  w.overlapped_ms = 5;
  EXPECT_NEAR(EstimateTokenCost(p, w).total_ms, e.total_ms - 5, 1e-6);
  w.overlapped_ms = 1e6;  // never hides more than the smaller of I/O and compute
  EXPECT_NEAR(EstimateTokenCost(p, w).total_ms, e.total_ms - std::min(e.io_ms, e.compute_ms), 1e-6);
  double floor = FloorMs(p, w.device_bytes, 16384, 64, w.WeightBytes());
  EXPECT_LE(floor, EstimateTokenCost(p, w).total_ms + 1e-9);
  EXPECT_NEAR(floor, std::max(e.io_ms, 1e3 * 1e9 / 20e9), 1e-6);
}

TEST(Planner, WindowGrowsWithTheBudgetAndFollowsTheOption) {
  Manifest m;
  m.config.dim = 256;
  m.config.ffn_dim = 1024;
  m.config.n_layers = 4;
  m.config.n_heads = m.config.n_kv_heads = 4;
  m.config.head_dim = 64;
  m.config.vocab_size = 1000;
  m.dtype = DType::kF16;
  m.bundle.record_stride = 1024;
  m.predictor.present = true;
  m.predictor.layers.resize(4);
  for (auto& l : m.predictor.layers) {
    l.predicted_fraction = 0.1f;
    l.rank = 32;
  }
  MemoryPlan small, mid, big;
  small.capacity = 20;  // ~102 active neurons, ~15 new ones per token
  mid.capacity = 60;
  big.capacity = 900;
  ModelOptions o;
  LoaderPlan a = PlanLoader(m, small, TwoByTwo(), o), b = PlanLoader(m, big, TwoByTwo(), o);
  EXPECT_EQ(a.window, 1);
  EXPECT_EQ(PlanLoader(m, mid, TwoByTwo(), o).window, 3);
  EXPECT_EQ(b.window, 8);
  EXPECT_GT(a.estimate.total_ms, 0);
  EXPECT_LE(a.floor_ms, a.estimate.total_ms + 1e-9);
  o.window = 3;
  EXPECT_EQ(PlanLoader(m, small, TwoByTwo(), o).window, 3);
  m.predictor.present = false;  // dense: every neuron, no churn assumed
  EXPECT_DOUBLE_EQ(PlanLoader(m, small, TwoByTwo(), ModelOptions{}).active_fraction, 1.0);
}

TEST(Calibrate, MeasuresARealFileAndRefusesTinyOnes) {
  testing::TempDir tmp;
  CalibrateOptions o;
  o.scratch_dir = tmp.path();
  o.size_bytes = 8 << 20;
  o.quick = true;
  o.threads = 1;
  auto p = CalibrateDevice(o);
  ASSERT_THAT(p.status(), testing::IsOk());
  ASSERT_FALSE(p->chunk_bytes.empty());
  for (const auto& row : p->read_bytes_per_s) {
    for (double v : row) EXPECT_GT(v, 0);
  }
  for (DType t : kAllDTypes) EXPECT_GT(p->matvec_bytes_per_s.at(DTypeName(t)), 0) << DTypeName(t);
  EXPECT_GT(p->memcpy_bytes_per_s, 0);
  ASSERT_THAT(SaveDeviceProfile(*p, tmp.File("p.json")), testing::IsOk());
  EXPECT_THAT(LoadDeviceProfile(tmp.File("p.json")).status(), testing::IsOk());
  std::ofstream(tmp.File("tiny")) << "0123456789";
  o.file = tmp.File("tiny");
  EXPECT_THAT(CalibrateDevice(o).status().message(), HasSubstr("too small"));
  o.file.clear();
  o.size_bytes = 1024;
  EXPECT_FALSE(CalibrateDevice(o).ok());
}

}  // namespace
}  // namespace llmflash

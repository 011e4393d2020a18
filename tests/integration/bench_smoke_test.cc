// A smoke run of llmflash-bench on stories260K: every mode runs and reports
// (how fast is for benchmarks, not tests).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "testing/test_util.h"

namespace llmflash {
namespace {

TEST(BenchSmoke, EveryModeRunsAndReports) {
  testing::TempDir tmp;
  std::string cmd = std::string(LLMFLASH_BENCH_PATH) + " --model " + testing::Stories260KModel() +
                    " --modes naive,hybrid,mmap,llmflash --tokens 6 --dram-budget 140% --remeasure quick --json " +
                    tmp.File("b.json") + " --plot " + tmp.File("p.svg") + " > " + tmp.File("out") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << testing::ReadFile(tmp.File("out"));
  std::string out = testing::ReadFile(tmp.File("out"));
  // mmap runs inside a memory cgroup when the bench can make one (root,
  // cgroup v1), and says it was skipped otherwise.
  const bool cgroup = ::geteuid() == 0 && ::access("/sys/fs/cgroup/memory", W_OK) == 0;
  auto j = nlohmann::json::parse(testing::ReadFile(tmp.File("b.json")));
  if (cgroup) {
    ASSERT_EQ(j["modes"].size(), 4u) << out;
  } else {
    EXPECT_NE(out.find("mmap: skipped"), std::string::npos) << out;
    ASSERT_EQ(j["modes"].size(), 3u);
  }
  std::map<std::string, nlohmann::json> by;
  for (const auto& m : j["modes"]) {
    for (const char* key : {"ms_per_token_mean", "ms_per_token_p50", "ms_per_token_p90", "io_ms",
                            "memory_ms", "predictor_ms", "compute_ms", "bytes_per_token",
                            "reads_per_token", "peak_rss_bytes"}) {
      EXPECT_TRUE(m.contains(key)) << key;
    }
    EXPECT_GT(m["ms_per_token_mean"].get<double>(), 0.0);
    EXPECT_GT(m["peak_rss_bytes"].get<double>(), 0.0);
    by[m["mode"]] = m;
  }
  // Naive reads the whole FFN (5 x 172 x 768 bytes) every token; hybrid keeps
  // part of it resident and reads less.
  EXPECT_DOUBLE_EQ(by["naive"]["bytes_per_token"].get<double>(), 5.0 * 172 * 768);
  EXPECT_LT(by["hybrid"]["bytes_per_token"].get<double>(), by["naive"]["bytes_per_token"].get<double>());
  EXPECT_TRUE(j.contains("budget_bytes"));
  if (cgroup) EXPECT_DOUBLE_EQ(by["mmap"]["bytes_per_token"].get<double>(), 5.0 * 172 * 768);
  // The workload: tokens of the default corpus, teacher-forced, with its
  // statistics from a dense pass.
  const auto& w = j["workload"];
  EXPECT_EQ(w["corpus_tokens"].get<int>(), 6);
  EXPECT_GT(w["distinct_tokens"].get<int>(), 3);
  for (const char* key : {"active_fraction_per_token", "new_fraction_per_token", "window_coverage"}) {
    EXPECT_TRUE(w[key].is_number()) << key;
  }
  // This model has no predictor: its figures are null, not made up.
  EXPECT_TRUE(w["predictor_recall"].is_null());
  EXPECT_GT(w["active_fraction_per_token"].get<double>(), 0.0);
  EXPECT_LE(w["new_fraction_per_token"].get<double>(), w["active_fraction_per_token"].get<double>());
  EXPECT_NE(out.find("workload: 14 tokens of the default corpus"), std::string::npos) << out;
  // The a-priori prediction (made at Open), the oracle floor, and the cost
  // model after the fact, for the llmflash mode.
  EXPECT_GT(j["predicted_ms"].get<double>(), 0.0);
  EXPECT_GT(j["floor_ms"].get<double>(), 0.0);
  EXPECT_GT(j["floor"]["compute_ms"].get<double>(), 0.0);
  EXPECT_GT(j["predicted_ms_post_hoc"].get<double>(), 0.0);
  EXPECT_NE(out.find("a-priori prediction (planner, before any token)"), std::string::npos) << out;
  // ... from the device measured just before and after the llmflash mode,
  // next to the prediction from the stored profile.
  EXPECT_TRUE(j["device_remeasured"].get<bool>());
  EXPECT_GT(j["predicted_ms_stored_profile"].get<double>(), 0.0);
  EXPECT_NE(out.find("device just before llmflash:"), std::string::npos) << out;
  EXPECT_NE(out.find("device just after llmflash:"), std::string::npos) << out;
  std::string svg = testing::ReadFile(tmp.File("p.svg"));
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  for (const char* mode : {"naive", "hybrid", "llmflash"}) EXPECT_NE(svg.find(mode), std::string::npos);
}

}  // namespace
}  // namespace llmflash

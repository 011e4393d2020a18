// A smoke run of llmflash-bench on stories260K: every mode runs and reports
// (how fast is for benchmarks, not tests).
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "testing/test_util.h"

namespace llmflash {
namespace {

TEST(BenchSmoke, EveryModeRunsAndReports) {
  testing::TempDir tmp;
  std::string cmd = std::string(LLMFLASH_BENCH_PATH) + " --model " + testing::Stories260KModel() +
                    " --modes naive,hybrid,mmap,llmflash --tokens 6 --dram-budget 140% --json " +
                    tmp.File("b.json") + " > " + tmp.File("out") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << testing::ReadFile(tmp.File("out"));
  std::string out = testing::ReadFile(tmp.File("out"));
  EXPECT_NE(out.find("mmap: skipped"), std::string::npos) << out;
  auto j = nlohmann::json::parse(testing::ReadFile(tmp.File("b.json")));
  ASSERT_EQ(j["modes"].size(), 3u);
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
}

}  // namespace
}  // namespace llmflash

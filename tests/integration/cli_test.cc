// The llmflash CLI as a user runs it: exact stdout, stats on stderr, errors.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "testing/test_util.h"

namespace llmflash {
namespace {

struct Result {
  int exit_code;
  std::string out;
};

// Runs a shell command, capturing stdout (stderr goes to `err_file` if set).
Result RunCli(const std::string& args, const std::string& err_file = "/dev/null") {
  std::string cmd = std::string(LLMFLASH_CLI_PATH) + " " + args + " 2>" + err_file;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(Cli, GeneratePrintsPromptThenTextExactly) {
  auto golden = nlohmann::json::parse(
      testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/stories260K_golden.json"));
  const auto& c = golden["cases"][1];  // "Once upon a time"
  std::string prompt = c["prompt"];
  size_t n = c["generated_ids"].size();
  Result r = RunCli("generate --model " + testing::Stories260KModel() + " --prompt '" + prompt +
                 "' --max-tokens " + std::to_string(n) + " --dram-budget 140%");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, prompt + c["text"].get<std::string>() + "\n");
}

TEST(Cli, StatsGoToStderr) {
  testing::TempDir tmp;
  Result r = RunCli("generate --model " + testing::Stories260KModel() +
                     " --prompt Lily --max-tokens 5 --stats",
                 tmp.File("err"));
  EXPECT_EQ(r.exit_code, 0);
  std::string err = testing::ReadFile(tmp.File("err"));
  EXPECT_NE(err.find("io_ms"), std::string::npos) << err;
  EXPECT_NE(err.find("io_uring (O_DIRECT)"), std::string::npos) << err;
  EXPECT_EQ(r.out.find("io_ms"), std::string::npos);
}

TEST(Cli, ErrorsAreOneClearLineAndNonZero) {
  testing::TempDir tmp;
  Result r = RunCli("generate --model /nonexistent --prompt x", tmp.File("err"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(testing::ReadFile(tmp.File("err")),
            "llmflash: NotFound: /nonexistent/manifest.json: no such file\n");
  EXPECT_EQ(RunCli("generate --model m --bogus 1").exit_code, 1);
  EXPECT_EQ(RunCli("frobnicate").exit_code, 2);
  EXPECT_EQ(RunCli("generate --model " + testing::Stories260KModel() + " --dram-budget 1K").exit_code, 1);
}

TEST(Cli, ConvertThenVerify) {
  testing::TempDir tmp;
  Result r = RunCli("convert --input " + testing::Stories260KBin() + " --tokenizer " +
                 testing::Stories260KTokenizer() + " --output " + tmp.File("m"));
  ASSERT_EQ(r.exit_code, 0);
  r = RunCli("verify --model " + tmp.File("m"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("OK"), std::string::npos);
}

}  // namespace
}  // namespace llmflash

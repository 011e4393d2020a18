// Shared test helpers: Status matchers, temporary directories, and the
// stories260K model converted once per test binary.
#ifndef LLMFLASH_TESTS_TESTING_TEST_UTIL_H_
#define LLMFLASH_TESTS_TESTING_TEST_UTIL_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "llmflash/status.h"

namespace llmflash::testing {

MATCHER(IsOk, "is OK") {
  if (arg.ok()) return true;
  *result_listener << arg.ToString();
  return false;
}

// StatusIs(code, HasSubstr("...")).
MATCHER_P2(StatusIs, code, message_matcher, "") {
  if (arg.code() != code) {
    *result_listener << "status is " << arg.ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(message_matcher, arg.message(), result_listener);
}

// A fresh directory under $TMPDIR (or the build tree), removed at exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// ../shared as configured at build time.
std::string SharedDir();
// The largest |got[i] - want[i]| with `want` a JSON list of rows of numbers
// (one row of logits per position), all of them read in order; a size
// mismatch is a test failure.
double MaxAbsDiff(const std::vector<float>& got, const nlohmann::json& want_rows);
// sqrt(sum (got - want)^2 / sum want^2); 1e9 when the sizes differ.
double RelativeRms(const std::vector<float>& got, const std::vector<float>& want);
// A tokenizer directory: shared/tokenizers/NAME, or for the gzip-stored
// ones (llama3, qwen3, gemma3) their copy decompressed into the build tree.
std::string TokenizerDir(const std::string& name);
std::string Stories260KBin();
std::string Stories260KTokenizer();

// stories260K converted into a temporary model directory, once per process.
// Fails the calling test if ../shared is missing.
const std::string& Stories260KModel();

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& bytes);

}  // namespace llmflash::testing

#endif  // LLMFLASH_TESTS_TESTING_TEST_UTIL_H_

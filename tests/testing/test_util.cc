// Test helpers.
#include "testing/test_util.h"

#include <cmath>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "llmflash/convert.h"

namespace llmflash::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/llmflash_test_XXXXXX";
  char* p = mkdtemp(tmpl.data());
  if (p == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << tmpl;
    return;
  }
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

std::string SharedDir() { return LLMFLASH_TEST_SHARED_DIR; }
double RelativeRms(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return 1e9;
  double e = 0, r = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    e += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    r += static_cast<double>(want[i]) * want[i];
  }
  return r > 0 ? std::sqrt(e / r) : (e > 0 ? 1e9 : 0.0);
}

double MaxAbsDiff(const std::vector<float>& got, const nlohmann::json& want_rows) {
  double worst = 0;
  size_t i = 0;
  for (const auto& row : want_rows) {
    for (const auto& v : row) {
      if (i >= got.size()) { ADD_FAILURE() << "fewer values than the reference"; return 1e300; }
      worst = std::max(worst, std::abs(static_cast<double>(got[i++]) - v.get<double>()));
    }
  }
  EXPECT_EQ(i, got.size());
  return worst;
}
std::string TokenizerDir(const std::string& name) {
  if (name == "llama3" || name == "qwen3" || name == "gemma3") return std::string(LLMFLASH_TEST_TOKENIZER_DIR) + "/" + name;
  return SharedDir() + "/tokenizers/" + name;
}
std::string Stories260KBin() { return SharedDir() + "/models/stories260K/stories260K.bin"; }
std::string Stories260KTokenizer() { return SharedDir() + "/models/stories260K/tok512.bin"; }

const std::string& Stories260KModel() {
  static TempDir* dir = new TempDir();  // lives until exit; removed by atexit below
  static std::string model = [] {
    std::string out = dir->path() + "/stories260K.llmflash";
    if (!std::filesystem::exists(Stories260KBin())) {
      ADD_FAILURE() << "missing " << Stories260KBin()
                    << ": the tests need ../shared/models/stories260K (set LLMFLASH_SHARED_DIR)";
      return out;
    }
    ConvertOptions o;
    o.input = Stories260KBin();
    o.tokenizer = Stories260KTokenizer();
    o.output = out;
    Status st = ConvertLlama2c(o);
    EXPECT_TRUE(st.ok()) << st.ToString();
    std::atexit([] { delete dir; });
    return out;
  }();
  return model;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

}  // namespace llmflash::testing

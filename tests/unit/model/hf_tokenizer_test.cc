// Hugging Face tokenizers: known ids, SentencePiece agreement, round trips.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/hf_tokenizer.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

std::string TokDir(const std::string& name) { return testing::SharedDir() + "/tokenizers/" + name; }

HfTokenizer Load(const std::string& path) {
  auto t = HfTokenizer::Load(path);
  EXPECT_THAT(t.status(), IsOk());
  return std::move(*t);
}

TEST(HfTokenizer, OptKnownIds) {
  std::vector<int> want = {31414, 6, 127, 766, 16};  // after OPT's BOS, </s> = 2
  EXPECT_EQ(Load(TokDir("opt")).Encode("Hello, my name is"), want);
  EXPECT_EQ(Load(TokDir("opt") + "/tokenizer.json").Encode("Hello, my name is"), want);
  // Without tokenizer.json: vocab.json + merges.txt.
  testing::TempDir tmp;
  for (const char* f : {"vocab.json", "merges.txt"}) {
    std::filesystem::copy(TokDir("opt") + "/" + f, tmp.File(f));
  }
  HfTokenizer fallback = Load(tmp.path());
  EXPECT_TRUE(fallback.byte_level());
  EXPECT_EQ(fallback.Encode("Hello, my name is"), want);
}

TEST(HfTokenizer, Gpt2PreTokenizationRules) {
  HfTokenizer t = Load(TokDir("gpt2"));
  // Contractions split off; a run of spaces leaves one space for the next
  // word; GPT-2 has no "  " token, so the other two stay single spaces.
  std::vector<int> ids = t.Encode("Hello world's   x");
  EXPECT_EQ(ids, (std::vector<int>{15496, 995, 338, 220, 220, 2124}));
  EXPECT_EQ(t.Encode("<|endoftext|>"), std::vector<int>{50256});  // added token, literal
}

TEST(HfTokenizer, Llama2AgreesWithSentencePiece) {
  HfTokenizer t = Load(TokDir("llama2"));
  EXPECT_FALSE(t.byte_level());
  auto table = nlohmann::json::parse(
      testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/llama2_spm_ids.json"));
  int compared = 0;
  for (const auto& c : table["cases"]) {
    std::string text = c["text"];
    if (c["multiline"].get<bool>()) continue;  // spm_encode encodes line by line
    EXPECT_EQ(t.Encode(text), c["ids"].get<std::vector<int>>()) << text;
    ++compared;
  }
  EXPECT_GE(compared, 12);
}

TEST(HfTokenizer, EveryTokenizerRoundTripsArbitraryText) {
  std::vector<std::string> texts = {
      "Hello, world!", "  two leading, three trailing   ", "tabs\tand\nnewlines\n\n\nend",
      "emoji \xF0\x9F\x98\x80\xF0\x9F\x9A\x80 and \xE2\x98\x83", "\xE4\xB8\xAD\xE6\x96\x87 \xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
      "caf\xC3\xA9 \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82", "invalid \xFF\xFE utf-8 \xC3", std::string("nul\0byte", 8),
      "don't won't it's", "    ", "x"};
  for (const char* name : {"gpt2", "opt", "llama2"}) {
    HfTokenizer t = Load(TokDir(name));
    for (const std::string& s : texts) {
      std::vector<int> ids = t.Encode(s);
      for (int id : ids) ASSERT_TRUE(id >= 0 && id < t.vocab_size()) << name;
      EXPECT_EQ(t.Decode(ids), s) << name << ": " << s;
    }
  }
}

TEST(HfTokenizer, BadFilesAreErrors) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.File("t.json"), "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}");
  EXPECT_THAT(HfTokenizer::Load(tmp.File("t.json")).status(), StatusIs(StatusCode::kUnsupported, HasSubstr("Unigram")));
  testing::WriteFile(tmp.File("t.json"), "{\"model\": {\"vocab\": {\"a\": -1}}}");
  EXPECT_THAT(HfTokenizer::Load(tmp.File("t.json")).status(), StatusIs(StatusCode::kCorruption, HasSubstr("t.json")));
  testing::WriteFile(tmp.File("t.json"), "{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [7]}}");
  EXPECT_THAT(HfTokenizer::Load(tmp.File("t.json")).status(), StatusIs(StatusCode::kCorruption, HasSubstr("merge")));
  testing::WriteFile(tmp.File("t.json"), "[]");
  EXPECT_FALSE(HfTokenizer::Load(tmp.File("t.json")).ok());
  EXPECT_FALSE(HfTokenizer::Load(tmp.File("missing")).ok());
}

}  // namespace
}  // namespace llmflash

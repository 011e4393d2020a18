// The llama2.c tokenizer against ids computed by the reference implementation
// (tests/reference/llama2c_reference.py), and round trips.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "format/llama2c_tokenizer_file.h"
#include "model/tokenizer.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

Llama2cTokenizer Load() {
  std::string bytes = testing::ReadFile(testing::Stories260KTokenizer());
  auto vocab = ParseLlama2cTokenizer(bytes, 512, "tok512.bin");
  EXPECT_THAT(vocab.status(), IsOk());
  auto tok = Llama2cTokenizer::Create(std::move(*vocab), 1, 2);
  EXPECT_THAT(tok.status(), IsOk());
  return std::move(*tok);
}

TEST(Llama2cTokenizer, MatchesReferenceIds) {
  Llama2cTokenizer tok = Load();
  auto golden = nlohmann::json::parse(
      testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/stories260K_golden.json"));
  for (const auto& c : golden["cases"]) {
    std::vector<int> want = c["prompt_ids"].get<std::vector<int>>();
    EXPECT_EQ(tok.Encode(c["prompt"].get<std::string>(), true, false), want) << c["prompt"];
  }
  EXPECT_EQ(tok.Encode("", true, false), std::vector<int>{1});
  EXPECT_EQ(tok.Encode("", false, true), std::vector<int>{2});
}

std::string DecodeAll(const Llama2cTokenizer& tok, const std::vector<int>& ids) {
  std::string out;
  for (size_t i = 1; i < ids.size(); ++i) out += tok.Decode(ids[i - 1], ids[i]);
  return out;
}

TEST(Llama2cTokenizer, RoundTripsTextIncludingBytesOutsideTheVocabulary) {
  Llama2cTokenizer tok = Load();
  for (std::string text : std::vector<std::string>{"Once upon a time", "Hello,  world!\n\tTabs and  spaces  ",
                           "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 emoji",
                           std::string("nul\0byte", 8), "\xFF\xFE invalid utf-8"}) {
    std::vector<int> ids = tok.Encode(text, true, false);
    ASSERT_EQ(ids[0], 1);
    for (int id : ids) ASSERT_TRUE(id >= 0 && id < 512);
    // The dummy-prefix space is dropped after BOS, as in llama2.c.
    EXPECT_EQ(DecodeAll(tok, ids), text);
  }
}

TEST(Llama2cTokenizer, LongPromptsEncodeQuickly) {
  Llama2cTokenizer tok = Load();
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "The cat sat on the mat. ";
  std::vector<int> ids = tok.Encode(text, true, false);  // O(n log n): well under a second
  EXPECT_LT(ids.size(), text.size() / 2);
  EXPECT_EQ(DecodeAll(tok, ids), text);
}

TEST(Llama2cTokenizerFile, RejectsHostileLengths) {
  std::string good = testing::ReadFile(testing::Stories260KTokenizer());
  EXPECT_THAT(ParseLlama2cTokenizer(good, 513, "t.bin").status(),
              StatusIs(StatusCode::kCorruption, HasSubstr("t.bin")));
  EXPECT_THAT(ParseLlama2cTokenizer(good, 511, "t.bin").status(),
              StatusIs(StatusCode::kCorruption, HasSubstr("unexpected bytes")));
  std::string huge = good;
  int32_t len = 1 << 30;
  std::memcpy(huge.data() + 4 + 4, &len, 4);  // first token's length
  EXPECT_THAT(ParseLlama2cTokenizer(huge, 512, "t.bin").status(),
              StatusIs(StatusCode::kCorruption, HasSubstr("token 0 has length")));
  EXPECT_FALSE(ParseLlama2cTokenizer("", 512, "t.bin").ok());
}

}  // namespace
}  // namespace llmflash

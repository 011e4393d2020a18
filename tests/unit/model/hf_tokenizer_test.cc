// Hugging Face tokenizers: known ids, SentencePiece agreement, round trips.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <nlohmann/json.hpp>

#include "model/hf_tokenizer.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

std::string TokDir(const std::string& name) { return testing::TokenizerDir(name); }

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
  // A special token written in the text is plain text unless asked for.
  EXPECT_EQ(t.Encode("<|endoftext|>", /*parse_special=*/true), std::vector<int>{50256});
  EXPECT_EQ(t.Encode("<|endoftext|>"), (std::vector<int>{27, 91, 437, 1659, 5239, 91, 29}));
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
  for (const char* name : {"gpt2", "opt", "llama2", "llama3", "qwen3", "gemma3"}) {
    HfTokenizer t = Load(TokDir(name));
    for (const std::string& s : texts) {
      std::vector<int> ids = t.Encode(s);
      for (int id : ids) ASSERT_TRUE(id >= 0 && id < t.vocab_size()) << name;
      EXPECT_EQ(t.Decode(ids), s) << name << ": " << s;
    }
  }
}

// llama.cpp's tokenizer test tables: NAME.inp holds texts separated by
// "\n__ggml_vocab_test__\n", line i of NAME.out the ids Hugging Face gives.
struct Table {
  std::vector<std::string> texts;
  std::vector<std::vector<int>> ids;
};

Table ReadTable(const std::string& name) {
  const std::string base = testing::SharedDir() + "/tokenizers/tests/" + name;
  Table t;
  std::string inp = testing::ReadFile(base + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < inp.size();) {
    size_t end = inp.find(sep, pos);
    if (end == std::string::npos) end = inp.size();
    t.texts.push_back(inp.substr(pos, end - pos));
    pos = end + sep.size();
  }
  std::string out = testing::ReadFile(base + ".out");
  for (size_t pos = 0; pos < out.size();) {
    size_t end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    std::vector<int> ids;
    std::stringstream ss(out.substr(pos, end - pos));
    for (int id; ss >> id;) ids.push_back(id);
    t.ids.push_back(ids);
    pos = end + 1;
  }
  return t;
}

struct TableCase {
  const char* table;
  const char* tokenizer;
};

class TokenizerTable : public ::testing::TestWithParam<TableCase> {};

TEST_P(TokenizerTable, IdsAndRoundTripsEqualHuggingFace) {
  Table table = ReadTable(GetParam().table);
  ASSERT_EQ(table.texts.size(), table.ids.size());
  ASSERT_GE(table.texts.size(), 45u);
  HfTokenizer t = Load(TokDir(GetParam().tokenizer));
  int exact = 0;
  for (size_t i = 0; i < table.texts.size(); ++i) {
    std::vector<int> ids = t.Encode(table.texts[i]);
    EXPECT_EQ(ids, table.ids[i]) << "text " << i << ": \"" << table.texts[i] << "\"";
    exact += ids == table.ids[i];
    EXPECT_EQ(t.Decode(table.ids[i]), table.texts[i]) << "text " << i;
  }
  RecordProperty("exact", exact);
}

INSTANTIATE_TEST_SUITE_P(Shared, TokenizerTable,
                         ::testing::Values(TableCase{"gpt-2", "gpt2"}, TableCase{"llama-spm", "llama2"},
                                           TableCase{"llama-bpe", "llama3"}, TableCase{"qwen2", "qwen3"},
                                           TableCase{"gemma-4", "gemma3"}),
                         [](const auto& info) {
                           std::string n = info.param.tokenizer;
                           return n;
                         });

// A tiny tokenizer.json: `vocab` in id order, `merges` as "a b", and the
// pipeline parts given as JSON text.
HfTokenizer Tiny(const std::vector<std::string>& vocab, const std::vector<std::string>& merges,
                 const std::string& parts) {
  nlohmann::json j = nlohmann::json::parse("{" + parts + "}");
  nlohmann::json v = nlohmann::json::object();
  for (size_t i = 0; i < vocab.size(); ++i) v[vocab[i]] = i;
  j["model"] = {{"type", "BPE"}, {"vocab", v}, {"merges", merges}};
  if (j.contains("unk")) { j["model"]["unk_token"] = j["unk"]; j.erase("unk"); }
  for (const char* k : {"byte_fallback", "fuse_unk", "ignore_merges"}) {
    if (j.contains(k)) { j["model"][k] = j[k]; j.erase(k); }
  }
  auto t = HfTokenizer::FromJson(j.dump(), "tiny.json");
  EXPECT_THAT(t.status(), IsOk());
  return std::move(*t);
}

// Every Split behavior of Hugging Face's NormalizedString::split: pieces
// never merge across a split, so the ids show where the cuts are.
TEST(HfTokenizer, SplitBehaviorsCutWhereHuggingFaceDoes) {
  const std::vector<std::string> vocab = {"a", "b", "-", "a-", "-b", "--"};
  const std::vector<std::string> merges = {"a -", "- b", "- -"};
  auto split = [&](const std::string& behavior, bool invert) {
    return Tiny(vocab, merges,
                R"("pre_tokenizer": {"type": "Split", "pattern": {"String": "-"}, "behavior": ")" + behavior +
                    R"(", "invert": )" + (invert ? "true" : "false") + "}");
  };
  using V = std::vector<int>;
  EXPECT_EQ(split("Isolated", false).Encode("a-b"), (V{0, 2, 1}));
  EXPECT_EQ(split("Removed", false).Encode("a-b"), (V{0, 1}));
  EXPECT_EQ(split("MergedWithPrevious", false).Encode("a-b"), (V{3, 1}));
  EXPECT_EQ(split("MergedWithNext", false).Encode("a-b"), (V{0, 4}));
  EXPECT_EQ(split("Contiguous", false).Encode("a--b"), (V{0, 5, 1}));
  EXPECT_EQ(split("Isolated", false).Encode("a--b"), (V{0, 2, 2, 1}));
  EXPECT_EQ(split("Removed", true).Encode("a-b"), (V{2}));  // invert: keep the matches only
  // No split at all: the merges run over the whole word.
  EXPECT_EQ(Tiny(vocab, merges, R"("x": 0)").Encode("a-b"), (V{3, 1}));
}

// Metaspace's prepend_scheme: "always" prepends "▁" to every segment, "first"
// only to the one at the start of the text (not after an added token).
TEST(HfTokenizer, MetaspacePrependSchemes) {
  const std::vector<std::string> vocab = {"\u2581", "x", "y", "\u2581x", "\u2581y", "<t>"};
  const std::vector<std::string> merges = {"\u2581 x", "\u2581 y"};
  auto with = [&](const std::string& scheme) {
    return Tiny(vocab, merges,
                R"("pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": ")" + scheme +
                    R"(", "split": true}, "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": ")" +
                    scheme + R"("}, "added_tokens": [{"id": 5, "content": "<t>", "special": false, "normalized": false}])");
  };
  using V = std::vector<int>;
  EXPECT_EQ(with("always").Encode("x y"), (V{3, 4}));
  EXPECT_EQ(with("first").Encode("x y"), (V{3, 4}));
  EXPECT_EQ(with("never").Encode("x y"), (V{1, 4}));
  EXPECT_EQ(with("always").Encode("<t>y"), (V{5, 4}));
  EXPECT_EQ(with("first").Encode("<t>y"), (V{5, 2}));
  EXPECT_EQ(with("first").Decode({3, 4}), "x y");  // the first "▁" was prepended, so it goes
}

// Added tokens: lstrip/rstrip take the spaces beside them, single_word
// matches only a whole word, normalized tokens match the normalized text.
TEST(HfTokenizer, AddedTokenFlags) {
  const std::vector<std::string> vocab = {"a", " ", "<m>", "hi", "h", "i"};
  using V = std::vector<int>;
  HfTokenizer strip = Tiny(vocab, {"h i"}, R"("added_tokens": [{"id": 2, "content": "<m>", "lstrip": true, "rstrip": true}])");
  EXPECT_EQ(strip.Encode("a <m> a"), (V{0, 2, 0}));
  HfTokenizer plain = Tiny(vocab, {"h i"}, R"("added_tokens": [{"id": 2, "content": "<m>"}])");
  EXPECT_EQ(plain.Encode("a <m> a"), (V{0, 1, 2, 1, 0}));
  HfTokenizer word = Tiny(vocab, {"h i"}, R"("added_tokens": [{"id": 3, "content": "hi", "single_word": true, "normalized": false}])");
  EXPECT_EQ(word.Encode("a hi a"), (V{0, 1, 3, 1, 0}));
  EXPECT_EQ(word.Encode("ahi"), (V{0, 3}));  // "hi" by merging, not the added token...
  EXPECT_EQ(word.Decode({0, 3}), "ahi");
  // Normalized tokens are matched after the normalizer (here: Lowercase).
  HfTokenizer norm = Tiny(vocab, {}, R"("normalizer": {"type": "Lowercase"},
      "added_tokens": [{"id": 3, "content": "HI", "normalized": true, "special": false}])");
  EXPECT_EQ(norm.Encode("Hi"), (V{3}));
  HfTokenizer raw = Tiny(vocab, {}, R"("normalizer": {"type": "Lowercase"},
      "added_tokens": [{"id": 3, "content": "HI", "normalized": false, "special": false}])");
  EXPECT_EQ(raw.Encode("Hi"), (V{4, 5}));
  EXPECT_EQ(raw.Encode("HI"), (V{3}));
}

TEST(HfTokenizer, ModelOptions) {
  using V = std::vector<int>;
  const std::vector<std::string> vocab = {"<unk>", "a", "b", "c", "ab", "bc", "abc", "<0x7A>"};
  const std::vector<std::string> merges = {"a b", "b c"};
  // ignore_merges: a word that is a token is that token, whatever the merges say.
  EXPECT_EQ(Tiny(vocab, merges, R"("ignore_merges": true)").Encode("abc"), (V{6}));
  EXPECT_EQ(Tiny(vocab, merges, R"("ignore_merges": false)").Encode("abc"), (V{4, 3}));
  // Unknown characters: byte fallback where the byte tokens exist, else unk
  // (fused when fuse_unk).
  EXPECT_EQ(Tiny(vocab, merges, R"("unk": "<unk>", "byte_fallback": true)").Encode("azy"), (V{1, 7, 0}));
  EXPECT_EQ(Tiny(vocab, merges, R"("unk": "<unk>")").Encode("axya"), (V{1, 0, 0, 1}));
  EXPECT_EQ(Tiny(vocab, merges, R"("unk": "<unk>", "fuse_unk": true)").Encode("axya"), (V{1, 0, 1}));
}

// NFC (Qwen's normalizer, through utf8proc): a decomposed "é" is the
// precomposed one; Llama 3 has no normalizer and sees two characters.
TEST(HfTokenizer, NfcNormalizerComposes) {
  HfTokenizer qwen = Load(TokDir("qwen3"));
  EXPECT_EQ(qwen.Encode("caf\x65\xCC\x81"), qwen.Encode("caf\xC3\xA9"));
  HfTokenizer llama3 = Load(TokDir("llama3"));
  EXPECT_NE(llama3.Encode("caf\x65\xCC\x81"), llama3.Encode("caf\xC3\xA9"));
}

// What the post-processor puts around a text.
TEST(HfTokenizer, PostProcessorTokens) {
  EXPECT_EQ(Load(TokDir("llama2")).prefix_ids(), std::vector<int>{1});
  EXPECT_EQ(Load(TokDir("gemma3")).prefix_ids(), std::vector<int>{2});
  EXPECT_TRUE(Load(TokDir("qwen3")).prefix_ids().empty());
  HfTokenizer opt = Load(TokDir("opt") + "/tokenizer.json");  // RobertaProcessing
  EXPECT_EQ(opt.prefix_ids(), std::vector<int>{0});
  EXPECT_EQ(opt.suffix_ids(), std::vector<int>{2});
}

// Streaming: DecodeNext gives, token by token, exactly what Decode gives
// for the whole sequence (SentencePiece's leading space only at the start).
TEST(HfTokenizer, DecodeNextConcatenatesToDecode) {
  for (const char* name : {"gpt2", "llama2", "llama3", "qwen3", "gemma3"}) {
    HfTokenizer t = Load(TokDir(name));
    std::vector<int> ids = t.Encode("Hello world, \xE4\xB8\xAD\xE6\x96\x87 and  two spaces\n\nend");
    std::string streamed;
    int prev = -1;
    for (int id : ids) { streamed += t.DecodeNext(prev, id); prev = id; }
    EXPECT_EQ(streamed, t.Decode(ids)) << name;
  }
}

// A component that is not implemented is an Unsupported naming it.
TEST(HfTokenizer, UnimplementedComponentsAreNamed) {
  auto status = [](const std::string& parts) {
    nlohmann::json j = nlohmann::json::parse("{" + parts + "}");
    if (!j.contains("model")) j["model"] = {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", nlohmann::json::array()}};
    return HfTokenizer::FromJson(j.dump(), "t.json").status();
  };
  EXPECT_THAT(status(R"("normalizer": {"type": "Precompiled", "precompiled_charsmap": ""})"),
              StatusIs(StatusCode::kUnsupported, HasSubstr("t.json: normalizer Precompiled")));
  EXPECT_THAT(status(R"("pre_tokenizer": {"type": "BertPreTokenizer"})"),
              StatusIs(StatusCode::kUnsupported, HasSubstr("pre_tokenizer BertPreTokenizer")));
  EXPECT_THAT(status(R"("decoder": {"type": "WordPiece"})"), StatusIs(StatusCode::kUnsupported, HasSubstr("decoder WordPiece")));
  EXPECT_THAT(status(R"("post_processor": {"type": "Frobnicate"})"),
              StatusIs(StatusCode::kUnsupported, HasSubstr("post_processor Frobnicate")));
  EXPECT_THAT(status(R"("model": {"type": "WordPiece", "vocab": {}})"), StatusIs(StatusCode::kUnsupported, HasSubstr("WordPiece")));
  EXPECT_THAT(status(R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "continuing_subword_prefix": "##"})"),
              StatusIs(StatusCode::kUnsupported, HasSubstr("continuing_subword_prefix")));
  EXPECT_THAT(status(R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("t.json: pre_tokenizer Split: regex")));
  EXPECT_THAT(status(R"("pre_tokenizer": {"type": "Split", "pattern": {"String": "x"}, "behavior": "Sideways"})"),
              StatusIs(StatusCode::kUnsupported, HasSubstr("split behavior \"Sideways\"")));
  EXPECT_THAT(status(R"("pre_tokenizer": {"type": "Metaspace", "prepend_scheme": "sometimes"})"),
              StatusIs(StatusCode::kUnsupported, HasSubstr("prepend_scheme")));
  EXPECT_THAT(status(R"("normalizer": {"type": "Sequence"})"), StatusIs(StatusCode::kCorruption, HasSubstr("normalizer Sequence")));
  EXPECT_THAT(status(R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a a"]})"),
              StatusIs(StatusCode::kCorruption, HasSubstr("merge \"a a\" names a token missing")));
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

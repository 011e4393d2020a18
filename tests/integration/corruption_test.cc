// A corpus of corrupted and hostile model directories, made from a good one:
// each must give a clean error from the API and from the CLI (exit 1, one
// line naming the file), never a crash, a hang or an unbounded allocation.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "llmflash/llmflash.h"
#include "model/hf_tokenizer.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct Case {
  std::string name;
  std::function<void(const std::string& dir)> corrupt;
  std::string file;  // the error must name this file
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

void Replace(const std::string& path, const std::string& from, const std::string& to) {
  std::string s = testing::ReadFile(path);
  size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  s.replace(at, from.size(), to);
  testing::WriteFile(path, s);
}

std::function<void(const std::string&)> Manifest(std::string from, std::string to) {
  return [=](const std::string& d) { Replace(d + "/manifest.json", from, to); };
}

std::function<void(const std::string&)> Truncate(std::string file, double keep) {
  return [=](const std::string& d) {
    std::string s = testing::ReadFile(d + "/" + file);
    testing::WriteFile(d + "/" + file, s.substr(0, static_cast<size_t>(s.size() * keep)));
  };
}

std::function<void(const std::string&)> Remove(std::string file) {
  return [=](const std::string& d) { fs::remove(d + "/" + file); };
}

// Rewrites tokenizer.bin and fixes its size in the manifest, so that only the
// tokenizer parser can catch the problem.
std::function<void(const std::string&)> HostileTokenizer(int32_t first_len) {
  return [=](const std::string& d) {
    std::string s = testing::ReadFile(d + "/tokenizer.bin");
    std::memcpy(s.data() + 8, &first_len, 4);
    testing::WriteFile(d + "/tokenizer.bin", s);
  };
}

std::vector<Case> Corpus() {
  const std::string m = "manifest.json";
  return {
      {"truncated manifest", Truncate(m, 0.5), m},
      {"empty manifest", Truncate(m, 0), m},
      {"manifest is a list", [](const std::string& d) { testing::WriteFile(d + "/manifest.json", "[1,2,3]"); }, m},
      {"manifest is binary", [](const std::string& d) { testing::WriteFile(d + "/manifest.json", std::string("\0\xff\x01", 3)); }, m},
      {"future format version", Manifest("\"format_version\": 1", "\"format_version\": 2"), m},
      {"wrong format tag", Manifest("\"format\": \"llmflash\"", "\"format\": \"gguf\""), m},
      {"unknown dtype", Manifest("\"dtype\": \"f32\"", "\"dtype\": \"q4_0\""), m},
      {"dtype not matching data", Manifest("\"dtype\": \"f32\"", "\"dtype\": \"f16\""), m},
      {"huge dim", Manifest("\"dim\": 64", "\"dim\": 1048576"), m},
      {"negative dim", Manifest("\"dim\": 64", "\"dim\": -64"), m},
      {"zero layers", Manifest("\"n_layers\": 5", "\"n_layers\": 0"), m},
      {"more layers than offsets", Manifest("\"n_layers\": 5", "\"n_layers\": 4096"), m},
      {"vocab not matching", Manifest("\"vocab_size\": 512", "\"vocab_size\": 513"), "tokenizer.bin"},
      {"absurd context", Manifest("\"max_seq_len\": 512", "\"max_seq_len\": 2147483647"), m},
      {"huge record stride", Manifest("\"record_stride\": 768", "\"record_stride\": 1099511627776"), m},
      {"wrong record bytes", Manifest("\"record_bytes\": 768", "\"record_bytes\": 512"), m},
      {"unaligned layer offset", Manifest("135168", "135169"), m},
      {"layer past the end", Manifest("540672", "1125899906842624"), "ffn.bundle"},
      {"tensor offset overflows", Manifest("\"offset\": 0,", "\"offset\": 18446744073709551000,"), "resident.bin"},
      {"tensor shape overflows", Manifest("\"shape\": [\n     512,\n     64\n    ]", "\"shape\": [4294967296, 4294967296, 4294967296]"), m},
      {"missing tensor", Manifest("layers.0.wq", "layers.0.wx"), "resident.bin"},
      {"wrong file size", Manifest("\"size\": 675840", "\"size\": 679936"), "ffn.bundle"},
      {"path traversal", Manifest("\"name\": \"ffn.bundle\"", "\"name\": \"../ffn.bundle\""), m},
      {"unlisted tokenizer", Manifest("\"file\": \"tokenizer.bin\"", "\"file\": \"tok.bin\""), m},
      {"BOS outside vocab", Manifest("\"bos_id\": 1", "\"bos_id\": 99999"), m},
      {"heads not divisible", Manifest("\"n_kv_heads\": 4", "\"n_kv_heads\": 3"), m},
      {"unknown rope style", Manifest("\"rope_style\": \"interleaved\"", "\"rope_style\": \"spiral\""), m},
      {"unknown activation", Manifest("\"activation\": \"silu\"", "\"activation\": \"gelu_new\""), m},
      {"unknown architecture", Manifest("\"architecture\": \"llama\"", "\"architecture\": \"gpt5\""), m},
      {"negative norm eps", Manifest("\"norm_eps\": 9.999999747378752e-06", "\"norm_eps\": -1.0"), m},
      {"string where number", Manifest("\"n_heads\": 8", "\"n_heads\": \"eight\""), m},
      {"missing bundle file", Remove("ffn.bundle"), "ffn.bundle"},
      {"missing resident file", Remove("resident.bin"), "resident.bin"},
      {"missing tokenizer", Remove("tokenizer.bin"), "tokenizer.bin"},
      {"missing manifest", Remove(m), m},
      {"truncated bundle", Truncate("ffn.bundle", 0.7), "ffn.bundle"},
      {"truncated resident file", Truncate("resident.bin", 0.5), "resident.bin"},
      {"huge token length", HostileTokenizer(1 << 30), "tokenizer.bin"},
      {"negative token length", HostileTokenizer(-5), "tokenizer.bin"},
      {"unknown rope scaling", Manifest("\"rope_scaling\": \"none\"", "\"rope_scaling\": \"yarn\""), m},
      {"rope factor below one", Manifest("\"rope_factor\": 1.0", "\"rope_factor\": -3.0"), m},
      {"stop id outside vocab", Manifest("\"stop_ids\": [\n   2\n  ]", "\"stop_ids\": [2, 99999]"), m},
      {"stop ids not a list", Manifest("\"stop_ids\": [\n   2\n  ]", "\"stop_ids\": 2"), m},
      {"BOS below none", Manifest("\"bos_id\": 1", "\"bos_id\": -2"), m},
      {"q/k norms without tensors", Manifest("\"qk_norm\": false", "\"qk_norm\": true"), "resident.bin"},
      {"biases without tensors", Manifest("\"qkv_bias\": false", "\"qkv_bias\": true"), "resident.bin"},
      {"bundle is a directory", [](const std::string& d) { fs::remove(d + "/ffn.bundle"); fs::create_directory(d + "/ffn.bundle"); }, "ffn.bundle"},
  };
}

class Corruption : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    dir_ = tmp_.File("model");
    fs::copy(testing::Stories260KModel(), dir_);
    GetParam().corrupt(dir_);
  }
  testing::TempDir tmp_;
  std::string dir_;
};

TEST_P(Corruption, ApiGivesAClearError) {
  auto model = Model::Open(dir_, {});
  ASSERT_FALSE(model.ok()) << GetParam().name;
  EXPECT_THAT(model.status().message(), HasSubstr(GetParam().file)) << model.status().ToString();
}

TEST_P(Corruption, CliExitsWithOneLine) {
  std::string err = tmp_.File("stderr");
  std::string cmd = std::string(LLMFLASH_CLI_PATH) + " generate --model " + dir_ +
                    " --prompt hi --max-tokens 2 >/dev/null 2>" + err;
  int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << "crashed: " << GetParam().name;
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::string text = testing::ReadFile(err);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_EQ(text.rfind("llmflash: ", 0), 0u) << text;
  EXPECT_THAT(text, HasSubstr(GetParam().file));
}

INSTANTIATE_TEST_SUITE_P(Corpus, Corruption, ::testing::ValuesIn(Corpus()),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& c : n) if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// A long (but valid) context must not make Open allocate its whole KV cache
// by default: the default context is capped.
// Hostile tokenizer.json files: one clear error naming the file, from the
// API and from the CLI, never a crash or a hang.
struct TokenizerCase {
  std::string name;
  std::string json;
};
void PrintTo(const TokenizerCase& c, std::ostream* os) { *os << c.name; }

// Built front and back in one pass: every test process of this binary makes
// the corpus, and re-concatenating 10,000 levels copied 2 GB each time.
std::string Nested(const std::string& kind, const std::string& list, int depth) {
  const std::string open = "{\"type\": \"Sequence\", \"" + list + "\": [";
  std::string s;
  s.reserve(depth * (open.size() + 2) + 128);
  s = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"" + kind + "\": ";
  for (int i = 0; i < depth; ++i) s += open;
  s += "null";
  for (int i = 0; i < depth; ++i) s += "]}";
  return s + "}";
}

std::vector<TokenizerCase> TokenizerCorpus() {
  const std::string model = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  auto with = [&](const std::string& part) { return "{" + model + ", " + part + "}"; };
  return {
      {"not JSON", "{\"model\": "},
      {"binary", std::string("\x00\xff\xfe{", 4)},
      {"no model", "{\"normalizer\": null}"},
      {"model is a list", "{\"model\": [1, 2]}"},
      {"Unigram model", R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})"},
      {"negative vocab id", R"({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})"},
      {"huge vocab id", R"({"model": {"type": "BPE", "vocab": {"a": 4294967296}, "merges": []}})"},
      {"merge of unknown tokens", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["x y"]}})"},
      {"merge without space", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}})"},
      {"merge is a number", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}})"},
      {"added token id huge", with(R"("added_tokens": [{"id": 99999999999, "content": "<x>"}])")},
      {"added token without content", with(R"("added_tokens": [{"id": 3}])")},
      {"regex does not compile", with(R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(?<"}, "behavior": "Isolated"})")},
      {"pattern neither string nor regex", with(R"("pre_tokenizer": {"type": "Split", "pattern": {"Glob": "*"}, "behavior": "Isolated"})")},
      {"unknown split behavior", with(R"("pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Shuffled"})")},
      {"unknown normalizer", with(R"("normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"})")},
      {"unknown pre-tokenizer", with(R"("pre_tokenizer": {"type": "BertPreTokenizer"})")},
      {"unknown decoder", with(R"("decoder": {"type": "CTC"})")},
      {"unknown post-processor", with(R"("post_processor": {"type": "Frobnicate"})")},
      {"template id out of range", with(R"("post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}], "special_tokens": {"<s>": {"ids": [123456]}}})")},
      {"template names a missing token", with(R"("post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}})")},
      {"sequence without its list", with(R"("normalizer": {"type": "Sequence"})")},
      {"replace without content", with(R"("normalizer": {"type": "Replace", "pattern": {"String": "a"}})")},
      {"empty Metaspace replacement", with(R"("pre_tokenizer": {"type": "Metaspace", "replacement": ""})")},
      {"negative Strip", with(R"("decoder": {"type": "Strip", "content": " ", "start": -1, "stop": 0})")},
      {"normalizers nested 10000 deep", Nested("normalizer", "normalizers", 10000)},
      {"decoders nested 10000 deep", Nested("decoder", "decoders", 10000)},
      {"type is a number", with(R"("pre_tokenizer": {"type": 5})")},
  };
}

class TokenizerCorruption : public ::testing::TestWithParam<TokenizerCase> {};

TEST_P(TokenizerCorruption, ApiAndCliGiveOneClearError) {
  testing::TempDir tmp;
  const std::string file = tmp.File("tokenizer.json");
  testing::WriteFile(file, GetParam().json);
  auto tok = HfTokenizer::Load(file);
  ASSERT_FALSE(tok.ok()) << GetParam().name;
  EXPECT_THAT(tok.status().message(), HasSubstr(file)) << tok.status().ToString();
  std::string err = tmp.File("stderr");
  std::string cmd = std::string(LLMFLASH_CLI_PATH) + " tokenize --tokenizer " + file + " --text hi >/dev/null 2>" + err;
  int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << "crashed: " << GetParam().name;
  EXPECT_EQ(WEXITSTATUS(status), 1);
  std::string text = testing::ReadFile(err);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_THAT(text, HasSubstr(file));
}

INSTANTIATE_TEST_SUITE_P(Corpus, TokenizerCorruption, ::testing::ValuesIn(TokenizerCorpus()),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& c : n) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(CorruptionCorpus, LongContextIsCappedByDefault) {
  testing::TempDir tmp;
  std::string dir = tmp.File("model");
  fs::copy(testing::Stories260KModel(), dir);
  Replace(dir + "/manifest.json", "\"max_seq_len\": 512", "\"max_seq_len\": 4194304");
  auto model = Model::Open(dir, {});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->info().max_context, 4096);
  EXPECT_LT((*model)->info().session_bytes, 64u << 20);
}

TEST(CorruptionCorpus, HasAtLeastThirtyCases) { EXPECT_GE(Corpus().size(), 30u); }

TEST(CorruptionCorpus, VerifyCatchesFlippedBitsThatOpenCannotSee) {
  testing::TempDir tmp;
  std::string dir = tmp.File("model");
  fs::copy(testing::Stories260KModel(), dir);
  for (const char* file : {"ffn.bundle", "resident.bin", "tokenizer.bin"}) {
    std::string path = dir + "/" + file, orig = testing::ReadFile(path), s = orig;
    s[s.size() / 3] ^= 0x01;
    testing::WriteFile(path, s);
    Status st = VerifyModel(dir);
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << file;
    EXPECT_THAT(st.message(), HasSubstr(file));
    testing::WriteFile(path, orig);
  }
  EXPECT_TRUE(VerifyModel(dir).ok());
}

}  // namespace
}  // namespace llmflash

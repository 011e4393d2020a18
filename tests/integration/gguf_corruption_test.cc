// Hostile GGUF files, made from a good one written by the test GGUF writer:
// each gives one clean error naming the file from the API (GgufFile::Open,
// Convert) and from the CLI (convert, inspect), never a crash, a hang or an
// unbounded allocation; a failed convert leaves no model behind.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "llmflash/llmflash.h"
#include "testing/gguf_writer.h"
#include "testing/hf_fixture.h"
#include "testing/test_util.h"
#include "util/file.h"

namespace llmflash {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;

struct GgufCase {
  std::string name;
  std::function<std::string(std::string)> make;  // good bytes -> hostile bytes
};
void PrintTo(const GgufCase& c, std::ostream* os) { *os << c.name; }

template <typename T>
void PutAt(std::string* s, size_t at, T v) {
  if (at > s->size() || s->size() - at < sizeof v) {
    ADD_FAILURE() << "patch at " << at << " is outside the file";
    return;
  }
  s->replace(at, sizeof v, reinterpret_cast<const char*>(&v), sizeof v);
}

// Offset of what follows a length-prefixed string `text` in the file.
size_t After(const std::string& s, const std::string& text) {
  std::string needle(8, '\0');
  uint64_t n = text.size();
  std::memcpy(needle.data(), &n, 8);
  needle += text;
  size_t at = s.find(needle);
  EXPECT_NE(at, std::string::npos) << text;
  return at == std::string::npos ? 0 : at + needle.size();
}

// A tensor info's fields: after the name come n_dims (u32), the dims (u64
// each), the type (u32) and the offset (u64).
size_t TensorField(const std::string& s, const std::string& name, const std::string& field) {
  size_t at = After(s, name);
  uint32_t n_dims;
  std::memcpy(&n_dims, s.data() + at, 4);
  if (field == "n_dims") return at;
  if (field == "dim0") return at + 4;
  if (field == "dim1") return at + 12;
  if (field == "type") return at + 4 + 8 * n_dims;
  return at + 8 + 8 * n_dims;  // offset
}

uint64_t TensorOffset(const std::string& s, const std::string& name) {
  uint64_t v;
  std::memcpy(&v, s.data() + TensorField(s, name, "offset"), 8);
  return v;
}

// A small file of its own: header + the given key/values, no tensors.
std::string Small(const std::function<void(testing::GgufBuilder*)>& add) {
  testing::GgufBuilder b;
  b.Str("general.architecture", "llama");
  add(&b);
  return b.Bytes();
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  EXPECT_EQ(from.size(), to.size());
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

std::string Nested(int depth) {
  std::string v;  // innermost: an empty array of uint8
  v.append("\0\0\0\0", 4);
  v.append(8, '\0');
  for (int i = 1; i < depth; ++i) {
    std::string outer;
    uint32_t t = 9;
    uint64_t n = 1;
    outer.append(reinterpret_cast<const char*>(&t), 4);
    outer.append(reinterpret_cast<const char*>(&n), 8);
    v = outer + v;
  }
  return v;
}

std::vector<GgufCase> Corpus() {
  const std::string q = "blk.0.attn_q.weight", k = "blk.0.attn_k.weight";
  return {
      {"truncated header", [](std::string s) { return s.substr(0, 10); }},
      {"version 1", [](std::string s) { PutAt<uint32_t>(&s, 4, 1); return s; }},
      {"version 7", [](std::string s) { PutAt<uint32_t>(&s, 4, 7); return s; }},
      {"big-endian", [](std::string s) { PutAt<uint32_t>(&s, 4, 0x03000000); return s; }},
      {"huge key/value count", [](std::string s) { PutAt<uint64_t>(&s, 16, 1ull << 62); return s; }},
      {"huge tensor count", [](std::string s) { PutAt<uint64_t>(&s, 8, 1ull << 61); return s; }},
      {"more tensors than written", [](std::string s) { PutAt<uint64_t>(&s, 8, 200); return s; }},
      {"truncated in the metadata", [](std::string s) { return s.substr(0, After(s, "tokenizer.ggml.tokens") + 20); }},
      {"truncated data", [](std::string s) { return s.substr(0, s.size() - 100); }},
      {"huge key length", [](std::string s) { PutAt<uint64_t>(&s, 24, 1ull << 63); return s; }},
      {"huge string length",
       [](std::string s) { PutAt<uint64_t>(&s, After(s, "general.architecture") + 4, 1ull << 40); return s; }},
      {"unknown value type", [](std::string s) { PutAt<uint32_t>(&s, After(s, "general.name"), 13); return s; }},
      {"huge array count",
       [](std::string s) { PutAt<uint64_t>(&s, After(s, "tokenizer.ggml.tokens") + 8, 1ull << 60); return s; }},
      {"unknown array element type",
       [](std::string s) { PutAt<uint32_t>(&s, After(s, "tokenizer.ggml.tokens") + 4, 99); return s; }},
      {"duplicate key", [](std::string) { return Small([](auto* b) { b->Str("general.name", "a"); b->Str("general.name", "b"); }); }},
      {"arrays nested 10 deep", [](std::string) { return Small([](auto* b) { b->RawKv("x", 9, Nested(10)); }); }},
      {"bool of 7", [](std::string) { return Small([](auto* b) { b->RawKv("x", 7, "\x07"); }); }},
      {"uint64 above int64", [](std::string) {
         return Small([](auto* b) { b->RawKv("x", 10, std::string(8, '\xff')); });
       }},
      {"alignment 3", [](std::string) { return Small([](auto* b) { b->U32("general.alignment", 3); }); }},
      {"alignment 0", [](std::string) { return Small([](auto* b) { b->U32("general.alignment", 0); }); }},
      {"alignment is a string", [](std::string) { return Small([](auto* b) { b->Str("general.alignment", "32"); }); }},
      {"empty key", [](std::string) { return Small([](auto* b) { b->Str("", "x"); }); }},
      {"five dimensions", [=](std::string s) { PutAt<uint32_t>(&s, TensorField(s, q, "n_dims"), 5); return s; }},
      {"zero dimension", [=](std::string s) { PutAt<uint64_t>(&s, TensorField(s, q, "dim0"), 0); return s; }},
      {"shape overflows", [=](std::string s) {
         PutAt<uint64_t>(&s, TensorField(s, q, "dim0"), 1ull << 40);
         PutAt<uint64_t>(&s, TensorField(s, q, "dim1"), 1ull << 40);
         return s;
       }},
      {"offset past the end", [=](std::string s) { PutAt<uint64_t>(&s, TensorField(s, q, "offset"), 1ull << 50); return s; }},
      {"misaligned offset", [=](std::string s) {
         PutAt<uint64_t>(&s, TensorField(s, q, "offset"), TensorOffset(s, q) + 1);
         return s;
       }},
      {"overlapping tensors", [=](std::string s) {
         PutAt<uint64_t>(&s, TensorField(s, k, "offset"), TensorOffset(s, q));
         return s;
       }},
      {"unknown tensor type", [=](std::string s) { PutAt<uint32_t>(&s, TensorField(s, q, "type"), 99); return s; }},
      {"rows not whole blocks", [=](std::string s) { PutAt<uint32_t>(&s, TensorField(s, q, "type"), 2); return s; }},
      {"type without an importer", [=](std::string s) {  // I8, same size as... an unused type
         PutAt<uint32_t>(&s, TensorField(s, "blk.0.attn_norm.weight", "type"), 26);  // I32: 4 bytes like F32
         return s;
       }},
      {"duplicate tensor name", [](std::string s) { return Replace(s, "blk.0.attn_k.weight", "blk.0.attn_q.weight"); }},
      {"missing tensor", [](std::string s) { return Replace(s, "blk.1.ffn_down.weight", "blk.1.ffn_dowX.weight"); }},
      {"shape disagrees with the metadata", [](std::string s) {
         PutAt<uint32_t>(&s, After(s, "qwen2.embedding_length") + 4, 32);
         return s;
       }},
      {"zero heads", [](std::string s) { PutAt<uint32_t>(&s, After(s, "qwen2.attention.head_count") + 4, 0); return s; }},
      {"unknown architecture", [](std::string s) {
         s.replace(After(s, "general.architecture") + 12, 5, "mamba");  // type (4), length (8), "qwen2"
         return s;
       }},
      {"eos id outside the vocabulary", [](std::string s) {
         PutAt<uint32_t>(&s, After(s, "tokenizer.ggml.eos_token_id") + 4, 99999);
         return s;
       }},
      {"token not valid UTF-8", [](std::string s) {
         s[After(s, "tokenizer.ggml.tokens") + 12 + 8] = '\xff';  // type, count, then token 0's length and text
         return s;
       }},
      {"unknown tokenizer model", [](std::string s) { return Replace(s, "gpt2", "bert"); }},
      {"unknown pre-tokenizer", [](std::string s) {
         s.replace(After(s, "tokenizer.ggml.pre") + 12, 5, "qwenX");
         return s;
       }},
  };
}

// The good file: the Qwen2 fixture (F32) with a 32-token vocabulary.
const std::string& Good() {
  static const std::string* good = [] {
    testing::TempDir tmp;
    nlohmann::json c = nlohmann::json::parse(testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/families_reference.json"))
                           ["models"]["qwen2"]["config"];
    EXPECT_THAT(testing::WriteHfFixture(tmp.File("hf"), c, 5), IsOk());
    std::vector<std::string> vocab;
    for (int i = 0; i < 32; ++i) vocab.push_back(std::string(1, static_cast<char>('A' + i)));
    EXPECT_THAT(testing::WriteGgufFromHf(tmp.File("hf"), tmp.File("m.gguf"), testing::kGgmlF32, vocab), IsOk());
    return new std::string(testing::ReadFile(tmp.File("m.gguf")));
  }();
  return *good;
}

TEST(GgufCorruption, TheGoodFileConverts) {
  testing::TempDir tmp;
  testing::WriteFile(tmp.File("good.gguf"), Good());
  ConvertOptions o;
  o.input = tmp.File("good.gguf");
  o.output = tmp.File("m");
  o.dtype = "auto";
  EXPECT_THAT(Convert(o), IsOk());
}

TEST(GgufCorruption, HasAtLeastTwentyCases) { EXPECT_GE(Corpus().size(), 20u); }

class GgufCorruption : public ::testing::TestWithParam<GgufCase> {};

TEST_P(GgufCorruption, ApiAndCliGiveOneClearError) {
  testing::TempDir tmp;
  const std::string file = tmp.File("hostile.gguf");
  testing::WriteFile(file, GetParam().make(Good()));
  // API: either the reader refuses it, or the importer does.
  ConvertOptions o;
  o.input = file;
  o.output = tmp.File("m");
  o.dtype = "auto";
  Status st = Convert(o);
  ASSERT_FALSE(st.ok()) << GetParam().name;
  EXPECT_THAT(st.message(), HasSubstr(file)) << st.ToString();
  EXPECT_FALSE(FileSize(tmp.File("m/manifest.json")).ok()) << "a failed convert left a model";
  // CLI: exit 1, one line naming the file, for convert and inspect.
  for (const std::string cmd : {"convert --input " + file + " --output " + tmp.File("cli"), "inspect --model " + file}) {
    const std::string err = tmp.File("stderr");
    int status = std::system((std::string(LLMFLASH_CLI_PATH) + " " + cmd + " >/dev/null 2>" + err).c_str());
    ASSERT_TRUE(WIFEXITED(status)) << "crashed: " << GetParam().name << ": " << cmd;
    const std::string text = testing::ReadFile(err);
    // inspect reads the header only: a file whose damage is in the tensors'
    // data or their meaning may inspect cleanly; convert never succeeds.
    if (cmd.starts_with("inspect") && WEXITSTATUS(status) == 0) continue;
    EXPECT_EQ(WEXITSTATUS(status), 1) << cmd;
    const std::string last = text.substr(text.rfind('\n', text.size() - 2) + 1);
    EXPECT_THAT(last, HasSubstr("llmflash: ")) << text;
    EXPECT_THAT(last, HasSubstr(file)) << text;
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, GgufCorruption, ::testing::ValuesIn(Corpus()), [](const auto& info) {
  std::string n = info.param.name;
  for (char& c : n) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});

}  // namespace
}  // namespace llmflash

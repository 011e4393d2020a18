// GGUF import: the real files llama.cpp wrote (../shared/gguf) and fixtures
// this test writes with its own GGUF writer (testing/gguf_writer.h) from the
// Hugging Face fixtures, converted both ways.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <sstream>

#include "format/gguf.h"
#include "format/gguf_tokenizer.h"
#include "format/manifest.h"
#include "llmflash/llmflash.h"
#include "model/hf_tokenizer.h"
#include "testing/gguf_writer.h"
#include "testing/hf_fixture.h"
#include "testing/test_util.h"
#include "util/file.h"

namespace llmflash {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;
using testing::RelativeRms;
using testing::StatusIs;

std::string GgufDir() { return testing::SharedDir() + "/gguf"; }

const nlohmann::json& Families() {
  static const nlohmann::json* ref = new nlohmann::json(nlohmann::json::parse(
      testing::ReadFile(LLMFLASH_TEST_SOURCE_DIR "/testdata/families_reference.json")));
  return *ref;
}

// Every position's logits of each sequence, concatenated.
std::vector<float> AllLogits(const std::string& dir, const std::vector<std::vector<TokenId>>& seqs) {
  auto model = Model::Open(dir, {.kv_cache = KvCacheType::kF32});
  EXPECT_THAT(model.status(), IsOk());
  if (!model.ok()) return {};
  std::vector<float> all;
  for (const auto& s : seqs) {
    auto session = (*model)->NewSession({});
    auto logits = (*session)->Logits(s);
    EXPECT_THAT(logits.status(), IsOk());
    if (logits.ok()) all.insert(all.end(), logits->begin(), logits->end());
  }
  return all;
}

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = a.size() == b.size() ? 0 : 1e9;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

Status ConvertTo(const std::string& input, const std::string& output, const std::string& dtype) {
  ConvertOptions o;
  o.input = input;
  o.output = output;
  o.dtype = dtype;
  return Convert(o);
}

std::vector<std::vector<TokenId>> FamilySequences() {
  std::vector<std::vector<TokenId>> seqs;
  for (const auto& s : Families()["sequences"]) seqs.push_back(s.get<std::vector<TokenId>>());
  return seqs;
}

// The same weights through GGUF (F32 or F16 blocks) and through
// safetensors give the same logits: F32 exactly, F16 as the same f16 values.
class SameAsSafetensors : public ::testing::TestWithParam<std::tuple<std::string, uint32_t>> {};

TEST_P(SameAsSafetensors, Logits) {
  const auto& [name, type] = GetParam();
  testing::TempDir tmp;
  const nlohmann::json& c = Families()["models"][name]["config"];
  ASSERT_THAT(testing::WriteHfFixture(tmp.File("hf"), c, Families()["seed"].get<uint64_t>()), IsOk());
  ASSERT_THAT(testing::WriteGgufFromHf(tmp.File("hf"), tmp.File("m.gguf"), type), IsOk());
  const std::string dtype = type == testing::kGgmlF32 ? "f32" : "f16";
  ASSERT_THAT(ConvertTo(tmp.File("hf"), tmp.File("from_hf"), dtype), IsOk());
  ASSERT_THAT(ConvertTo(tmp.File("m.gguf"), tmp.File("from_gguf"), "auto"), IsOk());
  const auto seqs = FamilySequences();
  const std::vector<float> hf = AllLogits(tmp.File("from_hf"), seqs);
  const std::vector<float> gguf = AllLogits(tmp.File("from_gguf"), seqs);
  ASSERT_FALSE(hf.empty());
  EXPECT_LE(MaxDiff(gguf, hf), 1e-6) << name;
  // And the safetensors route itself is the NumPy reference's (f32).
  if (type == testing::kGgmlF32) {
    double worst = 0;
    size_t at = 0;
    for (size_t s = 0; s < seqs.size(); ++s) {
      const auto& want = Families()["models"][name]["logits"][s];
      std::vector<float> part(gguf.begin() + at, gguf.begin() + at + want.size() * want[0].size());
      at += part.size();
      worst = std::max(worst, testing::MaxAbsDiff(part, want));
    }
    EXPECT_LE(worst, 1e-5) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, SameAsSafetensors,
                         ::testing::Combine(::testing::Values("llama3", "qwen2", "qwen3", "phi3"),
                                            ::testing::Values(testing::kGgmlF32, testing::kGgmlF16)),
                         [](const auto& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) == testing::kGgmlF32 ? "_F32" : "_F16");
                         });

// Q8_0 and Q4_0 files: attention blocks are carried byte for byte (the
// same bytes the safetensors route quantizes to), and the logits stay
// within the type's own quantization error of the f32 model.
class QuantizedGguf : public ::testing::TestWithParam<std::string> {};

TEST_P(QuantizedGguf, CarriesBlocksAndStaysWithinTheTypesError) {
  const std::string type = GetParam();
  const uint32_t ggml = type == "q8_0" ? testing::kGgmlQ8_0 : testing::kGgmlQ4_0;
  testing::TempDir tmp;
  nlohmann::json c = {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 96},
                      {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                      {"vocab_size", 64}, {"max_position_embeddings", 64}, {"rms_norm_eps", 1e-5},
                      {"rope_theta", 10000.0}, {"tie_word_embeddings", false}, {"hidden_act", "silu"}};
  ASSERT_THAT(testing::WriteHfFixture(tmp.File("hf"), c, 11), IsOk());
  ASSERT_THAT(testing::WriteGgufFromHf(tmp.File("hf"), tmp.File("m.gguf"), ggml), IsOk());
  ASSERT_THAT(ConvertTo(tmp.File("hf"), tmp.File("f32"), "f32"), IsOk());
  ASSERT_THAT(ConvertTo(tmp.File("hf"), tmp.File("from_hf"), type), IsOk());
  ASSERT_THAT(ConvertTo(tmp.File("m.gguf"), tmp.File("from_gguf"), type), IsOk());

  auto manifest = [&](const std::string& dir) {
    auto m = ParseManifest(testing::ReadFile(dir + "/manifest.json"), dir);
    EXPECT_THAT(m.status(), IsOk());
    return *m;
  };
  const Manifest a = manifest(tmp.File("from_hf")), b = manifest(tmp.File("from_gguf"));
  const std::string ra = testing::ReadFile(tmp.File("from_hf/resident.bin"));
  const std::string rb = testing::ReadFile(tmp.File("from_gguf/resident.bin"));
  int compared = 0;
  for (const TensorEntry& t : a.tensors) {
    if (t.name.find(".w") == std::string::npos) continue;  // wq, wk, wv, wo
    const TensorEntry* u = nullptr;
    for (const TensorEntry& x : b.tensors) if (x.name == t.name) u = &x;
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(u->dtype, t.dtype) << t.name;
    EXPECT_EQ(ra.substr(t.offset, t.bytes), rb.substr(u->offset, u->bytes)) << t.name << " was not carried";
    ++compared;
  }
  EXPECT_EQ(compared, 8);

  std::vector<std::vector<TokenId>> seqs = {{1, 5, 9, 2, 33, 60, 7}, {0, 63, 12, 12, 40}};
  const std::vector<float> exact = AllLogits(tmp.File("f32"), seqs);
  const double hf_error = RelativeRms(AllLogits(tmp.File("from_hf"), seqs), exact);
  const double gguf_error = RelativeRms(AllLogits(tmp.File("from_gguf"), seqs), exact);
  // The GGUF route loses a little more: its down projection is quantized
  // twice (GGUF's rows, then llmflash's columns).
  EXPECT_GT(hf_error, 0.0);
  EXPECT_LE(gguf_error, 2 * hf_error + 1e-3) << type << ": safetensors route " << hf_error;
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizedGguf, ::testing::Values("q8_0", "q4_0"));

// llama.cpp's own files: one set of weights as F16, Q8_0, Q4_0 and Q4_K_M.
const nlohmann::json& LlamaCppLogits() {
  static const nlohmann::json* j = new nlohmann::json(
      nlohmann::json::parse(testing::ReadFile(GgufDir() + "/tiny-llama-f16.llama-cpp-logits.json")));
  return *j;
}

std::vector<float> Flatten(const nlohmann::json& rows) {
  std::vector<float> out;
  for (const auto& seq : rows) for (const auto& row : seq) for (float x : row) out.push_back(x);
  return out;
}

class LlamaCppFile : public ::testing::TestWithParam<std::tuple<std::string, double>> {};

TEST_P(LlamaCppFile, LogitsAreLlamaCppsWithinTheTypesError) {
  const auto& [type, bound] = GetParam();
  testing::TempDir tmp;
  ASSERT_THAT(ConvertTo(GgufDir() + "/tiny-llama-" + type + ".gguf", tmp.File("m"), "auto"), IsOk());
  std::vector<std::vector<TokenId>> seqs;
  for (const auto& s : LlamaCppLogits()["sequences"]) seqs.push_back(s.get<std::vector<TokenId>>());
  const std::vector<float> got = AllLogits(tmp.File("m"), seqs), want = Flatten(LlamaCppLogits()["logits"]);
  if (type == "f16") {
    // Same f16 weights, f32 math here: llama.cpp's CPU path rounds
    // activations to f16 in places (measured 1.8e-3).
    EXPECT_LE(MaxDiff(got, want), 5e-3);
  }
  EXPECT_LE(RelativeRms(got, want), bound) << type;
}

// Bounds: 2x the relative RMS error measured against llama.cpp's f16 logits
// (q8_0 1.7%, q4_0 19%, Q4_K_M 9.5%), which is the files' own quantization
// plus llmflash's requantized down projection.
INSTANTIATE_TEST_SUITE_P(Shared, LlamaCppFile,
                         ::testing::Values(std::tuple{"f16", 0.002}, std::tuple{"q8_0", 0.035},
                                           std::tuple{"q4_0", 0.38}, std::tuple{"q4_k_m", 0.19}),
                         [](const auto& info) { return std::get<0>(info.param); });

// The vocab-only files' tokenizers give Hugging Face's ids on llama.cpp's
// tables, through the same tokenizer the tokenizer.json route runs.
class VocabFile : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabFile, TokenizesTheTableAsHuggingFace) {
  const std::string name = GetParam();
  auto f = GgufFile::Open(GgufDir() + "/ggml-vocab-" + name + ".gguf");
  ASSERT_THAT(f.status(), IsOk());
  auto g = TokenizerFromGguf(*f);
  ASSERT_THAT(g.status(), IsOk());
  auto tok = HfTokenizer::FromJson(g->tokenizer_json, f->path());
  ASSERT_THAT(tok.status(), IsOk());
  const std::string base = testing::SharedDir() + "/tokenizers/tests/" + name;
  std::string inp = testing::ReadFile(base + ".inp");
  std::stringstream want(testing::ReadFile(base + ".out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  size_t pos = 0;
  int lines = 0;
  for (std::string w; std::getline(want, w); ++lines) {
    size_t end = inp.find(sep, pos);
    const std::string text = inp.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? inp.size() : end + sep.size();
    std::vector<int> ids;
    std::stringstream ws(w);
    for (int id; ws >> id;) ids.push_back(id);
    EXPECT_EQ(tok->Encode(text), ids) << name << " line " << lines << ": \"" << text << "\"";
    if (g->model == "gpt2") EXPECT_EQ(tok->Decode(tok->Encode(text)), text) << name << " line " << lines;
  }
  EXPECT_EQ(lines, 46);
}

INSTANTIATE_TEST_SUITE_P(Shared, VocabFile, ::testing::Values("llama-spm", "gpt-2", "llama-bpe", "qwen2", "phi-3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

TEST(GgufTokenizer, BosStopsAndTemplateFromMetadata) {
  struct Want { const char* file; int bos; std::vector<int> stops; bool chat; };
  for (const Want& w : {Want{"llama-spm", 1, {2}, false}, Want{"llama-bpe", 128000, {128001, 128009}, false},
                        Want{"qwen2", -1, {151643, 151645}, true}, Want{"phi-3", 1, {32000, 32007}, true},
                        Want{"gpt-2", -1, {50256}, false}}) {
    auto f = GgufFile::Open(GgufDir() + "/ggml-vocab-" + w.file + ".gguf");
    ASSERT_THAT(f.status(), IsOk());
    auto g = TokenizerFromGguf(*f);
    ASSERT_THAT(g.status(), IsOk());
    EXPECT_EQ(g->bos_id, w.bos) << w.file;
    EXPECT_EQ(g->stop_ids, w.stops) << w.file;
    EXPECT_EQ(!g->chat_template.empty(), w.chat) << w.file;
  }
}

// A converted GGUF carries its tokenizer and chat template into the model.
TEST(GgufImport, TokenizerAndChatTemplateReachTheModel) {
  testing::TempDir tmp;
  const nlohmann::json& c = Families()["models"]["qwen2"]["config"];
  ASSERT_THAT(testing::WriteHfFixture(tmp.File("hf"), c, 3), IsOk());
  std::vector<std::string> vocab;
  for (int i = 0; i < 32; ++i) vocab.push_back(std::string(1, static_cast<char>('A' + i)));
  // Qwen2.5's template, shortened: the eos token's text comes from the vocabulary.
  const std::string chat =
      "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{{ eos_token }}{% endfor %}"
      "{% if add_generation_prompt %}<assistant>{% endif %}";
  ASSERT_THAT(testing::WriteGgufFromHf(tmp.File("hf"), tmp.File("m.gguf"), testing::kGgmlF32, vocab, chat), IsOk());
  ASSERT_THAT(ConvertTo(tmp.File("m.gguf"), tmp.File("m"), "auto"), IsOk());
  auto model = Model::Open(tmp.File("m"), {});
  ASSERT_THAT(model.status(), IsOk());
  auto ids = (*model)->Encode("ABZ", true);
  ASSERT_THAT(ids.status(), IsOk());
  EXPECT_EQ(*ids, (std::vector<TokenId>{0, 1, 25}));  // qwen2: no BOS
  EXPECT_EQ((*model)->info().stop_ids, std::vector<TokenId>{0});
  EXPECT_THAT((*model)->info().source_architecture, HasSubstr("GGUF qwen2"));
  auto text = (*model)->RenderChat({{"system", "S"}, {"user", "U"}}, true);
  ASSERT_THAT(text.status(), IsOk());
  EXPECT_EQ(*text, "<system>SA<user>UA<assistant>");  // token 0 is "A", the eos
}

TEST(GgufImport, RealMetadataIsReadWithTheRightTypes) {
  auto f = GgufFile::Open(GgufDir() + "/tiny-llama-q4_k_m.gguf");
  ASSERT_THAT(f.status(), IsOk());
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(*f->GetString("general.architecture"), "llama");
  EXPECT_EQ(*f->GetInt("llama.embedding_length"), 128);
  EXPECT_NEAR(*f->GetReal("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-9);
  EXPECT_THAT(f->GetInt("general.architecture").status(), StatusIs(StatusCode::kCorruption, ::testing::_));
  EXPECT_THAT(f->GetInt("no.such.key").status(), StatusIs(StatusCode::kNotFound, ::testing::_));
  auto tokens = f->GetArray("tokenizer.ggml.tokens", GgufValueType::kString);
  ASSERT_THAT(tokens.status(), IsOk());
  EXPECT_EQ((*tokens)->strings.size(), 32000u);
  EXPECT_EQ(f->tensors().size(), 21u);
  const GgufTensorInfo* down = f->FindTensor("blk.1.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->type, GgmlType::kQ6_K);
  EXPECT_EQ(down->ne, (std::vector<uint64_t>{768, 128}));
  EXPECT_EQ(down->bytes, 768u / 256 * 210 * 128);
}

// The CLI picks the importer by what the input holds.
TEST(GgufCli, ConvertInspectAndTokenizeSniffGguf) {
  testing::TempDir tmp;
  const std::string cli = LLMFLASH_CLI_PATH;
  const std::string file = GgufDir() + "/tiny-llama-q8_0.gguf";
  auto run = [&](const std::string& args, std::string* out) {
    std::string path = tmp.File("out.txt");
    int status = std::system((cli + " " + args + " >" + path + " 2>&1").c_str());
    *out = testing::ReadFile(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  std::string out;
  ASSERT_EQ(run("convert --input " + file + " --output " + tmp.File("m"), &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("carried"));
  EXPECT_THAT(out, HasSubstr("ffn_down (columns rebuilt): Q8_0 -> q8_0: relative RMS error"));
  ASSERT_EQ(run("inspect --model " + tmp.File("m"), &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("GGUF llama"));
  EXPECT_THAT(out, HasSubstr("q8_0"));
  ASSERT_EQ(run("inspect --model " + file, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Q8_0"));
  EXPECT_THAT(out, HasSubstr("tokenizer        llama"));
  ASSERT_EQ(run("tokenize --tokenizer " + GgufDir() + "/ggml-vocab-llama-bpe.gguf --text 'Hello world' --add-special",
                &out), 0) << out;
  EXPECT_EQ(out, "128000 9906 1917\n");
  ASSERT_EQ(run("tokenize --model " + tmp.File("m") + " --text 'Hello world'", &out), 0) << out;
  EXPECT_EQ(out, "1 15043 3186\n");  // Llama 2's ids, BOS first
}

}  // namespace
}  // namespace llmflash


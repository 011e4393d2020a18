// Writing a tiny random model through the real ModelWriter.
#include "testing/tiny_model.h"

#include <random>
#include <vector>

#include "format/model_writer.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash::testing {
namespace {

std::vector<float> Random(size_t n, float scale, std::mt19937* rng) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(*rng);
  return v;
}

// A llama2.c tokenizer.bin with `vocab` single-letter tokens (ids 0-2 are
// <unk>, <s>, </s>).
Status WriteTokenizer(const std::string& path, int vocab) {
  WritableFile f;
  RETURN_IF_ERROR(f.Open(path));
  int32_t max_len = 8;
  RETURN_IF_ERROR(f.Append(&max_len, 4));
  for (int i = 0; i < vocab; ++i) {
    std::string piece = i == 0 ? "<unk>" : i == 1 ? "\n<s>\n" : i == 2 ? "\n</s>\n"
                                                                : std::string(1, static_cast<char>('!' + i));
    float score = -static_cast<float>(i);
    int32_t len = static_cast<int32_t>(piece.size());
    RETURN_IF_ERROR(f.Append(&score, 4));
    RETURN_IF_ERROR(f.Append(&len, 4));
    RETURN_IF_ERROR(f.Append(piece.data(), piece.size()));
  }
  return f.Close();
}

}  // namespace

Status WriteTinyModel(const std::string& dir, const TinyModelSpec& s) {
  std::mt19937 rng(static_cast<uint32_t>(s.seed));
  ModelConfig c;
  c.dim = s.dim;
  c.ffn_dim = s.ffn_dim;
  c.n_layers = s.n_layers;
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads;
  c.head_dim = s.dim / s.n_heads;
  c.vocab_size = s.vocab;
  c.max_seq_len = s.max_seq_len;
  c.ffn_gated = s.gated;
  c.activation = s.activation;
  c.tied_classifier = true;
  ModelWriter w;
  RETURN_IF_ERROR(w.Begin(dir, c, StorageTypes{}));
  const uint64_t d = s.dim, q = s.dim, kv = c.head_dim * s.n_kv_heads, n = s.ffn_dim;
  const float ws = 1.0f / std::sqrt(static_cast<float>(d));
  RETURN_IF_ERROR(w.AddResidentTensor("tok_embeddings", {uint64_t(s.vocab), d}, Random(s.vocab * d, 1, &rng).data()));
  std::vector<float> ones(d, 1.0f);
  for (int l = 0; l < s.n_layers; ++l) {
    std::string p = "layers." + std::to_string(l) + ".";
    RETURN_IF_ERROR(w.AddResidentTensor(p + "attention_norm", {d}, ones.data()));
    RETURN_IF_ERROR(w.AddResidentTensor(p + "wq", {q, d}, Random(q * d, ws, &rng).data()));
    RETURN_IF_ERROR(w.AddResidentTensor(p + "wk", {kv, d}, Random(kv * d, ws, &rng).data()));
    RETURN_IF_ERROR(w.AddResidentTensor(p + "wv", {kv, d}, Random(kv * d, ws, &rng).data()));
    RETURN_IF_ERROR(w.AddResidentTensor(p + "wo", {d, q}, Random(d * q, ws, &rng).data()));
    RETURN_IF_ERROR(w.AddResidentTensor(p + "ffn_norm", {d}, ones.data()));
  }
  for (int l = 0; l < s.n_layers; ++l) {
    auto gate = Random(n * d, ws, &rng), up = Random(n * d, ws, &rng), down = Random(d * n, 0.3f * ws, &rng);
    RETURN_IF_ERROR(w.AddFfnLayer(l, s.gated ? gate.data() : nullptr, up.data(), down.data()));
  }
  RETURN_IF_ERROR(w.AddResidentTensor("norm", {d}, ones.data()));
  std::string tok = dir + ".tokenizer.bin";
  RETURN_IF_ERROR(WriteTokenizer(tok, s.vocab));
  RETURN_IF_ERROR(w.AddTokenizer(tok, "llama2c", 1, 2));
  return w.Finish();
}

Status WriteSyntheticModel(const std::string& dir, SynthOptions synth, const std::string& dtype) {
  synth.output = dir + "-hf";
  RETURN_IF_ERROR(Synthesize(synth));
  ConvertOptions c;
  c.input = synth.output;
  c.output = dir;
  c.dtype = dtype;
  return ConvertHuggingFace(c);
}

}  // namespace llmflash::testing

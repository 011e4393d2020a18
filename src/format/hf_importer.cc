// Importer for Hugging Face checkpoints: config.json + safetensors (single or
// sharded). LlamaForCausalLM and MistralForCausalLM map onto the "llama"
// architecture with Hugging Face's rotate-half RoPE; OPTForCausalLM onto
// "opt" (LayerNorm with biases, learned positions at offset 2, pre- or
// post-LayerNorm blocks, project_in/out, ReLU FFN with biases).
#include <nlohmann/json.hpp>

#include "format/model_writer.h"
#include "format/safetensors.h"
#include "llmflash/convert.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash {
namespace {

class HfConfig {
 public:
  HfConfig(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {}

  Status Int(const char* key, int64_t lo, int64_t hi, int* out, std::optional<int> def = {}) const {
    if (!j_.contains(key) || j_[key].is_null()) {
      if (def) { *out = *def; return Status::OK(); }
      return Status::Corruption(path_ + ": missing \"" + key + "\"");
    }
    const auto& v = j_[key];
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
      return Status::Corruption(path_ + ": \"" + key + "\" must be an integer in [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    *out = static_cast<int>(v.get<int64_t>());
    return Status::OK();
  }
  Status Float(const char* key, float def, float* out) const {
    if (!j_.contains(key) || j_[key].is_null()) { *out = def; return Status::OK(); }
    if (!j_[key].is_number()) return Status::Corruption(path_ + ": \"" + key + "\" must be a number");
    *out = j_[key].get<float>();
    return Status::OK();
  }
  Status Bool(const char* key, bool def, bool* out) const {
    if (!j_.contains(key) || j_[key].is_null()) { *out = def; return Status::OK(); }
    if (!j_[key].is_boolean()) return Status::Corruption(path_ + ": \"" + key + "\" must be true or false");
    *out = j_[key].get<bool>();
    return Status::OK();
  }
  std::string String(const char* key, const std::string& def) const {
    return j_.contains(key) && j_[key].is_string() ? j_[key].get<std::string>() : def;
  }
  bool IsNull(const char* key) const { return !j_.contains(key) || j_[key].is_null(); }

 private:
  const nlohmann::json& j_;
  std::string path_;
};

// Copies tokenizer.json when the checkpoint has one, with BOS/EOS from
// config.json (bos_token_id, eos_token_id) or the family's defaults.
Status AddTokenizer(const ConvertOptions& o, int bos, int eos, ModelWriter* w) {
  std::string tok = JoinPath(o.input, "tokenizer.json");
  if (!FileSize(tok).ok()) return Status::OK();
  auto text = ReadFileToString(JoinPath(o.input, "config.json"), 16 << 20);
  if (text.ok()) {
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_object() && j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) bos = j["bos_token_id"];
    if (j.is_object() && j.contains("eos_token_id") && j["eos_token_id"].is_number_integer()) eos = j["eos_token_id"];
  }
  return w->AddTokenizer(tok, "hf", bos, eos);
}

Status LlamaConfig(const HfConfig& h, const std::string& path, const std::string& arch,
                   ModelConfig* c) {
  constexpr int kMax = 1 << 20;
  c->architecture = "llama";
  RETURN_IF_ERROR(h.Int("hidden_size", 1, kMax, &c->dim));
  RETURN_IF_ERROR(h.Int("intermediate_size", 1, kMax, &c->ffn_dim));
  RETURN_IF_ERROR(h.Int("num_hidden_layers", 1, 4096, &c->n_layers));
  RETURN_IF_ERROR(h.Int("num_attention_heads", 1, kMax, &c->n_heads));
  RETURN_IF_ERROR(h.Int("num_key_value_heads", 1, kMax, &c->n_kv_heads, c->n_heads));
  RETURN_IF_ERROR(h.Int("head_dim", 2, kMax, &c->head_dim, c->dim / c->n_heads));
  RETURN_IF_ERROR(h.Int("vocab_size", 1, 1 << 22, &c->vocab_size));
  RETURN_IF_ERROR(h.Int("max_position_embeddings", 1, 1 << 22, &c->max_seq_len));
  RETURN_IF_ERROR(h.Float("rms_norm_eps", 1e-6f, &c->norm_eps));
  RETURN_IF_ERROR(h.Float("rope_theta", 10000.0f, &c->rope_theta));
  RETURN_IF_ERROR(h.Bool("tie_word_embeddings", false, &c->tied_classifier));
  RETURN_IF_ERROR(h.Int("sliding_window", 0, 1 << 22, &c->sliding_window, 0));
  if (arch == "LlamaForCausalLM") c->sliding_window = 0;  // only Mistral uses it
  if (c->n_heads % c->n_kv_heads != 0 || c->head_dim % 2 != 0) {
    return Status::Corruption(path + ": num_key_value_heads must divide num_attention_heads and head_dim be even");
  }
  if (!h.IsNull("rope_scaling")) {
    return Status::Unsupported(path + ": rope_scaling is not supported yet");
  }
  c->rope_style = "half";
  c->ffn_gated = true;
  c->activation = h.String("hidden_act", "silu");
  if (c->activation != "silu" && c->activation != "relu") {
    return Status::Unsupported(path + ": hidden_act \"" + c->activation + "\" is not supported (silu or relu)");
  }
  return Status::OK();
}

Status ConvertLlama(const SafetensorsCheckpoint& ck, const ModelConfig& c,
                    const ConvertOptions& o) {
  ModelWriter w;
  ASSIGN_OR_RETURN(StorageTypes types, StorageTypesFor(o));
  RETURN_IF_ERROR(w.Begin(o.output, c, types, o.note));
  const uint64_t d = c.dim, V = c.vocab_size, n = c.ffn_dim;
  const uint64_t q = static_cast<uint64_t>(c.n_heads) * c.head_dim;
  const uint64_t kv = static_cast<uint64_t>(c.n_kv_heads) * c.head_dim;
  auto copy = [&](const std::string& from, const std::string& to, std::vector<uint64_t> shape) {
    ASSIGN_OR_RETURN(std::vector<float> t, ck.Read(from, shape));
    return w.AddResidentTensor(to, shape, t.data());
  };
  RETURN_IF_ERROR(copy("model.embed_tokens.weight", "tok_embeddings", {V, d}));
  for (int l = 0; l < c.n_layers; ++l) {
    std::string from = "model.layers." + std::to_string(l) + ".", to = "layers." + std::to_string(l) + ".";
    RETURN_IF_ERROR(copy(from + "input_layernorm.weight", to + "attention_norm", {d}));
    RETURN_IF_ERROR(copy(from + "self_attn.q_proj.weight", to + "wq", {q, d}));
    RETURN_IF_ERROR(copy(from + "self_attn.k_proj.weight", to + "wk", {kv, d}));
    RETURN_IF_ERROR(copy(from + "self_attn.v_proj.weight", to + "wv", {kv, d}));
    RETURN_IF_ERROR(copy(from + "self_attn.o_proj.weight", to + "wo", {d, q}));
    RETURN_IF_ERROR(copy(from + "post_attention_layernorm.weight", to + "ffn_norm", {d}));
  }
  RETURN_IF_ERROR(copy("model.norm.weight", "norm", {d}));
  if (!c.tied_classifier) RETURN_IF_ERROR(copy("lm_head.weight", "output", {V, d}));
  for (int l = 0; l < c.n_layers; ++l) {
    std::string from = "model.layers." + std::to_string(l) + ".mlp.";
    ASSIGN_OR_RETURN(std::vector<float> gate, ck.Read(from + "gate_proj.weight", {n, d}));
    ASSIGN_OR_RETURN(std::vector<float> up, ck.Read(from + "up_proj.weight", {n, d}));
    ASSIGN_OR_RETURN(std::vector<float> down, ck.Read(from + "down_proj.weight", {d, n}));
    RETURN_IF_ERROR(w.AddFfnLayer(l, gate.data(), up.data(), down.data()));
    if (o.progress) o.progress(static_cast<double>(l + 1) / c.n_layers, "FFN layers");
  }
  RETURN_IF_ERROR(AddTokenizer(o, 1, 2, &w));
  return w.Finish();
}

Status OptConfig(const HfConfig& h, const std::string& path, ModelConfig* c) {
  constexpr int kMax = 1 << 20;
  c->architecture = "opt";
  RETURN_IF_ERROR(h.Int("hidden_size", 1, kMax, &c->dim));
  RETURN_IF_ERROR(h.Int("ffn_dim", 1, kMax, &c->ffn_dim));
  RETURN_IF_ERROR(h.Int("num_hidden_layers", 1, 4096, &c->n_layers));
  RETURN_IF_ERROR(h.Int("num_attention_heads", 1, kMax, &c->n_heads));
  RETURN_IF_ERROR(h.Int("vocab_size", 1, 1 << 22, &c->vocab_size));
  RETURN_IF_ERROR(h.Int("max_position_embeddings", 1, 1 << 22, &c->max_seq_len));
  int embed = 0;
  RETURN_IF_ERROR(h.Int("word_embed_proj_dim", 1, kMax, &embed, c->dim));
  bool remove_final = false, bias = true, affine = true;
  RETURN_IF_ERROR(h.Bool("do_layer_norm_before", true, &c->pre_norm));
  RETURN_IF_ERROR(h.Bool("_remove_final_layer_norm", false, &remove_final));
  RETURN_IF_ERROR(h.Bool("enable_bias", true, &bias));
  RETURN_IF_ERROR(h.Bool("layer_norm_elementwise_affine", true, &affine));
  RETURN_IF_ERROR(h.Bool("tie_word_embeddings", true, &c->tied_classifier));
  std::string act = h.String("activation_function", "relu");
  if (act != "relu") return Status::Unsupported(path + ": activation_function \"" + act + "\" (relu only)");
  if (!bias || !affine || !c->tied_classifier) {
    return Status::Unsupported(path + ": OPT without biases, affine LayerNorms or tied embeddings");
  }
  if (c->dim % c->n_heads != 0 || (c->dim / c->n_heads) % 2 != 0) {
    return Status::Corruption(path + ": hidden_size must be a multiple of 2 * num_attention_heads");
  }
  c->n_kv_heads = c->n_heads;
  c->head_dim = c->dim / c->n_heads;
  c->norm = "layernorm";
  c->norm_eps = 1e-5f;
  c->positions = "learned";
  c->position_offset = 2;  // OPT's learned positions start at index 2
  c->embed_dim = embed == c->dim ? 0 : embed;
  c->final_norm = c->pre_norm && !remove_final;
  c->attention_bias = true;
  c->ffn_bias = true;
  c->ffn_gated = false;
  c->activation = "relu";
  return Status::OK();
}

Status ConvertOpt(const SafetensorsCheckpoint& ck, const ModelConfig& c, const ConvertOptions& o) {
  ModelWriter w;
  ASSIGN_OR_RETURN(StorageTypes types, StorageTypesFor(o));
  RETURN_IF_ERROR(w.Begin(o.output, c, types, o.note));
  const uint64_t d = c.dim, V = c.vocab_size, n = c.ffn_dim, e = c.EmbedDim();
  const std::string dec = "model.decoder.";
  auto copy = [&](const std::string& from, const std::string& to, std::vector<uint64_t> shape) {
    ASSIGN_OR_RETURN(std::vector<float> t, ck.Read(dec + from, shape));
    return w.AddResidentTensor(to, shape, t.data());
  };
  RETURN_IF_ERROR(copy("embed_tokens.weight", "tok_embeddings", {V, e}));
  RETURN_IF_ERROR(copy("embed_positions.weight", "pos_embeddings",
                       {static_cast<uint64_t>(c.max_seq_len) + c.position_offset, d}));
  if (e != d) {
    RETURN_IF_ERROR(copy("project_in.weight", "project_in", {d, e}));
    RETURN_IF_ERROR(copy("project_out.weight", "project_out", {e, d}));
  }
  for (int l = 0; l < c.n_layers; ++l) {
    std::string from = "layers." + std::to_string(l) + ".", to = from;
    RETURN_IF_ERROR(copy(from + "self_attn_layer_norm.weight", to + "attention_norm", {d}));
    RETURN_IF_ERROR(copy(from + "self_attn_layer_norm.bias", to + "attention_norm_bias", {d}));
    for (auto [hf, ours] : {std::pair{"q_proj", "q"}, {"k_proj", "k"}, {"v_proj", "v"}, {"out_proj", "o"}}) {
      RETURN_IF_ERROR(copy(from + "self_attn." + hf + ".weight", to + "w" + ours, {d, d}));
      RETURN_IF_ERROR(copy(from + "self_attn." + hf + ".bias", to + "b" + ours, {d}));
    }
    RETURN_IF_ERROR(copy(from + "final_layer_norm.weight", to + "ffn_norm", {d}));
    RETURN_IF_ERROR(copy(from + "final_layer_norm.bias", to + "ffn_norm_bias", {d}));
    RETURN_IF_ERROR(copy(from + "fc1.bias", to + "ffn_up_bias", {n}));
    RETURN_IF_ERROR(copy(from + "fc2.bias", to + "ffn_down_bias", {d}));
  }
  if (c.final_norm) {
    RETURN_IF_ERROR(copy("final_layer_norm.weight", "norm", {d}));
    RETURN_IF_ERROR(copy("final_layer_norm.bias", "norm_bias", {d}));
  }
  for (int l = 0; l < c.n_layers; ++l) {
    std::string from = dec + "layers." + std::to_string(l) + ".";
    ASSIGN_OR_RETURN(std::vector<float> up, ck.Read(from + "fc1.weight", {n, d}));
    ASSIGN_OR_RETURN(std::vector<float> down, ck.Read(from + "fc2.weight", {d, n}));
    RETURN_IF_ERROR(w.AddFfnLayer(l, nullptr, up.data(), down.data()));
    if (o.progress) o.progress(static_cast<double>(l + 1) / c.n_layers, "FFN layers");
  }
  RETURN_IF_ERROR(AddTokenizer(o, 2, 2, &w));  // OPT prepends </s> (2) as BOS
  return w.Finish();
}

}  // namespace

Status ConvertHuggingFace(const ConvertOptions& o) {
  if (o.input.empty() || o.output.empty()) {
    return Status::InvalidArgument("convert needs an input directory and an output directory");
  }
  std::string path = JoinPath(o.input, "config.json");
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 16 << 20));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(path + ": not a JSON object");
  std::string arch;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    arch = j["architectures"][0].get<std::string>();
  }
  HfConfig h(j, path);
  ModelConfig c;
  try {
    if (arch == "LlamaForCausalLM" || arch == "MistralForCausalLM") {
      RETURN_IF_ERROR(LlamaConfig(h, path, arch, &c));
    } else if (arch == "OPTForCausalLM") {
      RETURN_IF_ERROR(OptConfig(h, path, &c));
    } else {
      return Status::Unsupported(path + ": architecture \"" + arch + "\" is not supported "
                                 "(OPTForCausalLM, LlamaForCausalLM, MistralForCausalLM)");
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
  SafetensorsCheckpoint ck;
  RETURN_IF_ERROR(ck.Open(o.input));
  return c.architecture == "opt" ? ConvertOpt(ck, c, o) : ConvertLlama(ck, c, o);
}

}  // namespace llmflash

// Importer for Hugging Face checkpoints: config.json + safetensors (single or
// sharded). LlamaForCausalLM and MistralForCausalLM map onto the "llama"
// architecture with Hugging Face's rotate-half RoPE; OPTForCausalLM onto
// "opt" (LayerNorm with biases, learned positions at offset 2, pre- or
// post-LayerNorm blocks, project_in/out, ReLU FFN with biases).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <set>

#include "format/architecture.h"
#include "format/hf_importer.h"
#include "format/model_writer.h"
#include "model/chat_template.h"
#include "model/hf_tokenizer.h"
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

// A token field of tokenizer_config.json: "text", {"content": "text"} or null.
std::optional<std::string> TokenText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

// Adds the ids of an eos_token_id field (an id or a list of ids).
Status AddIds(const nlohmann::json& j, const char* key, const std::string& path, int vocab, std::vector<int>* out) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return Status::OK();
  std::vector<nlohmann::json> items = j[key].is_array() ? j[key].get<std::vector<nlohmann::json>>()
                                                        : std::vector<nlohmann::json>{j[key]};
  for (const auto& v : items) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab) {
      return Status::Corruption(path + ": \"" + key + "\" holds something that is not a token id below " +
                                std::to_string(vocab));
    }
    int id = v.get<int>();
    if (std::find(out->begin(), out->end(), id) == out->end()) out->push_back(id);
  }
  return Status::OK();
}

nlohmann::json ReadJsonIfPresent(const std::string& path) {
  auto text = ReadFileToString(path, 64 << 20);
  if (!text.ok()) return nlohmann::json();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

// Copies tokenizer.json, with the tokens that start and end a text as the
// checkpoint's own files say:
//   BOS: tokenizer_config.json's add_bos_token (with its bos_token) when it
//        says; else the tokenizer.json post-processor's first token
//        (TemplateProcessing); else config.json's bos_token_id (or the
//        family's default) when the family adds one. A bos_token of null in
//        tokenizer_config.json means none.
//   stop: every id in config.json's and generation_config.json's
//        eos_token_id (an id or a list), then tokenizer_config.json's
//        eos_token; the family's default when none says.
// `config` is config.json, already parsed by the importer.
Status AddTokenizer(const ConvertOptions& o, const nlohmann::json& config, const ModelConfig& c, bool bos_by_default,
                    int default_bos, int default_eos, ModelWriter* w) {
  const std::string tok_path = JoinPath(o.input, "tokenizer.json");
  if (!FileSize(tok_path).ok()) {
    if (o.note) {
      o.note(FileSize(JoinPath(o.input, "tokenizer.model")).ok()
                 ? "tokenizer.model (SentencePiece) is not read and there is no tokenizer.json: the model "
                   "converts without a tokenizer (logits work; generate and chat need tokenizer.json)"
                 : "no tokenizer.json: the model converts without a tokenizer (logits work; generate and "
                   "chat need one)");
    }
    return Status::OK();
  }
  ASSIGN_OR_RETURN(HfTokenizer tok, HfTokenizer::Load(tok_path));
  const std::string config_path = JoinPath(o.input, "config.json");
  const std::string gen_path = JoinPath(o.input, "generation_config.json");
  const std::string tc_path = JoinPath(o.input, "tokenizer_config.json");
  const nlohmann::json gen = ReadJsonIfPresent(gen_path);
  const nlohmann::json tc = ReadJsonIfPresent(tc_path);
  const int vocab = c.vocab_size;
  auto id_of = [&](const nlohmann::json& field, const std::string& what) -> StatusOr<int> {
    std::optional<std::string> text = TokenText(field);
    if (!text) return -1;
    int id = tok.Find(*text);
    if (id < 0 || id >= vocab) {
      return Status::Corruption(tc_path + ": " + what + " \"" + *text + "\" is not a token of tokenizer.json");
    }
    return id;
  };

  int bos = -1;
  int config_bos = default_bos;
  if (config.is_object() && config.contains("bos_token_id") && config["bos_token_id"].is_number_integer()) {
    config_bos = config["bos_token_id"].get<int>();
  }
  const bool tc_has_bos = tc.is_object() && tc.contains("bos_token");
  if (tc.is_object() && tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean()) {
    if (tc["add_bos_token"].get<bool>()) {
      ASSIGN_OR_RETURN(bos, tc_has_bos ? id_of(tc["bos_token"], "bos_token") : StatusOr<int>(config_bos));
      if (bos < 0) bos = config_bos;
    }
  } else if (!tok.prefix_ids().empty()) {
    bos = tok.prefix_ids()[0];
  } else if (tc_has_bos && tc["bos_token"].is_null()) {
    bos = -1;
  } else if (bos_by_default) {
    bos = config_bos;
  }
  if (bos >= vocab) return Status::Corruption(config_path + ": bos_token_id is outside the vocabulary");

  std::vector<int> stop;
  RETURN_IF_ERROR(AddIds(config, "eos_token_id", config_path, vocab, &stop));
  RETURN_IF_ERROR(AddIds(gen, "eos_token_id", gen_path, vocab, &stop));
  if (tc.is_object() && tc.contains("eos_token")) {
    ASSIGN_OR_RETURN(int eos, id_of(tc["eos_token"], "eos_token"));
    if (eos >= 0 && std::find(stop.begin(), stop.end(), eos) == stop.end()) stop.push_back(eos);
  }
  if (stop.empty()) stop.push_back(default_eos);
  RETURN_IF_ERROR(w->AddTokenizer(tok_path, "hf", bos, stop));

  // The chat template: a string, or a list of {name, template} ("default").
  if (!tc.is_object() || !tc.contains("chat_template")) return Status::OK();
  std::string text;
  const nlohmann::json& ct = tc["chat_template"];
  if (ct.is_string()) {
    text = ct.get<std::string>();
  } else if (ct.is_array()) {
    for (const auto& t : ct) {
      if (t.is_object() && t.value("name", "") == "default" && t.contains("template") && t["template"].is_string()) {
        text = t["template"].get<std::string>();
      }
    }
  }
  if (text.empty()) {
    if (o.note) o.note(tc_path + ": chat_template is neither a string nor a list with a \"default\"; chat is off");
    return Status::OK();
  }
  auto parsed = ChatTemplate::Parse(text, tc_path + ": chat_template");
  if (!parsed.ok()) {
    if (o.note) o.note(parsed.status().message() + "; chat is off for this model");
    return Status::OK();
  }
  auto text_of = [&](const char* key) {
    std::optional<std::string> t = tc.contains(key) ? TokenText(tc[key]) : std::nullopt;
    return t.value_or("");
  };
  return w->AddChatTemplate(text, text_of("bos_token"), text_of("eos_token"));
}

// config.json's rope_scaling: null, or {"rope_type" (or "type"): "llama3" |
// "linear" | "default", ...}. Anything else is Unsupported naming the type.
Status RopeScaling(const nlohmann::json& j, const std::string& path, ModelConfig* c) {
  if (!j.contains("rope_scaling") || j["rope_scaling"].is_null()) return Status::OK();
  const auto& r = j["rope_scaling"];
  if (!r.is_object()) return Status::Corruption(path + ": rope_scaling must be an object or null");
  std::string type = r.value("rope_type", r.value("type", std::string()));
  auto number = [&](const char* key, float* out) -> Status {
    if (!r.contains(key) || !r[key].is_number()) {
      return Status::Corruption(path + ": rope_scaling (" + type + ") needs a number \"" + key + "\"");
    }
    *out = r[key].get<float>();
    return Status::OK();
  };
  if (type == "default") return Status::OK();
  if (type == "linear") {
    c->rope_scaling = "linear";
    RETURN_IF_ERROR(number("factor", &c->rope_factor));
  } else if (type == "llama3") {
    c->rope_scaling = "llama3";
    float original = 0;
    RETURN_IF_ERROR(number("factor", &c->rope_factor));
    RETURN_IF_ERROR(number("low_freq_factor", &c->rope_low_freq_factor));
    RETURN_IF_ERROR(number("high_freq_factor", &c->rope_high_freq_factor));
    RETURN_IF_ERROR(number("original_max_position_embeddings", &original));
    c->rope_original_context = static_cast<int>(original);
    if (!(original >= 1 && original <= (1 << 22))) {
      return Status::Corruption(path + ": rope_scaling original_max_position_embeddings out of range");
    }
  } else {
    return Status::Unsupported(path + ": rope_scaling type \"" + type +
                               "\" is not supported (llama3, linear, default)");
  }
  if (!(c->rope_factor >= 1) || !(c->rope_low_freq_factor > 0) ||
      !(c->rope_high_freq_factor > c->rope_low_freq_factor)) {
    return Status::Corruption(path + ": rope_scaling factors must be >= 1 and low_freq_factor < high_freq_factor");
  }
  return Status::OK();
}

// Gemma 2/3: scaled embeddings, sandwich norms, query_pre_attn_scalar,
// soft-caps (Gemma 2), and which layers slide: every other one (Gemma 2), or
// five in six with their own RoPE base (Gemma 3; from sliding_window_pattern
// or layer_types).
Status GemmaConfig(const nlohmann::json& j, const HfConfig& h, const std::string& path, const LlamaFamilyArch& a,
                   ModelConfig* c) {
  c->embed_scale = true;
  c->sandwich_norm = true;
  RETURN_IF_ERROR(h.Float("query_pre_attn_scalar", 0.0f, &c->query_scale));
  RETURN_IF_ERROR(h.Float("attn_logit_softcapping", 0.0f, &c->attn_softcap));
  RETURN_IF_ERROR(h.Float("final_logit_softcapping", 0.0f, &c->final_softcap));
  if (!(c->query_scale >= 0) || !(c->attn_softcap >= 0) || !(c->final_softcap >= 0)) {
    return Status::Corruption(path + ": query_pre_attn_scalar and the softcappings must be >= 0");
  }
  if (a.gemma == 2) {
    c->sliding_window_period = 2;
    return Status::OK();
  }
  RETURN_IF_ERROR(h.Float("rope_local_base_freq", 10000.0f, &c->rope_local_theta));
  int period = 6;
  RETURN_IF_ERROR(h.Int("sliding_window_pattern", 1, 4096, &period, 6));
  if (j.contains("layer_types") && j["layer_types"].is_array()) {
    const auto& types = j["layer_types"];
    period = 0;
    for (size_t l = 0; l < types.size() && period == 0; ++l) {
      if (types[l] == "full_attention") period = static_cast<int>(l) + 1;
    }
    if (period == 0) period = static_cast<int>(types.size()) + 1;  // no global layer
    for (size_t l = 0; l < types.size(); ++l) {
      const bool global = (l + 1) % period == 0;
      if (types[l] != (global ? "full_attention" : "sliding_attention")) {
        return Status::Unsupported(path + ": layer_types that do not repeat every " + std::to_string(period) +
                                   " layers");
      }
    }
  }
  c->sliding_window_period = period;
  return Status::OK();
}

// The experts: how many, how many a token uses, their size. Mixtral names
// them num_local_experts and intermediate_size and always renormalises the
// top-k weights; Qwen3-MoE num_experts and moe_intermediate_size, with
// norm_topk_prob (false when absent, as transformers' Qwen3MoeConfig says)
// and dense MLP layers where decoder_sparse_step or mlp_only_layers say.
Status MoeConfig(const nlohmann::json& j, const HfConfig& h, const std::string& path, const LlamaFamilyArch& a,
                 ModelConfig* c) {
  constexpr int kMax = 1 << 20;
  int expert_dim = 0;
  if (a.moe == MoeNaming::kMixtral) {
    RETURN_IF_ERROR(h.Int("num_local_experts", 1, 1 << 16, &c->n_experts));
    RETURN_IF_ERROR(h.Int("intermediate_size", 1, kMax, &expert_dim));
    c->expert_norm_topk = true;
  } else {
    RETURN_IF_ERROR(h.Int("num_experts", 1, 1 << 16, &c->n_experts));
    RETURN_IF_ERROR(h.Int("moe_intermediate_size", 1, kMax, &expert_dim));
    RETURN_IF_ERROR(h.Bool("norm_topk_prob", false, &c->expert_norm_topk));
    int step = 1;
    RETURN_IF_ERROR(h.Int("decoder_sparse_step", 1, 4096, &step, 1));
    const bool dense_layers = j.contains("mlp_only_layers") && j["mlp_only_layers"].is_array() &&
                              !j["mlp_only_layers"].empty();
    if (step != 1 || dense_layers) {
      return Status::Unsupported(path + ": dense MLP layers between the expert layers (decoder_sparse_step " +
                                 std::to_string(step) + ", mlp_only_layers) are not supported");
    }
    if (j.contains("shared_expert_intermediate_size") && !j["shared_expert_intermediate_size"].is_null() &&
        !(j["shared_expert_intermediate_size"].is_number() && j["shared_expert_intermediate_size"] == 0)) {
      return Status::Unsupported(path + ": shared experts are not supported");
    }
  }
  RETURN_IF_ERROR(h.Int("num_experts_per_tok", 1, c->n_experts, &c->n_experts_used));
  if (static_cast<int64_t>(c->n_experts) * expert_dim > kMax) {
    return Status::Unsupported(path + ": " + std::to_string(c->n_experts) + " experts of " +
                               std::to_string(expert_dim) + " neurons are more than " + std::to_string(kMax) +
                               " neurons per layer");
  }
  c->ffn_dim = c->n_experts * expert_dim;
  return Status::OK();
}

Status LlamaConfig(const nlohmann::json& j, const HfConfig& h, const std::string& path, const LlamaFamilyArch& a,
                   ModelConfig* c) {
  constexpr int kMax = 1 << 20;
  c->architecture = "llama";
  c->source_architecture = a.hf_class;
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
  RETURN_IF_ERROR(h.Bool("tie_word_embeddings", a.gemma > 0, &c->tied_classifier));
  c->sliding_window = 0;
  if (a.sliding_window) RETURN_IF_ERROR(h.Int("sliding_window", 0, 1 << 22, &c->sliding_window, 0));
  if (a.gemma > 0) RETURN_IF_ERROR(GemmaConfig(j, h, path, a, c));
  bool use_window = false;
  RETURN_IF_ERROR(h.Bool("use_sliding_window", false, &use_window));
  if (use_window) return Status::Unsupported(path + ": use_sliding_window (per-layer windows) is not supported");
  if (c->n_heads % c->n_kv_heads != 0 || c->head_dim % 2 != 0) {
    return Status::Corruption(path + ": num_key_value_heads must divide num_attention_heads and head_dim be even");
  }
  RETURN_IF_ERROR(RopeScaling(j, path, c));
  float partial = 1.0f;
  RETURN_IF_ERROR(h.Float("partial_rotary_factor", 1.0f, &partial));
  if (partial != 1.0f) return Status::Unsupported(path + ": partial_rotary_factor " + std::to_string(partial));
  bool attention_bias = false, mlp_bias = false;
  RETURN_IF_ERROR(h.Bool("attention_bias", false, &attention_bias));
  RETURN_IF_ERROR(h.Bool("mlp_bias", false, &mlp_bias));
  if (attention_bias && !a.reads_attention_bias) {
    return Status::Unsupported(path + ": attention_bias true is not part of " + a.hf_class);
  }
  if (mlp_bias) return Status::Unsupported(path + ": mlp_bias (biases on gate/up/down) is not supported");
  c->attention_bias = attention_bias;
  c->qkv_bias = a.qkv_bias;
  c->qk_norm = a.qk_norm;
  c->rope_style = "half";
  c->ffn_gated = true;
  if (a.moe != MoeNaming::kNone) RETURN_IF_ERROR(MoeConfig(j, h, path, a, c));
  std::string act = h.String("hidden_activation", h.String("hidden_act", "silu"));  // Gemma says hidden_activation
  if (act == "silu" || act == "relu") {
    c->activation = act;
  } else if (act == "gelu_pytorch_tanh") {
    c->activation = "gelu_tanh";
  } else if (act == "fatrelu" && a.fatrelu) {
    c->activation = "fatrelu";
    RETURN_IF_ERROR(h.Float("hidden_act_param", 0.0f, &c->activation_param));
  } else {
    return Status::Unsupported(path + ": hidden_act \"" + act + "\" is not supported for " + a.hf_class +
                               " (silu, relu, gelu_pytorch_tanh" + (a.fatrelu ? ", fatrelu)" : ")"));
  }
  return Status::OK();
}

// Every tensor a Llama-family checkpoint of this config holds. A tensor
// outside it is an error: dropping it silently gives a different model (a
// Qwen2 checkpoint labelled as Llama loses its biases).
std::vector<std::string> LlamaExpectedTensors(const ModelConfig& c, const LlamaFamilyArch& a) {
  std::vector<std::string> names = {"model.embed_tokens.weight", "model.norm.weight"};
  if (!c.tied_classifier) names.push_back("lm_head.weight");
  for (int l = 0; l < c.n_layers; ++l) {
    LlamaTensorNames n = LlamaLayerNames(l, a);
    for (const std::string* t : {&n.attn_norm, &n.o, &n.ffn_norm}) names.push_back(*t);
    if (a.fused) {
      names.push_back(n.qkv);
      names.push_back(n.gate_up);
      names.push_back(n.down);
    } else {
      for (const std::string* t : {&n.q, &n.k, &n.v}) names.push_back(*t);
    }
    if (!a.fused && c.moe()) {
      names.push_back(RouterName(l, a));
      for (int e = 0; e < c.n_experts; ++e) {
        ExpertTensorNames x = ExpertNames(l, e, a);
        for (const std::string* t : {&x.gate, &x.up, &x.down}) names.push_back(*t);
      }
    } else if (!a.fused) {
      for (const std::string* t : {&n.gate, &n.up, &n.down}) names.push_back(*t);
    }
    if (c.qkv_bias || c.attention_bias) for (const std::string* t : {&n.q_bias, &n.k_bias, &n.v_bias}) names.push_back(*t);
    if (c.attention_bias) names.push_back(n.o_bias);
    if (c.qk_norm) { names.push_back(n.q_norm); names.push_back(n.k_norm); }
    if (c.sandwich_norm) { names.push_back(n.post_attention_norm); names.push_back(n.post_ffn_norm); }
  }
  return names;
}

Status CheckNoStrayTensors(const TensorSource& ck, const std::vector<std::string>& expected,
                           const ModelConfig& c, const std::string& dir) {
  std::set<std::string> want(expected.begin(), expected.end());
  for (const std::string& name : ck.Names()) {
    if (want.count(name) > 0) continue;
    if (name.ends_with("rotary_emb.inv_freq")) continue;           // a buffer some exports keep
    if (c.tied_classifier && name == "lm_head.weight") continue;   // a copy of the embeddings
    return Status::Unsupported(dir + ": tensor \"" + name + "\" is not part of " + c.source_architecture +
                               " as its config.json describes it; converting would drop it "
                               "(is \"architectures\" right?)");
  }
  return Status::OK();
}

// A layer's experts as one bundle layer: expert e's neurons are records
// [e F, (e + 1) F), its gate and up rows in order and its down matrix's
// columns beside them; one expert in memory at a time.
Status AddExpertLayer(const TensorSource& ck, const ModelConfig& c, const LlamaFamilyArch& a, int l,
                      ModelWriter* w) {
  const uint64_t d = c.dim, f = c.ExpertDim();
  for (int e = 0; e < c.n_experts; ++e) {
    const ExpertTensorNames x = ExpertNames(l, e, a);
    ASSIGN_OR_RETURN(std::vector<float> gate, ck.Read(x.gate, {f, d}));
    ASSIGN_OR_RETURN(std::vector<float> up, ck.Read(x.up, {f, d}));
    ASSIGN_OR_RETURN(std::vector<float> down, ck.Read(x.down, {d, f}));
    RETURN_IF_ERROR(w->AddFfnRecords(l, static_cast<int>(f), SourceRows{GgmlType::kF32, gate.data(), nullptr},
                                     SourceRows{GgmlType::kF32, up.data(), nullptr}, down.data()));
  }
  return Status::OK();
}

Status ConvertLlama(const TensorSource& ck, const nlohmann::json& config, const ModelConfig& c,
                    const LlamaFamilyArch& a,
                    const ConvertOptions& o) {
  RETURN_IF_ERROR(CheckNoStrayTensors(ck, LlamaExpectedTensors(c, a), c, o.input));
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
  // Gemma's RMSNorm multiplies by (1 + weight): stored as 1 + weight, so the
  // forward pass has one RMSNorm.
  auto norm = [&](const std::string& from, const std::string& to, uint64_t n) {
    ASSIGN_OR_RETURN(std::vector<float> t, ck.Read(from, {n}));
    if (a.gemma > 0) for (float& v : t) v += 1.0f;
    return w.AddResidentTensor(to, {n}, t.data());
  };
  RETURN_IF_ERROR(copy("model.embed_tokens.weight", "tok_embeddings", {V, d}));
  for (int l = 0; l < c.n_layers; ++l) {
    const LlamaTensorNames from = LlamaLayerNames(l, a);
    const std::string to = "layers." + std::to_string(l) + ".";
    RETURN_IF_ERROR(norm(from.attn_norm, to + "attention_norm", d));
    if (a.fused) {  // Phi-3: rows [q | k | v]
      ASSIGN_OR_RETURN(std::vector<float> qkv, ck.Read(from.qkv, {q + 2 * kv, d}));
      RETURN_IF_ERROR(w.AddResidentTensor(to + "wq", {q, d}, qkv.data()));
      RETURN_IF_ERROR(w.AddResidentTensor(to + "wk", {kv, d}, qkv.data() + q * d));
      RETURN_IF_ERROR(w.AddResidentTensor(to + "wv", {kv, d}, qkv.data() + (q + kv) * d));
    } else {
      RETURN_IF_ERROR(copy(from.q, to + "wq", {q, d}));
      RETURN_IF_ERROR(copy(from.k, to + "wk", {kv, d}));
      RETURN_IF_ERROR(copy(from.v, to + "wv", {kv, d}));
    }
    RETURN_IF_ERROR(copy(from.o, to + "wo", {d, q}));
    if (c.qkv_bias || c.attention_bias) {
      RETURN_IF_ERROR(copy(from.q_bias, to + "bq", {q}));
      RETURN_IF_ERROR(copy(from.k_bias, to + "bk", {kv}));
      RETURN_IF_ERROR(copy(from.v_bias, to + "bv", {kv}));
    }
    if (c.attention_bias) RETURN_IF_ERROR(copy(from.o_bias, to + "bo", {d}));
    if (c.qk_norm) {
      const uint64_t hd = c.head_dim;
      RETURN_IF_ERROR(norm(from.q_norm, to + "q_norm", hd));
      RETURN_IF_ERROR(norm(from.k_norm, to + "k_norm", hd));
    }
    RETURN_IF_ERROR(norm(from.ffn_norm, to + "ffn_norm", d));
    if (c.sandwich_norm) {
      RETURN_IF_ERROR(norm(from.post_attention_norm, to + "post_attention_norm", d));
      RETURN_IF_ERROR(norm(from.post_ffn_norm, to + "post_ffn_norm", d));
    }
    if (c.moe()) RETURN_IF_ERROR(copy(RouterName(l, a), to + "router", {static_cast<uint64_t>(c.n_experts), d}));
  }
  RETURN_IF_ERROR(norm("model.norm.weight", "norm", d));
  if (!c.tied_classifier) RETURN_IF_ERROR(copy("lm_head.weight", "output", {V, d}));
  for (int l = 0; l < c.n_layers; ++l) {
    const LlamaTensorNames from = LlamaLayerNames(l, a);
    std::vector<float> gate, up;
    if (c.moe()) {
      RETURN_IF_ERROR(AddExpertLayer(ck, c, a, l, &w));
      if (o.progress) o.progress(static_cast<double>(l + 1) / c.n_layers, "FFN layers");
      continue;
    }
    if (a.fused) {  // Phi-3: rows [gate | up]
      ASSIGN_OR_RETURN(std::vector<float> gu, ck.Read(from.gate_up, {2 * n, d}));
      gate.assign(gu.begin(), gu.begin() + n * d);
      up.assign(gu.begin() + n * d, gu.end());
    } else {
      ASSIGN_OR_RETURN(gate, ck.Read(from.gate, {n, d}));
      ASSIGN_OR_RETURN(up, ck.Read(from.up, {n, d}));
    }
    ASSIGN_OR_RETURN(std::vector<float> down, ck.Read(from.down, {d, n}));
    RETURN_IF_ERROR(w.AddFfnLayer(l, gate.data(), up.data(), down.data()));
    if (o.progress) o.progress(static_cast<double>(l + 1) / c.n_layers, "FFN layers");
  }
  RETURN_IF_ERROR(AddTokenizer(o, config, c, a.bos_by_default, 1, 2, &w));
  return w.Finish();
}

Status OptConfig(const HfConfig& h, const std::string& path, ModelConfig* c) {
  constexpr int kMax = 1 << 20;
  c->architecture = "opt";
  c->source_architecture = "OPTForCausalLM";
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

Status ConvertOpt(const TensorSource& ck, const nlohmann::json& config, const ModelConfig& c,
                  const ConvertOptions& o) {
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
  RETURN_IF_ERROR(AddTokenizer(o, config, c, true, 2, 2, &w));  // OPT prepends </s> (2) as BOS
  return w.Finish();
}

}  // namespace

namespace {

// `tensors` null: o.input's safetensors files.
Status Convert(const ConvertOptions& o, const TensorSource* tensors) {
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
  const LlamaFamilyArch* llama = FindLlamaFamily(arch);
  try {
    if (llama != nullptr) {
      RETURN_IF_ERROR(LlamaConfig(j, h, path, *llama, &c));
    } else if (arch == "OPTForCausalLM") {
      RETURN_IF_ERROR(OptConfig(h, path, &c));
    } else {
      return Status::Unsupported(path + ": architecture \"" + arch + "\" is not supported (" +
                                 KnownArchitectures() + ")");
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
  SafetensorsCheckpoint ck;
  if (tensors == nullptr) {
    RETURN_IF_ERROR(ck.Open(o.input));
    tensors = &ck;
  }
  return llama != nullptr ? ConvertLlama(*tensors, j, c, *llama, o) : ConvertOpt(*tensors, j, c, o);
}

}  // namespace

Status ConvertHuggingFace(const ConvertOptions& o) { return Convert(o, nullptr); }

Status ConvertHuggingFaceFrom(const ConvertOptions& o, const TensorSource& tensors) { return Convert(o, &tensors); }

}  // namespace llmflash

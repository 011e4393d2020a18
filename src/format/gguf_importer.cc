// Importer for GGUF files (llama.cpp): llama (Llama 2/3, Mistral), qwen2,
// qwen3 and phi3 onto the "llama" architecture with Hugging Face's
// rotate-half RoPE, so a model converted from GGUF equals the same weights
// converted from safetensors (docs/gguf.md).
//
// llama.cpp's converter permutes the rows of Q and K of "llama" models for
// its interleaved RoPE; they are put back here. Rows in a type with
// llmflash's blocks (F32, F16, BF16, Q8_0, Q4_0) are carried byte for byte
// when the tensor is stored in that type; every other conversion goes
// through f32 and its error is measured and reported.
#include <algorithm>
#include <cmath>
#include <optional>
#include <cstring>
#include <set>

#include "format/architecture.h"
#include "format/gguf.h"
#include "format/gguf_tokenizer.h"
#include "format/model_writer.h"
#include "llmflash/convert.h"
#include "model/chat_template.h"
#include "model/transformer.h"
#include "util/macros.h"

namespace llmflash {
namespace {

struct GgufArch {
  const char* name;      // general.architecture
  const char* hf_class;  // the architecture row it maps to
  bool permuted_qk;      // llama.cpp's converter permuted Q and K rows
};

constexpr GgufArch kArchs[] = {
    {"llama", "LlamaForCausalLM", true},
    {"qwen2", "Qwen2ForCausalLM", false},
    {"qwen3", "Qwen3ForCausalLM", false},
    {"phi3", "Phi3ForCausalLM", false},
};

// Undoes llama.cpp's permute of Q and K for its interleaved RoPE: within
// each head of hd rows, row half * hd/2 + i went to 2i + half.
void UnpermuteRows(void* data, uint64_t rows, uint64_t row_bytes, int heads) {
  char* p = static_cast<char*>(data);
  const uint64_t hd = rows / heads;
  std::vector<char> out(rows * row_bytes);
  for (uint64_t h = 0; h < static_cast<uint64_t>(heads); ++h) {
    for (uint64_t i = 0; i < hd / 2; ++i) {
      for (uint64_t half = 0; half < 2; ++half) {
        std::memcpy(out.data() + (h * hd + half * (hd / 2) + i) * row_bytes, p + (h * hd + 2 * i + half) * row_bytes,
                    row_bytes);
      }
    }
  }
  std::memcpy(p, out.data(), out.size());
}

std::string KnownGgufArchs() {
  std::string s;
  for (const GgufArch& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

class Importer {
 public:
  Importer(const GgufFile& f, const ConvertOptions& o) : f_(f), o_(o) {}

  Status Run();

 private:
  Status Config();
  Status Types(StorageTypes* t);
  // The tensor, its shape checked against `shape` (rows first, as
  // llmflash and Hugging Face write it: {out, in}).
  StatusOr<const GgufTensorInfo*> Tensor(const std::string& name, const std::vector<uint64_t>& shape);
  // Its stored bytes, rows un-permuted when `unpermute_heads` > 0.
  StatusOr<std::vector<char>> Raw(const GgufTensorInfo& t, int unpermute_heads = 0);
  Status Matrix(const std::string& from, const std::string& to, std::vector<uint64_t> shape, int unpermute_heads = 0);
  Status Vector(const std::string& from, const std::string& to, uint64_t n, int unpermute_heads = 0);
  Status Tokenizer(ModelWriter* w);
  Status CheckNoStrayTensors();
  Status RopeFactors();

  const GgufFile& f_;
  const ConvertOptions& o_;
  const GgufArch* arch_ = nullptr;
  const LlamaFamilyArch* family_ = nullptr;
  std::string key_;  // "llama."
  ModelConfig c_;
  ModelWriter w_;
  std::set<std::string> used_;
  size_t done_ = 0;
};

StatusOr<const GgufTensorInfo*> Importer::Tensor(const std::string& name, const std::vector<uint64_t>& shape) {
  const GgufTensorInfo* t = f_.FindTensor(name);
  if (t == nullptr) return Status::NotFound(f_.path() + ": tensor \"" + name + "\" is missing");
  std::vector<uint64_t> want(shape.rbegin(), shape.rend());  // ggml order
  if (t->ne != want) {
    auto str = [](const std::vector<uint64_t>& v) {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
      return s + "]";
    };
    return Status::Corruption(f_.path() + ": tensor \"" + name + "\" has shape " + str(t->ne) + " (ggml order), not " +
                              str(want) + " as the metadata implies");
  }
  RETURN_IF_ERROR(f_.CheckReadable(*t));
  used_.insert(name);
  return t;
}

StatusOr<std::vector<char>> Importer::Raw(const GgufTensorInfo& t, int unpermute_heads) {
  std::vector<char> raw(t.bytes);
  RETURN_IF_ERROR(f_.ReadRaw(t, raw.data()));
  if (unpermute_heads > 0) UnpermuteRows(raw.data(), t.rows(), GgmlRowBytes(t.type, t.ne[0]), unpermute_heads);
  if (o_.progress) o_.progress(static_cast<double>(++done_) / f_.tensors().size(), "tensors");
  return raw;
}

Status Importer::Matrix(const std::string& from, const std::string& to, std::vector<uint64_t> shape,
                        int unpermute_heads) {
  ASSIGN_OR_RETURN(const GgufTensorInfo* t, Tensor(from, shape));
  ASSIGN_OR_RETURN(std::vector<char> raw, Raw(*t, unpermute_heads));
  return w_.AddResidentTensor(to, std::move(shape), SourceRows{t->type, raw.data(), GgmlTypeName(t->type)});
}

Status Importer::Vector(const std::string& from, const std::string& to, uint64_t n, int unpermute_heads) {
  ASSIGN_OR_RETURN(const GgufTensorInfo* t, Tensor(from, {n}));
  ASSIGN_OR_RETURN(std::vector<float> v, f_.ReadF32(*t));
  // A bias is permuted like its matrix's rows: as n rows of one element.
  if (unpermute_heads > 0) UnpermuteRows(v.data(), n, sizeof(float), unpermute_heads);
  return w_.AddResidentTensor(to, {n}, v.data());
}

Status Importer::Config() {
  ASSIGN_OR_RETURN(std::string name, f_.GetString("general.architecture"));
  for (const GgufArch& a : kArchs) {
    if (name == a.name) arch_ = &a;
  }
  if (name == "gemma2" || name == "gemma3") {
    return Status::Unsupported(f_.path() + ": general.architecture \"" + name +
                               "\": GGUF does not record Gemma's query_pre_attn_scalar (llama.cpp infers it from "
                               "the model size); convert the Hugging Face checkpoint instead");
  }
  if (arch_ == nullptr) {
    return Status::Unsupported(f_.path() + ": general.architecture \"" + name + "\" is not supported (" +
                               KnownGgufArchs() + ")");
  }
  family_ = FindLlamaFamily(arch_->hf_class);
  if (family_ == nullptr) return Status::Internal(std::string("no architecture row for ") + arch_->hf_class);
  key_ = name + ".";
  auto integer = [&](const std::string& k, int64_t lo, int64_t hi, int* out, std::optional<int64_t> def = {}) {
    StatusOr<int64_t> v = def ? f_.GetIntOr(key_ + k, *def) : f_.GetInt(key_ + k);
    if (!v.ok()) return v.status();
    if (*v < lo || *v > hi) {
      return Status::Corruption(f_.path() + ": " + key_ + k + " " + std::to_string(*v) + " is outside [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    *out = static_cast<int>(*v);
    return Status::OK();
  };
  auto real = [&](const std::string& k, double def, float* out) {
    StatusOr<double> v = f_.GetRealOr(key_ + k, def);
    if (!v.ok()) return v.status();
    if (!std::isfinite(*v) || *v < 0) {
      return Status::Corruption(f_.path() + ": " + key_ + k + " must be a finite number >= 0");
    }
    *out = static_cast<float>(*v);
    return Status::OK();
  };
  constexpr int kMax = 1 << 20;
  c_.architecture = "llama";
  c_.source_architecture = std::string(arch_->hf_class) + " (GGUF " + name + ")";
  RETURN_IF_ERROR(integer("embedding_length", 1, kMax, &c_.dim));
  RETURN_IF_ERROR(integer("feed_forward_length", 1, kMax, &c_.ffn_dim));
  RETURN_IF_ERROR(integer("block_count", 1, 4096, &c_.n_layers));
  RETURN_IF_ERROR(integer("attention.head_count", 1, kMax, &c_.n_heads));
  RETURN_IF_ERROR(integer("attention.head_count_kv", 1, kMax, &c_.n_kv_heads, c_.n_heads));
  RETURN_IF_ERROR(integer("attention.key_length", 2, kMax, &c_.head_dim, c_.dim / c_.n_heads));
  int value_length = 0, rope_dims = 0;
  RETURN_IF_ERROR(integer("attention.value_length", 2, kMax, &value_length, c_.head_dim));
  RETURN_IF_ERROR(integer("rope.dimension_count", 2, kMax, &rope_dims, c_.head_dim));
  RETURN_IF_ERROR(integer("context_length", 1, 1 << 22, &c_.max_seq_len));
  RETURN_IF_ERROR(real("attention.layer_norm_rms_epsilon", 1e-5, &c_.norm_eps));
  RETURN_IF_ERROR(real("rope.freq_base", 10000.0, &c_.rope_theta));
  if (value_length != c_.head_dim) {
    return Status::Unsupported(f_.path() + ": attention.value_length differs from key_length");
  }
  if (rope_dims != c_.head_dim) {
    return Status::Unsupported(f_.path() + ": " + key_ + "rope.dimension_count " + std::to_string(rope_dims) +
                               " is not the head size " + std::to_string(c_.head_dim) + " (partial RoPE)");
  }
  if (c_.n_heads % c_.n_kv_heads != 0 || c_.head_dim % 2 != 0) {
    return Status::Corruption(f_.path() + ": head_count_kv must divide head_count and the head size be even");
  }
  if (family_->sliding_window) RETURN_IF_ERROR(integer("attention.sliding_window", 0, 1 << 22, &c_.sliding_window, 0));
  int experts = 0;  // Mixtral GGUFs say "llama" with an expert count
  RETURN_IF_ERROR(integer("expert_count", 0, kMax, &experts, 0));
  if (experts > 0) {
    return Status::Unsupported(f_.path() + ": " + key_ + "expert_count " + std::to_string(experts) +
                               ": mixture-of-experts GGUF files are not read yet; convert the Hugging Face "
                               "checkpoint instead");
  }
  std::string scaling;
  ASSIGN_OR_RETURN(scaling, f_.GetStringOr(key_ + "rope.scaling.type", "none"));
  if (scaling == "linear") {
    c_.rope_scaling = "linear";
    RETURN_IF_ERROR(real("rope.scaling.factor", 1.0, &c_.rope_factor));
    if (!(c_.rope_factor >= 1)) return Status::Corruption(f_.path() + ": rope.scaling.factor must be >= 1");
  } else if (scaling != "none") {
    return Status::Unsupported(f_.path() + ": " + key_ + "rope.scaling.type \"" + scaling +
                               "\" is not supported (none, linear; Llama 3's from rope_freqs)");
  }
  const GgufTensorInfo* embd = f_.FindTensor("token_embd.weight");
  if (embd == nullptr || embd->ne.size() != 2 || embd->ne[1] > (1u << 22)) {
    return Status::Corruption(f_.path() + ": token_embd.weight is missing or not a [dim, vocab] matrix");
  }
  c_.vocab_size = static_cast<int>(embd->ne[1]);
  c_.tied_classifier = f_.FindTensor("output.weight") == nullptr;
  c_.qkv_bias = family_->qkv_bias;
  c_.qk_norm = family_->qk_norm;
  c_.attention_bias = family_->reads_attention_bias && f_.FindTensor("blk.0.attn_output.bias") != nullptr;
  c_.rope_style = "half";
  c_.ffn_gated = true;
  c_.activation = "silu";
  return RopeFactors();
}

// Llama 3.1/3.2 GGUFs carry their RoPE scaling as per-frequency factors
// (rope_freqs.weight: the divisor of each frequency) instead of parameters.
// They are accepted when they are llama3 scaling with Meta's low and high
// frequency factors (1, 4), the largest factor as the factor, and an
// original context of rope.scaling.original_context_length, 8192, or a
// power of two that reproduces every factor; anything else is refused.
Status Importer::RopeFactors() {
  const GgufTensorInfo* t = f_.FindTensor("rope_freqs.weight");
  if (t == nullptr) return Status::OK();
  const uint64_t half = c_.head_dim / 2;
  if (t->ne != std::vector<uint64_t>{half} || t->type != GgmlType::kF32) {
    return Status::Corruption(f_.path() + ": rope_freqs.weight must be F32 [" + std::to_string(half) + "]");
  }
  used_.insert(t->name);
  ASSIGN_OR_RETURN(std::vector<float> factors, f_.ReadF32(*t));
  float largest = 1;
  for (float x : factors) {
    if (!(x >= 1 && x < 1e6f)) return Status::Corruption(f_.path() + ": rope_freqs.weight holds a factor below 1");
    largest = std::max(largest, x);
  }
  std::vector<int64_t> contexts;
  ASSIGN_OR_RETURN(int64_t meta, f_.GetIntOr(key_ + "rope.scaling.original_context_length", 0));
  if (meta > 0 && meta <= (1 << 22)) contexts.push_back(meta);
  contexts.push_back(8192);
  for (int64_t p = 16; p <= (1 << 22); p *= 2) contexts.push_back(p);
  const std::vector<float> base = Transformer::RopeFrequencies(c_);
  for (int64_t orig : contexts) {
    ModelConfig scaled = c_;
    scaled.rope_scaling = "llama3";
    scaled.rope_factor = largest;
    scaled.rope_low_freq_factor = 1;
    scaled.rope_high_freq_factor = 4;
    scaled.rope_original_context = static_cast<int>(orig);
    const std::vector<float> got = Transformer::RopeFrequencies(scaled);
    bool same = true;
    for (uint64_t i = 0; i < half && same; ++i) same = std::fabs(base[i] / factors[i] - got[i]) <= 1e-4f * got[i];
    if (same) {
      c_ = scaled;
      return Status::OK();
    }
  }
  return Status::Unsupported(f_.path() + ": rope_freqs.weight is not llama3 RoPE scaling (factor " +
                             std::to_string(largest) + ", low 1, high 4) for any original context");
}

Status Importer::Types(StorageTypes* t) {
  if (!o_.dtype.empty() && o_.dtype != "auto") {
    ASSIGN_OR_RETURN(*t, StorageTypesFor(o_));
    return Status::OK();
  }
  // The file's own types: the nearest llmflash type of each group's
  // representative tensor; explicit overrides still apply.
  auto closest = [&](const std::string& name, DType def) {
    const GgufTensorInfo* x = f_.FindTensor(name);
    return x == nullptr ? def : ClosestDType(x->type);
  };
  t->resident = closest("blk.0.attn_q.weight", closest("blk.0.attn_qkv.weight", DType::kF16));
  t->ffn = closest("blk.0.ffn_gate.weight", closest("blk.0.ffn_up.weight", DType::kF16));
  DType embd = closest("token_embd.weight", t->resident), out = closest("output.weight", embd);
  t->embedding = BytesPerElement(out) > BytesPerElement(embd) ? out : embd;
  ConvertOptions o = o_;
  o.dtype = DTypeName(t->resident);
  if (o.ffn_dtype.empty()) o.ffn_dtype = DTypeName(t->ffn);
  if (o.embedding_dtype.empty()) o.embedding_dtype = DTypeName(t->embedding);
  ASSIGN_OR_RETURN(*t, StorageTypesFor(o));
  return Status::OK();
}

Status Importer::CheckNoStrayTensors() {
  for (const GgufTensorInfo& t : f_.tensors()) {
    if (used_.count(t.name) == 0) {
      return Status::Unsupported(f_.path() + ": tensor \"" + t.name + "\" is not part of " + arch_->name +
                                 " as its metadata describes it; converting would drop it");
    }
  }
  return Status::OK();
}

Status Importer::Tokenizer(ModelWriter* w) {
  StatusOr<GgufTokenizer> tok = TokenizerFromGguf(f_);
  if (!tok.ok()) {
    if (tok.status().code() != StatusCode::kNotFound) return tok.status();
    if (o_.note) o_.note(tok.status().message() + ": the model converts without a tokenizer (logits work)");
    return Status::OK();
  }
  if (tok->vocab_size > c_.vocab_size) {
    return Status::Corruption(f_.path() + ": the tokenizer has " + std::to_string(tok->vocab_size) +
                              " tokens, token_embd.weight rows for " + std::to_string(c_.vocab_size));
  }
  RETURN_IF_ERROR(w->AddTokenizerJson(tok->tokenizer_json, tok->bos_id, tok->stop_ids));
  if (tok->chat_template.empty()) return Status::OK();
  auto parsed = ChatTemplate::Parse(tok->chat_template, f_.path() + ": tokenizer.chat_template");
  if (!parsed.ok()) {
    if (o_.note) o_.note(parsed.status().message() + "; chat is off for this model");
    return Status::OK();
  }
  return w->AddChatTemplate(tok->chat_template, tok->bos_text, tok->eos_text);
}

Status Importer::Run() {
  RETURN_IF_ERROR(Config());
  StorageTypes types;
  RETURN_IF_ERROR(Types(&types));
  // Every tensor is checked before anything is written.
  const uint64_t d = c_.dim, V = c_.vocab_size, n = c_.ffn_dim, hd = c_.head_dim;
  const uint64_t q = static_cast<uint64_t>(c_.n_heads) * hd, kv = static_cast<uint64_t>(c_.n_kv_heads) * hd;
  const bool fused = family_->fused;
  const int qh = arch_->permuted_qk ? c_.n_heads : 0, kh = arch_->permuted_qk ? c_.n_kv_heads : 0;
  RETURN_IF_ERROR(Tensor("token_embd.weight", {V, d}).status());
  RETURN_IF_ERROR(Tensor("output_norm.weight", {d}).status());
  if (!c_.tied_classifier) RETURN_IF_ERROR(Tensor("output.weight", {V, d}).status());
  for (int l = 0; l < c_.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (const char* v : {"attn_norm", "ffn_norm"}) RETURN_IF_ERROR(Tensor(p + v + ".weight", {d}).status());
    RETURN_IF_ERROR(Tensor(p + "attn_output.weight", {d, q}).status());
    if (fused) {
      RETURN_IF_ERROR(Tensor(p + "attn_qkv.weight", {q + 2 * kv, d}).status());
      RETURN_IF_ERROR(Tensor(p + "ffn_up.weight", {2 * n, d}).status());
    } else {
      RETURN_IF_ERROR(Tensor(p + "attn_q.weight", {q, d}).status());
      RETURN_IF_ERROR(Tensor(p + "attn_k.weight", {kv, d}).status());
      RETURN_IF_ERROR(Tensor(p + "attn_v.weight", {kv, d}).status());
      RETURN_IF_ERROR(Tensor(p + "ffn_gate.weight", {n, d}).status());
      RETURN_IF_ERROR(Tensor(p + "ffn_up.weight", {n, d}).status());
    }
    RETURN_IF_ERROR(Tensor(p + "ffn_down.weight", {d, n}).status());
    if (c_.qkv_bias || c_.attention_bias) {
      RETURN_IF_ERROR(Tensor(p + "attn_q.bias", {q}).status());
      RETURN_IF_ERROR(Tensor(p + "attn_k.bias", {kv}).status());
      RETURN_IF_ERROR(Tensor(p + "attn_v.bias", {kv}).status());
    }
    if (c_.attention_bias) RETURN_IF_ERROR(Tensor(p + "attn_output.bias", {d}).status());
    if (c_.qk_norm) {
      RETURN_IF_ERROR(Tensor(p + "attn_q_norm.weight", {hd}).status());
      RETURN_IF_ERROR(Tensor(p + "attn_k_norm.weight", {hd}).status());
    }
  }
  RETURN_IF_ERROR(CheckNoStrayTensors());

  RETURN_IF_ERROR(w_.Begin(o_.output, c_, types, o_.note));
  RETURN_IF_ERROR(Matrix("token_embd.weight", "tok_embeddings", {V, d}));
  for (int l = 0; l < c_.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".", to = "layers." + std::to_string(l) + ".";
    RETURN_IF_ERROR(Vector(p + "attn_norm.weight", to + "attention_norm", d));
    if (fused) {  // rows [q | k | v]
      ASSIGN_OR_RETURN(const GgufTensorInfo* t, Tensor(p + "attn_qkv.weight", {q + 2 * kv, d}));
      ASSIGN_OR_RETURN(std::vector<char> raw, Raw(*t));
      const uint64_t rb = GgmlRowBytes(t->type, d);
      const char* src = GgmlTypeName(t->type);
      RETURN_IF_ERROR(w_.AddResidentTensor(to + "wq", {q, d}, SourceRows{t->type, raw.data(), src}));
      RETURN_IF_ERROR(w_.AddResidentTensor(to + "wk", {kv, d}, SourceRows{t->type, raw.data() + q * rb, src}));
      RETURN_IF_ERROR(
          w_.AddResidentTensor(to + "wv", {kv, d}, SourceRows{t->type, raw.data() + (q + kv) * rb, src}));
    } else {
      RETURN_IF_ERROR(Matrix(p + "attn_q.weight", to + "wq", {q, d}, qh));
      RETURN_IF_ERROR(Matrix(p + "attn_k.weight", to + "wk", {kv, d}, kh));
      RETURN_IF_ERROR(Matrix(p + "attn_v.weight", to + "wv", {kv, d}));
    }
    RETURN_IF_ERROR(Matrix(p + "attn_output.weight", to + "wo", {d, q}));
    if (c_.qkv_bias || c_.attention_bias) {
      RETURN_IF_ERROR(Vector(p + "attn_q.bias", to + "bq", q, qh));
      RETURN_IF_ERROR(Vector(p + "attn_k.bias", to + "bk", kv, kh));
      RETURN_IF_ERROR(Vector(p + "attn_v.bias", to + "bv", kv));
    }
    if (c_.attention_bias) RETURN_IF_ERROR(Vector(p + "attn_output.bias", to + "bo", d));
    if (c_.qk_norm) {
      RETURN_IF_ERROR(Vector(p + "attn_q_norm.weight", to + "q_norm", hd));
      RETURN_IF_ERROR(Vector(p + "attn_k_norm.weight", to + "k_norm", hd));
    }
    RETURN_IF_ERROR(Vector(p + "ffn_norm.weight", to + "ffn_norm", d));
  }
  RETURN_IF_ERROR(Vector("output_norm.weight", "norm", d));
  if (!c_.tied_classifier) RETURN_IF_ERROR(Matrix("output.weight", "output", {V, d}));
  for (int l = 0; l < c_.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    ASSIGN_OR_RETURN(const GgufTensorInfo* up_t, Tensor(p + "ffn_up.weight", {fused ? 2 * n : n, d}));
    ASSIGN_OR_RETURN(std::vector<char> up, Raw(*up_t));
    std::vector<char> gate;
    SourceRows g, u{up_t->type, up.data(), GgmlTypeName(up_t->type)};
    if (fused) {  // rows [gate | up]
      g = u;
      u.data = up.data() + n * GgmlRowBytes(up_t->type, d);
    } else {
      ASSIGN_OR_RETURN(const GgufTensorInfo* gate_t, Tensor(p + "ffn_gate.weight", {n, d}));
      ASSIGN_OR_RETURN(gate, Raw(*gate_t));
      g = SourceRows{gate_t->type, gate.data(), GgmlTypeName(gate_t->type)};
    }
    ASSIGN_OR_RETURN(const GgufTensorInfo* down_t, Tensor(p + "ffn_down.weight", {d, n}));
    ASSIGN_OR_RETURN(std::vector<float> down, f_.ReadF32(*down_t));
    RETURN_IF_ERROR(w_.AddFfnLayer(l, g, u, down.data(), GgmlTypeName(down_t->type)));
  }
  RETURN_IF_ERROR(Tokenizer(&w_));
  if (o_.note) {
    o_.note("carried " + std::to_string(w_.carried_bytes()) + " bytes of blocks unchanged from " + f_.path());
    for (const auto& [what, e] : w_.requant_errors()) {
      char line[256];
      std::snprintf(line, sizeof line, "%s: relative RMS error %.3g%% over %llu values", what.c_str(),
                    100 * e.relative_rms(), static_cast<unsigned long long>(e.elements));
      o_.note(line);
    }
  }
  return w_.Finish();
}

}  // namespace

Status ConvertGguf(const ConvertOptions& o) {
  if (o.input.empty() || o.output.empty()) {
    return Status::InvalidArgument("convert needs an input GGUF file and an output directory");
  }
  ASSIGN_OR_RETURN(GgufFile f, GgufFile::Open(o.input));
  Importer importer(f, o);
  return importer.Run();
}

}  // namespace llmflash

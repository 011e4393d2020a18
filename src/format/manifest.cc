// manifest.json parsing, serialization and validation against the files.
#include "format/manifest.h"

#include <nlohmann/json.hpp>

#include "format/json_reader.h"
#include "format/predictor_info.h"
#include "util/checked_math.h"
#include "util/file.h"
#include "util/macros.h"
#include <cstdio>

namespace llmflash {
namespace {

using json = nlohmann::json;

// Upper bounds that keep derived sizes far from overflow and reject absurd
// shapes before anything is allocated from them.
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxVocab = 1 << 22;
constexpr int64_t kMaxSeq = 1 << 22;

bool SafeName(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name != "." &&
         name != "..";
}

Status ParseConfig(const json& j, const std::string& path, ModelConfig* c) {
  JsonReader r(j, path + ": config");
  RETURN_IF_ERROR(r.String("architecture", &c->architecture));
  if (c->architecture != "llama" && c->architecture != "opt") {
    return Status::Unsupported(path + ": unknown architecture \"" + c->architecture + "\"");
  }
  RETURN_IF_ERROR(r.Int("dim", 1, kMaxDim, &c->dim));
  RETURN_IF_ERROR(r.Int("ffn_dim", 1, kMaxDim, &c->ffn_dim));
  RETURN_IF_ERROR(r.Int("n_layers", 1, kMaxLayers, &c->n_layers));
  RETURN_IF_ERROR(r.Int("n_heads", 1, kMaxDim, &c->n_heads));
  RETURN_IF_ERROR(r.Int("n_kv_heads", 1, kMaxDim, &c->n_kv_heads));
  RETURN_IF_ERROR(r.Int("head_dim", 1, kMaxDim, &c->head_dim));
  RETURN_IF_ERROR(r.Int("vocab_size", 1, kMaxVocab, &c->vocab_size));
  RETURN_IF_ERROR(r.Int("max_seq_len", 1, kMaxSeq, &c->max_seq_len));
  RETURN_IF_ERROR(r.Float("norm_eps", &c->norm_eps));
  RETURN_IF_ERROR(r.Float("rope_theta", &c->rope_theta));
  RETURN_IF_ERROR(r.String("rope_style", &c->rope_style));
  RETURN_IF_ERROR(r.Bool("ffn_gated", &c->ffn_gated));
  RETURN_IF_ERROR(r.String("activation", &c->activation));
  RETURN_IF_ERROR(r.Bool("tied_classifier", &c->tied_classifier));
  if (j.contains("sliding_window")) {
    RETURN_IF_ERROR(r.Int("sliding_window", 0, kMaxSeq, &c->sliding_window));
  }
  // Optional keys (added for OPT); absent means Llama's choice.
  if (j.contains("norm")) RETURN_IF_ERROR(r.String("norm", &c->norm));
  if (j.contains("pre_norm")) RETURN_IF_ERROR(r.Bool("pre_norm", &c->pre_norm));
  if (j.contains("attention_bias")) RETURN_IF_ERROR(r.Bool("attention_bias", &c->attention_bias));
  if (j.contains("ffn_bias")) RETURN_IF_ERROR(r.Bool("ffn_bias", &c->ffn_bias));
  if (j.contains("positions")) RETURN_IF_ERROR(r.String("positions", &c->positions));
  if (j.contains("position_offset")) RETURN_IF_ERROR(r.Int("position_offset", 0, 1 << 20, &c->position_offset));
  if (j.contains("embed_dim")) RETURN_IF_ERROR(r.Int("embed_dim", 0, kMaxDim, &c->embed_dim));
  if (j.contains("final_norm")) RETURN_IF_ERROR(r.Bool("final_norm", &c->final_norm));
  if (c->norm != "rmsnorm" && c->norm != "layernorm") return r.Bad("norm", "must be rmsnorm or layernorm");
  if (c->positions != "rope" && c->positions != "learned") return r.Bad("positions", "must be rope or learned");
  if (c->n_heads % c->n_kv_heads != 0) {
    return r.Bad("n_kv_heads", "must divide n_heads");
  }
  if (c->head_dim % 2 != 0) return r.Bad("head_dim", "must be even for RoPE");
  if (!(c->norm_eps > 0 && c->norm_eps < 1)) return r.Bad("norm_eps", "must be in (0, 1)");
  if (!(c->rope_theta > 1)) return r.Bad("rope_theta", "must be > 1");
  if (c->rope_style != "interleaved" && c->rope_style != "half") {
    return r.Bad("rope_style", "must be \"interleaved\" or \"half\"");
  }
  if (j.contains("activation_param")) RETURN_IF_ERROR(r.Float("activation_param", &c->activation_param));
  auto act = Activation::Parse(c->activation, c->activation_param);
  if (!act.ok()) return Status::Unsupported(path + ": " + act.status().message());
  if (j.contains("qkv_bias")) RETURN_IF_ERROR(r.Bool("qkv_bias", &c->qkv_bias));
  if (j.contains("qk_norm")) RETURN_IF_ERROR(r.Bool("qk_norm", &c->qk_norm));
  if (j.contains("rope_scaling")) {
    RETURN_IF_ERROR(r.String("rope_scaling", &c->rope_scaling));
    RETURN_IF_ERROR(r.Float("rope_factor", &c->rope_factor));
    RETURN_IF_ERROR(r.Float("rope_low_freq_factor", &c->rope_low_freq_factor));
    RETURN_IF_ERROR(r.Float("rope_high_freq_factor", &c->rope_high_freq_factor));
    RETURN_IF_ERROR(r.Int("rope_original_context", 1, kMaxSeq, &c->rope_original_context));
  }
  if (c->rope_scaling != "none" && c->rope_scaling != "linear" && c->rope_scaling != "llama3") {
    return Status::Unsupported(path + ": rope_scaling \"" + c->rope_scaling + "\" (none, linear, llama3)");
  }
  if (!(c->rope_factor >= 1) || !(c->rope_low_freq_factor > 0) || !(c->rope_high_freq_factor > c->rope_low_freq_factor)) {
    return r.Bad("rope_factor", "factors must be >= 1 and low < high");
  }
  if (j.contains("source_architecture")) RETURN_IF_ERROR(r.String("source_architecture", &c->source_architecture));
  if (j.contains("embed_scale")) RETURN_IF_ERROR(r.Bool("embed_scale", &c->embed_scale));
  if (j.contains("sandwich_norm")) RETURN_IF_ERROR(r.Bool("sandwich_norm", &c->sandwich_norm));
  if (j.contains("attn_softcap")) RETURN_IF_ERROR(r.Float("attn_softcap", &c->attn_softcap));
  if (j.contains("final_softcap")) RETURN_IF_ERROR(r.Float("final_softcap", &c->final_softcap));
  if (j.contains("query_scale")) RETURN_IF_ERROR(r.Float("query_scale", &c->query_scale));
  if (j.contains("sliding_window_period")) {
    RETURN_IF_ERROR(r.Int("sliding_window_period", 0, kMaxLayers, &c->sliding_window_period));
  }
  if (j.contains("rope_local_theta")) RETURN_IF_ERROR(r.Float("rope_local_theta", &c->rope_local_theta));
  if (!(c->attn_softcap >= 0) || !(c->final_softcap >= 0) || !(c->query_scale >= 0) || !(c->rope_local_theta >= 0) ||
      (c->rope_local_theta > 0 && c->rope_local_theta <= 1)) {
    return r.Bad("attn_softcap", "softcaps, query_scale and rope_local_theta must be >= 0 (a base > 1)");
  }
  if (j.contains("n_experts")) {
    RETURN_IF_ERROR(r.Int("n_experts", 0, kMaxDim, &c->n_experts));
    RETURN_IF_ERROR(r.Int("n_experts_used", 0, kMaxDim, &c->n_experts_used));
    RETURN_IF_ERROR(r.Bool("expert_norm_topk", &c->expert_norm_topk));
  }
  if (c->n_experts > 0) {
    if (c->ffn_dim % c->n_experts != 0) return r.Bad("n_experts", "must divide ffn_dim (experts of equal size)");
    if (c->n_experts_used < 1 || c->n_experts_used > c->n_experts) {
      return r.Bad("n_experts_used", "must be in [1, n_experts]");
    }
    if (!c->ffn_gated || c->ffn_bias || c->architecture != "llama") {
      return r.Bad("n_experts", "experts are gated FFNs without biases in a llama-architecture model");
    }
  }
  return Status::OK();
}

Status ParseBody(const json& j, const std::string& path, Manifest* m) {
  JsonReader top(j, path);
  std::string format;
  RETURN_IF_ERROR(top.String("format", &format));
  if (format != "llmflash") return top.Bad("format", "must be \"llmflash\"");
  RETURN_IF_ERROR(top.Int("format_version", 0, 1 << 30, &m->format_version));
  if (m->format_version != kFormatVersion) {
    return Status::Unsupported(path + ": format_version " +
                               std::to_string(m->format_version) +
                               " is not supported (this library reads " +
                               std::to_string(kFormatVersion) + ")");
  }
  const json* v;
  RETURN_IF_ERROR(top.Get("config", &v));
  RETURN_IF_ERROR(ParseConfig(*v, path, &m->config));
  std::string dtype;
  RETURN_IF_ERROR(top.String("dtype", &dtype));
  auto dt = ParseDType(dtype);
  if (!dt) return top.Bad("dtype", "\"" + dtype + "\" is not " + DTypeChoices());
  m->dtype = *dt;

  RETURN_IF_ERROR(top.Get("tokenizer", &v));
  JsonReader tok(*v, path + ": tokenizer");
  RETURN_IF_ERROR(tok.String("type", &m->tokenizer.type));
  RETURN_IF_ERROR(tok.String("file", &m->tokenizer.file));
  const bool no_tokenizer = m->tokenizer.type == "none";
  RETURN_IF_ERROR(tok.Int("bos_id", -1, m->config.vocab_size - 1, &m->tokenizer.bos_id));
  RETURN_IF_ERROR(tok.Int("eos_id", 0, m->config.vocab_size - 1, &m->tokenizer.eos_id));
  m->tokenizer.stop_ids.clear();
  if (v->contains("stop_ids")) {
    const json& ids = (*v)["stop_ids"];
    if (!ids.is_array() || ids.empty() || ids.size() > 1024) {
      return Status::Corruption(path + ": tokenizer.stop_ids must be a list of 1 to 1024 token ids");
    }
    for (const json& id : ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= m->config.vocab_size) {
        return Status::Corruption(path + ": tokenizer.stop_ids holds something that is not a token id");
      }
      m->tokenizer.stop_ids.push_back(id.get<int>());
    }
  } else {
    m->tokenizer.stop_ids.push_back(m->tokenizer.eos_id);
  }
  if (v->contains("chat_template")) {
    RETURN_IF_ERROR(tok.String("chat_template", &m->tokenizer.chat_template));
    if (v->contains("bos_text")) RETURN_IF_ERROR(tok.String("bos_text", &m->tokenizer.bos_text));
    if (v->contains("eos_text")) RETURN_IF_ERROR(tok.String("eos_text", &m->tokenizer.eos_text));
  }

  RETURN_IF_ERROR(top.Get("files", &v));
  if (!v->is_array() || v->size() > 64) return top.Bad("files", "must be a list of at most 64 files");
  for (const json& f : *v) {
    JsonReader fr(f, path + ": files[]");
    FileEntry e;
    RETURN_IF_ERROR(fr.String("name", &e.name));
    if (!SafeName(e.name)) return fr.Bad("name", "\"" + e.name + "\" is not a plain file name");
    RETURN_IF_ERROR(fr.U64("size", &e.size));
    uint64_t crc;
    RETURN_IF_ERROR(fr.U64("crc32c", &crc));
    if (crc > 0xFFFFFFFFull) return fr.Bad("crc32c", "does not fit 32 bits");
    e.crc32c = static_cast<uint32_t>(crc);
    m->files.push_back(e);
  }
  if (!m->tokenizer.chat_template.empty() &&
      (!SafeName(m->tokenizer.chat_template) || !m->FindFile(m->tokenizer.chat_template))) {
    return Status::Corruption(path + ": chat template \"" + m->tokenizer.chat_template + "\" is not listed in files");
  }
  if (!no_tokenizer && !m->FindFile(m->tokenizer.file)) {
    return Status::Corruption(path + ": tokenizer file \"" + m->tokenizer.file + "\" is not listed in files");
  }

  RETURN_IF_ERROR(top.Get("resident", &v));
  JsonReader res(*v, path + ": resident");
  RETURN_IF_ERROR(res.String("file", &m->resident_file));
  if (!m->FindFile(m->resident_file)) return res.Bad("file", "is not listed in files");
  const json* tensors;
  RETURN_IF_ERROR(res.Get("tensors", &tensors));
  if (!tensors->is_array() || tensors->size() > 100000) return res.Bad("tensors", "must be a list");
  for (const json& t : *tensors) {
    JsonReader tr(t, path + ": resident.tensors[]");
    TensorEntry e;
    RETURN_IF_ERROR(tr.String("name", &e.name));
    RETURN_IF_ERROR(tr.U64("offset", &e.offset));
    e.dtype = m->dtype;
    if (t.contains("dtype")) {
      std::string td;
      RETURN_IF_ERROR(tr.String("dtype", &td));
      auto parsed = ParseDType(td);
      if (!parsed) return tr.Bad("dtype", "\"" + td + "\" is not " + DTypeChoices());
      e.dtype = *parsed;
    }
    const json* shape;
    RETURN_IF_ERROR(tr.Get("shape", &shape));
    if (!shape->is_array() || shape->empty() || shape->size() > 4) {
      return tr.Bad("shape", "must be a list of 1 to 4 dimensions");
    }
    uint64_t rows = 1;
    for (const json& d : *shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() == 0 || d.get<uint64_t>() > (1ull << 32)) {
        return tr.Bad("shape", "has a dimension that is not in [1, 2^32]");
      }
      e.shape.push_back(d.get<uint64_t>());
      if (e.shape.size() < shape->size() && !CheckedMul(rows, e.shape.back(), &rows)) {
        return tr.Bad("shape", "overflows");
      }
    }
    // Rows of the last dimension, each whole blocks of the tensor's type.
    const uint64_t cols = e.shape.back();
    if (!FitsBlocks(e.dtype, cols)) {
      return tr.Bad("shape", "has rows of " + std::to_string(cols) + " elements, not whole blocks of " +
                                 DTypeName(e.dtype));
    }
    if (!CheckedMul(rows, RowBytes(e.dtype, cols), &e.bytes)) return tr.Bad("shape", "overflows");
    m->tensors.push_back(std::move(e));
  }

  RETURN_IF_ERROR(top.Get("bundle", &v));
  JsonReader b(*v, path + ": bundle");
  RETURN_IF_ERROR(b.String("file", &m->bundle.file));
  if (!m->FindFile(m->bundle.file)) return b.Bad("file", "is not listed in files");
  // The records' type; directories written before it was recorded store
  // records in the model's dtype.
  m->ffn_dtype = m->dtype;
  if (v->contains("dtype")) {
    std::string fd;
    RETURN_IF_ERROR(b.String("dtype", &fd));
    auto parsed = ParseDType(fd);
    if (!parsed) return b.Bad("dtype", "\"" + fd + "\" is not " + DTypeChoices());
    m->ffn_dtype = *parsed;
  }
  if (!FitsBlocks(m->ffn_dtype, m->config.dim)) {
    return b.Bad("dtype", std::string(DTypeName(m->ffn_dtype)) + " records need dim to be whole blocks; dim is " +
                              std::to_string(m->config.dim));
  }
  RETURN_IF_ERROR(b.U64("record_bytes", &m->bundle.record_bytes));
  RETURN_IF_ERROR(b.U64("record_stride", &m->bundle.record_stride));
  uint64_t expect = RowBytes(m->ffn_dtype, m->config.dim) * (m->config.ffn_gated ? 3 : 2);
  if (m->bundle.record_bytes != expect) {
    return b.Bad("record_bytes", "is " + std::to_string(m->bundle.record_bytes) +
                                     ", expected " + std::to_string(expect) + " for this config");
  }
  if (m->bundle.record_stride < m->bundle.record_bytes || m->bundle.record_stride % 64 != 0 ||
      m->bundle.record_stride > m->bundle.record_bytes + kMaxDim) {
    return b.Bad("record_stride", "must be a multiple of 64 not below record_bytes");
  }
  const json* layers;
  RETURN_IF_ERROR(b.Get("layer_offsets", &layers));
  if (!layers->is_array() || layers->size() != static_cast<size_t>(m->config.n_layers)) {
    return b.Bad("layer_offsets", "must list one offset per layer");
  }
  for (const json& o : *layers) {
    if (!o.is_number_unsigned() || o.get<uint64_t>() % 4096 != 0) {
      return b.Bad("layer_offsets", "must be 4096-aligned byte offsets");
    }
    m->bundle.layer_offsets.push_back(o.get<uint64_t>());
  }
  if (j.contains("predictor")) {
    RETURN_IF_ERROR(ParsePredictorInfo(j["predictor"], path, *m, &m->predictor));
  }
  return Status::OK();
}

json ConfigJson(const ModelConfig& c) {
  json j{{"architecture", c.architecture}, {"dim", c.dim}, {"ffn_dim", c.ffn_dim},
              {"n_layers", c.n_layers}, {"n_heads", c.n_heads}, {"n_kv_heads", c.n_kv_heads},
              {"head_dim", c.head_dim}, {"vocab_size", c.vocab_size},
              {"max_seq_len", c.max_seq_len}, {"norm_eps", c.norm_eps},
              {"rope_theta", c.rope_theta}, {"rope_style", c.rope_style},
              {"ffn_gated", c.ffn_gated}, {"activation", c.activation},
              {"tied_classifier", c.tied_classifier}, {"sliding_window", c.sliding_window},
              {"norm", c.norm}, {"pre_norm", c.pre_norm}, {"attention_bias", c.attention_bias},
              {"ffn_bias", c.ffn_bias}, {"positions", c.positions},
              {"position_offset", c.position_offset}, {"embed_dim", c.embed_dim},
              {"final_norm", c.final_norm}, {"activation_param", c.activation_param},
              {"qkv_bias", c.qkv_bias}, {"qk_norm", c.qk_norm}, {"rope_scaling", c.rope_scaling},
              {"rope_factor", c.rope_factor}, {"rope_low_freq_factor", c.rope_low_freq_factor},
              {"rope_high_freq_factor", c.rope_high_freq_factor},
              {"rope_original_context", c.rope_original_context},
              {"source_architecture", c.source_architecture}, {"embed_scale", c.embed_scale},
              {"sandwich_norm", c.sandwich_norm}, {"attn_softcap", c.attn_softcap},
              {"final_softcap", c.final_softcap}, {"query_scale", c.query_scale},
              {"sliding_window_period", c.sliding_window_period}, {"rope_local_theta", c.rope_local_theta}};
  if (c.n_experts > 0) {  // dense manifests stay as they were
    j["n_experts"] = c.n_experts;
    j["n_experts_used"] = c.n_experts_used;
    j["expert_norm_topk"] = c.expert_norm_topk;
  }
  return j;
}

}  // namespace

const FileEntry* Manifest::FindFile(const std::string& name) const {
  for (const auto& f : files) if (f.name == name) return &f;
  return nullptr;
}

const TensorEntry* Manifest::FindTensor(const std::string& name) const {
  for (const auto& t : tensors) if (t.name == name) return &t;
  return nullptr;
}

StatusOr<Manifest> ParseManifest(const std::string& text, const std::string& path) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption(path + ": not valid JSON");
  Manifest m;
  try {
    RETURN_IF_ERROR(ParseBody(j, path, &m));
  } catch (const json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
  return m;
}

std::string SerializeManifest(const Manifest& m) {
  json files = json::array();
  for (const auto& f : m.files) {
    files.push_back({{"name", f.name}, {"size", f.size}, {"crc32c", f.crc32c}});
  }
  json tensors = json::array();
  for (const auto& t : m.tensors) {
    tensors.push_back({{"name", t.name}, {"offset", t.offset}, {"shape", t.shape},
                       {"dtype", DTypeName(t.dtype)}});
  }
  json tok = {{"type", m.tokenizer.type}, {"file", m.tokenizer.file},
              {"bos_id", m.tokenizer.bos_id}, {"eos_id", m.tokenizer.eos_id},
              {"stop_ids", m.tokenizer.stop_ids.empty() ? std::vector<int>{m.tokenizer.eos_id} : m.tokenizer.stop_ids}};
  if (!m.tokenizer.chat_template.empty()) {
    tok["chat_template"] = m.tokenizer.chat_template;
    tok["bos_text"] = m.tokenizer.bos_text;
    tok["eos_text"] = m.tokenizer.eos_text;
  }
  json j = {{"format", "llmflash"},
            {"format_version", m.format_version},
            {"config", ConfigJson(m.config)},
            {"dtype", DTypeName(m.dtype)},
            {"tokenizer", tok},
            {"files", files},
            {"resident", {{"file", m.resident_file}, {"tensors", tensors}}},
            {"bundle", {{"file", m.bundle.file}, {"dtype", DTypeName(m.ffn_dtype)},
                        {"record_bytes", m.bundle.record_bytes},
                        {"record_stride", m.bundle.record_stride},
                        {"layer_offsets", m.bundle.layer_offsets}}}};
  if (m.predictor.present) j["predictor"] = PredictorInfoJson(m.predictor);
  return j.dump(1) + "\n";
}

Status ValidateAgainstFiles(const Manifest& m, const std::string& dir) {
  for (const auto& f : m.files) {
    std::string path = JoinPath(dir, f.name);
    ASSIGN_OR_RETURN(uint64_t size, FileSize(path));
    if (size != f.size) {
      return Status::Corruption(path + ": size is " + std::to_string(size) +
                                " bytes, the manifest says " + std::to_string(f.size));
    }
  }
  const FileEntry* res = m.FindFile(m.resident_file);
  for (const auto& t : m.tensors) {
    uint64_t end;
    if (!CheckedAdd(t.offset, t.bytes, &end) || end > res->size || t.offset % 4 != 0) {
      return Status::Corruption(JoinPath(dir, m.resident_file) + ": tensor \"" + t.name +
                                "\" at offset " + std::to_string(t.offset) +
                                " lies outside the file or is misaligned");
    }
  }
  const FileEntry* bundle = m.FindFile(m.bundle.file);
  for (size_t l = 0; l < m.bundle.layer_offsets.size(); ++l) {
    uint64_t bytes, end;
    if (!CheckedMul(m.bundle.record_stride, m.config.ffn_dim, &bytes) ||
        !CheckedAdd(m.bundle.layer_offsets[l], bytes, &end) || end > bundle->size) {
      return Status::Corruption(JoinPath(dir, m.bundle.file) + ": layer " + std::to_string(l) +
                                " extends past the end of the file");
    }
  }
  if (m.predictor.present) {
    const FileEntry* pf = m.FindFile(m.predictor.file);
    for (size_t l = 0; l < m.predictor.layers.size(); ++l) {
      const PredictorLayerInfo& p = m.predictor.layers[l];
      uint64_t end;
      uint64_t bytes = PredictorInfo::LayerBytes(p.form, m.config.ffn_gated,
                                                 m.config.dim, m.config.ffn_dim, p.rank);
      if (!CheckedAdd(p.offset, bytes, &end) || end > pf->size || p.offset % 4 != 0) {
        return Status::Corruption(JoinPath(dir, m.predictor.file) + ": layer " +
                                  std::to_string(l) + " lies outside the file");
      }
    }
  }
  return Status::OK();
}

Status WriteManifest(const Manifest& m, const std::string& dir) {
  std::string text = SerializeManifest(m);
  std::string tmp = JoinPath(dir, kManifestName) + ".tmp";
  WritableFile f;
  RETURN_IF_ERROR(f.Open(tmp));
  RETURN_IF_ERROR(f.Append(text.data(), text.size()));
  RETURN_IF_ERROR(f.Close());
  if (std::rename(tmp.c_str(), JoinPath(dir, kManifestName).c_str()) != 0) {
    return Status::IOError(JoinPath(dir, kManifestName) + ": rename failed");
  }
  return Status::OK();
}

StatusOr<Manifest> LoadManifest(const std::string& dir) {
  std::string path = JoinPath(dir, kManifestName);
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxManifestBytes));
  ASSIGN_OR_RETURN(Manifest m, ParseManifest(text, path));
  RETURN_IF_ERROR(ValidateAgainstFiles(m, dir));
  return m;
}

}  // namespace llmflash

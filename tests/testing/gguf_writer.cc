// GGUF writer for tests, and the llama.cpp-style export of HF fixtures.
#include "testing/gguf_writer.h"

#include <cmath>
#include <cstring>

#include "format/safetensors.h"
#include "util/file.h"
#include "util/half.h"
#include "util/macros.h"
#include "util/quantize.h"

namespace llmflash::testing {
namespace {

template <typename T>
void Put(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof v);
}
void PutStr(std::string* s, const std::string& v) {
  Put<uint64_t>(s, v.size());
  s->append(v);
}

}  // namespace

void GgufBuilder::RawKv(const std::string& key, uint32_t type, const std::string& value) {
  kv_.push_back({key, type, value});
}
void GgufBuilder::U32(const std::string& key, uint32_t v) { std::string s; Put(&s, v); RawKv(key, 4, s); }
void GgufBuilder::I32(const std::string& key, int32_t v) { std::string s; Put(&s, v); RawKv(key, 5, s); }
void GgufBuilder::F32(const std::string& key, float v) { std::string s; Put(&s, v); RawKv(key, 6, s); }
void GgufBuilder::Bool(const std::string& key, bool v) { std::string s; Put<uint8_t>(&s, v); RawKv(key, 7, s); }
void GgufBuilder::Str(const std::string& key, const std::string& v) { std::string s; PutStr(&s, v); RawKv(key, 8, s); }
void GgufBuilder::StrArray(const std::string& key, const std::vector<std::string>& v) {
  std::string s;
  Put<uint32_t>(&s, 8);
  Put<uint64_t>(&s, v.size());
  for (const std::string& x : v) PutStr(&s, x);
  RawKv(key, 9, s);
}
void GgufBuilder::F32Array(const std::string& key, const std::vector<float>& v) {
  std::string s;
  Put<uint32_t>(&s, 6);
  Put<uint64_t>(&s, v.size());
  for (float x : v) Put(&s, x);
  RawKv(key, 9, s);
}
void GgufBuilder::I32Array(const std::string& key, const std::vector<int32_t>& v) {
  std::string s;
  Put<uint32_t>(&s, 5);
  Put<uint64_t>(&s, v.size());
  for (int32_t x : v) Put(&s, x);
  RawKv(key, 9, s);
}

void GgufBuilder::Tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, std::string data) {
  tensors_.push_back({name, std::move(ne), type, std::move(data)});
}

std::string GgufBuilder::Bytes(uint32_t version, uint32_t alignment) const {
  std::vector<Kv> kv = kv_;
  if (alignment != 32) {
    std::string s;
    Put(&s, alignment);
    kv.push_back({"general.alignment", 4, s});
  }
  std::string out = "GGUF";
  Put(&out, version);
  Put<uint64_t>(&out, tensors_.size());
  Put<uint64_t>(&out, kv.size());
  for (const Kv& k : kv) {
    PutStr(&out, k.key);
    Put(&out, k.type);
    out += k.value;
  }
  uint64_t offset = 0;
  for (const T& t : tensors_) {
    PutStr(&out, t.name);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) Put(&out, d);
    Put(&out, t.type);
    Put(&out, offset);
    offset += (t.data.size() + alignment - 1) / alignment * alignment;
  }
  out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
  for (const T& t : tensors_) {
    out += t.data;
    out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
  }
  return out;
}

Status GgufBuilder::Write(const std::string& path, uint32_t version, uint32_t alignment) const {
  const std::string bytes = Bytes(version, alignment);
  WritableFile f;
  RETURN_IF_ERROR(f.Open(path));
  RETURN_IF_ERROR(f.Append(bytes.data(), bytes.size()));
  return f.Close();
}

Status WriteGgufFromHf(const std::string& hf_dir, const std::string& path, uint32_t matrix_type,
                       const std::vector<std::string>& vocab, const std::string& chat_template) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(JoinPath(hf_dir, "config.json"), 1 << 20));
  const nlohmann::json c = nlohmann::json::parse(text);
  const std::string cls = c["architectures"][0];
  const std::string arch = cls == "LlamaForCausalLM" || cls == "MistralForCausalLM" ? "llama"
                           : cls == "Qwen2ForCausalLM"                               ? "qwen2"
                           : cls == "Qwen3ForCausalLM"                               ? "qwen3"
                           : cls == "Phi3ForCausalLM"                                ? "phi3"
                                                                                     : "";
  if (arch.empty()) return Status::Unsupported("WriteGgufFromHf: " + cls);
  const int H = c["num_attention_heads"], KV = c.value("num_key_value_heads", H);
  const int d = c["hidden_size"], hd = c.value("head_dim", d / H);
  GgufBuilder b;
  b.Str("general.architecture", arch);
  b.Str("general.name", "llmflash test fixture");
  b.U32(arch + ".context_length", c["max_position_embeddings"].get<uint32_t>());
  b.U32(arch + ".embedding_length", d);
  b.U32(arch + ".block_count", c["num_hidden_layers"].get<uint32_t>());
  b.U32(arch + ".feed_forward_length", c["intermediate_size"].get<uint32_t>());
  b.U32(arch + ".attention.head_count", H);
  b.U32(arch + ".attention.head_count_kv", KV);
  b.U32(arch + ".attention.key_length", hd);
  b.U32(arch + ".attention.value_length", hd);
  b.U32(arch + ".rope.dimension_count", hd);
  b.F32(arch + ".rope.freq_base", c.value("rope_theta", 10000.0f));
  b.F32(arch + ".attention.layer_norm_rms_epsilon", c.value("rms_norm_eps", 1e-5f));
  if (c.contains("sliding_window") && c["sliding_window"].is_number()) {
    b.U32(arch + ".attention.sliding_window", c["sliding_window"].get<uint32_t>());
  }
  if (!vocab.empty()) {
    b.Str("tokenizer.ggml.model", "gpt2");
    b.Str("tokenizer.ggml.pre", "qwen2");
    b.StrArray("tokenizer.ggml.tokens", vocab);
    b.I32Array("tokenizer.ggml.token_type", std::vector<int32_t>(vocab.size(), 1));
    b.StrArray("tokenizer.ggml.merges", {});
    b.U32("tokenizer.ggml.eos_token_id", 0);
    if (!chat_template.empty()) b.Str("tokenizer.chat_template", chat_template);
  }
  SafetensorsCheckpoint ck;
  RETURN_IF_ERROR(ck.Open(hf_dir));
  // convert_hf_to_gguf.py's LlamaModel.permute: rows of each head go from
  // [first half | second half] to interleaved pairs.
  auto permute = [](std::vector<float> w, int heads, uint64_t cols) {
    const uint64_t rows = w.size() / cols, per = rows / heads;
    std::vector<float> out(w.size());
    for (int h = 0; h < heads; ++h) {
      for (uint64_t i = 0; i < per / 2; ++i) {
        for (uint64_t half = 0; half < 2; ++half) {
          std::memcpy(&out[(h * per + 2 * i + half) * cols], &w[(h * per + half * (per / 2) + i) * cols],
                      cols * sizeof(float));
        }
      }
    }
    return out;
  };
  auto encode = [&](const std::vector<float>& v, uint64_t cols, uint32_t type) {
    DType t = type == kGgmlF32 ? DType::kF32 : type == kGgmlF16 ? DType::kF16 : type == kGgmlQ8_0 ? DType::kQ8_0
                                                                                                    : DType::kQ4_0;
    std::string out(v.size() / cols * RowBytes(t, cols), '\0');
    for (uint64_t r = 0; r < v.size() / cols; ++r) {
      QuantizeRow(t, v.data() + r * cols, static_cast<int64_t>(cols), out.data() + r * RowBytes(t, cols));
    }
    return out;
  };
  for (const auto& [name, info] : ck.tensors()) {
    std::string g = name;
    auto rep = [&](const std::string& from, const std::string& to) {
      size_t at = g.find(from);
      if (at != std::string::npos) g.replace(at, from.size(), to);
    };
    rep("model.embed_tokens", "token_embd");
    rep("model.norm", "output_norm");
    rep("lm_head", "output");
    rep("model.layers.", "blk.");
    for (auto [from, to] : {std::pair{"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},
                            {"self_attn.v_proj", "attn_v"}, {"self_attn.o_proj", "attn_output"},
                            {"self_attn.qkv_proj", "attn_qkv"}, {"self_attn.q_norm", "attn_q_norm"},
                            {"self_attn.k_norm", "attn_k_norm"}, {"input_layernorm", "attn_norm"},
                            {"post_attention_layernorm", "ffn_norm"}, {"mlp.gate_proj", "ffn_gate"},
                            {"mlp.up_proj", "ffn_up"}, {"mlp.down_proj", "ffn_down"},
                            {"mlp.gate_up_proj", "ffn_up"}}) {
      rep(from, to);
    }
    ASSIGN_OR_RETURN(std::vector<float> v, ck.Read(name, info.shape));
    const uint64_t cols = info.shape.back();
    if (arch == "llama" && g.find("attn_q.") != std::string::npos) v = permute(v, H, info.shape.size() == 2 ? cols : 1);
    if (arch == "llama" && g.find("attn_k.") != std::string::npos) v = permute(v, KV, info.shape.size() == 2 ? cols : 1);
    std::vector<uint64_t> ne(info.shape.rbegin(), info.shape.rend());
    const uint32_t type = info.shape.size() == 2 ? matrix_type : kGgmlF32;
    b.Tensor(g, ne, type, encode(v, cols, type));
  }
  if (c.contains("rope_scaling") && c["rope_scaling"].is_object()) {
    // Hugging Face's llama3 rule, as convert_hf_to_gguf.py writes it: the
    // factor each frequency is divided by.
    const auto& r = c["rope_scaling"];
    const double factor = r["factor"], low = r["low_freq_factor"], high = r["high_freq_factor"];
    const double orig = r["original_max_position_embeddings"], base = c.value("rope_theta", 10000.0);
    std::vector<float> f(hd / 2);
    for (int i = 0; i < hd / 2; ++i) {
      const double freq = 1.0 / std::pow(base, 2.0 * i / hd), wavelen = 2 * M_PI / freq;
      if (wavelen < orig / high) f[i] = 1;
      else if (wavelen > orig / low) f[i] = static_cast<float>(factor);
      else {
        const double smooth = (orig / wavelen - low) / (high - low);
        f[i] = static_cast<float>(1 / ((1 - smooth) / factor + smooth));
      }
    }
    b.Tensor("rope_freqs.weight", {static_cast<uint64_t>(hd / 2)}, kGgmlF32,
             std::string(reinterpret_cast<const char*>(f.data()), f.size() * 4));
  }
  return b.Write(path);
}

}  // namespace llmflash::testing

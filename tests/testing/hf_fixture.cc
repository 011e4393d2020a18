// The fixture writer: the tensors an architecture has, and the name-derived
// values (see tests/reference/families_reference.py for the rule).
#include "testing/hf_fixture.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <vector>

#include "format/safetensors_writer.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash::testing {
namespace {

uint64_t Fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char b : s) h = (h ^ b) * 0x100000001b3ull;
  return h;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::vector<float> Values(const std::string& name, const std::vector<uint64_t>& shape, uint64_t seed) {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  const uint64_t base = Fnv1a64(name) + seed * 0x9E3779B97F4A7C15ull;
  std::vector<float> v(n);
  const bool norm = name.ends_with("norm.weight"), bias = name.ends_with(".bias");
  for (uint64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(SplitMix64(base + i) >> 40) / static_cast<double>(1 << 24) - 0.5;
    const double x = norm ? 1 + u / 2 : bias ? u / 4 : u * 2 / std::sqrt(static_cast<double>(shape.back()));
    v[i] = static_cast<float>(x);
  }
  return v;
}

}  // namespace

Status WriteHfFixture(const std::string& dir, const nlohmann::json& c, uint64_t seed) {
  const std::string arch = c["architectures"][0].get<std::string>();
  const uint64_t d = c["hidden_size"], n = c.value("intermediate_size", 0), V = c["vocab_size"];
  const int L = c["num_hidden_layers"];
  const uint64_t H = c["num_attention_heads"];
  const uint64_t KV = c.value("num_key_value_heads", H);
  const uint64_t hd = c.value("head_dim", d / H);
  std::map<std::string, std::vector<uint64_t>> shapes = {{"model.embed_tokens.weight", {V, d}},
                                                         {"model.norm.weight", {d}}};
  if (!c.value("tie_word_embeddings", false)) shapes["lm_head.weight"] = {V, d};
  for (int l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    shapes[p + "input_layernorm.weight"] = {d};
    shapes[p + "post_attention_layernorm.weight"] = {d};
    if (arch.starts_with("Gemma")) {
      shapes[p + "pre_feedforward_layernorm.weight"] = {d};
      shapes[p + "post_feedforward_layernorm.weight"] = {d};
    }
    shapes[p + "self_attn.o_proj.weight"] = {d, H * hd};
    if (arch == "MixtralForCausalLM" || arch == "Qwen3MoeForCausalLM") {  // a router and its experts
      const bool mixtral = arch == "MixtralForCausalLM";
      const uint64_t E = c[mixtral ? "num_local_experts" : "num_experts"];
      const uint64_t F = c[mixtral ? "intermediate_size" : "moe_intermediate_size"];
      const std::string moe = p + (mixtral ? "block_sparse_moe." : "mlp.");
      shapes[moe + "gate.weight"] = {E, d};
      for (uint64_t e = 0; e < E; ++e) {
        const std::string x = moe + "experts." + std::to_string(e) + ".";
        shapes[x + (mixtral ? "w1.weight" : "gate_proj.weight")] = {F, d};
        shapes[x + (mixtral ? "w3.weight" : "up_proj.weight")] = {F, d};
        shapes[x + (mixtral ? "w2.weight" : "down_proj.weight")] = {d, F};
      }
    } else {
      shapes[p + "mlp.down_proj.weight"] = {d, n};
    }
    if (arch == "Phi3ForCausalLM") {
      shapes[p + "self_attn.qkv_proj.weight"] = {H * hd + 2 * KV * hd, d};
      shapes[p + "mlp.gate_up_proj.weight"] = {2 * n, d};
    } else {
      shapes[p + "self_attn.q_proj.weight"] = {H * hd, d};
      shapes[p + "self_attn.k_proj.weight"] = {KV * hd, d};
      shapes[p + "self_attn.v_proj.weight"] = {KV * hd, d};
      if (!c.contains("num_experts_per_tok")) {
        shapes[p + "mlp.gate_proj.weight"] = {n, d};
        shapes[p + "mlp.up_proj.weight"] = {n, d};
      }
    }
    if (arch == "Qwen2ForCausalLM") {
      shapes[p + "self_attn.q_proj.bias"] = {H * hd};
      shapes[p + "self_attn.k_proj.bias"] = {KV * hd};
      shapes[p + "self_attn.v_proj.bias"] = {KV * hd};
    }
    if (arch == "Qwen3ForCausalLM" || arch == "Qwen3MoeForCausalLM" || arch == "Gemma3ForCausalLM") {
      shapes[p + "self_attn.q_norm.weight"] = {hd};
      shapes[p + "self_attn.k_norm.weight"] = {hd};
    }
  }
  std::filesystem::create_directories(dir);
  WritableFile cfg;
  RETURN_IF_ERROR(cfg.Open(JoinPath(dir, "config.json")));
  const std::string text = c.dump(2);
  RETURN_IF_ERROR(cfg.Append(text.data(), text.size()));
  RETURN_IF_ERROR(cfg.Close());
  std::vector<TensorSpec> specs;
  for (const auto& [name, shape] : shapes) specs.push_back({name, DType::kF32, shape});
  SafetensorsWriter w;
  RETURN_IF_ERROR(w.Open(JoinPath(dir, "model.safetensors"), specs));
  for (const auto& [name, shape] : shapes) {
    std::vector<float> v = Values(name, shape, seed);
    RETURN_IF_ERROR(w.Write(v.data(), v.size() * sizeof(float)));
  }
  return w.Close();
}

}  // namespace llmflash::testing

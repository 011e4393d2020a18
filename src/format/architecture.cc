// The architecture table.
#include "format/architecture.h"

namespace llmflash {
namespace {

//                          class                     qkv_b  qk_n   fused  window attn_b fatrelu bos   gemma
constexpr LlamaFamilyArch kLlama[] = {
    {"LlamaForCausalLM",       false, false, false, false, true,  false, true,  0},
    {"MistralForCausalLM",     false, false, false, true,  false, false, true,  0},
    {"Qwen2ForCausalLM",       true,  false, false, false, false, false, false, 0},
    {"Qwen3ForCausalLM",       false, true,  false, false, true,  false, false, 0},
    {"Phi3ForCausalLM",        false, false, true,  true,  false, false, true,  0},
    {"SparseLlamaForCausalLM", false, false, false, false, false, true,  true,  0},
    {"Gemma2ForCausalLM",      false, false, false, true,  false, false, true,  2},
    {"Gemma3ForCausalLM",      false, true,  false, true,  false, false, true,  3},
    {"MixtralForCausalLM",     false, false, false, true,  false, false, true,  0, MoeNaming::kMixtral},
    {"Qwen3MoeForCausalLM",    false, true,  false, false, true,  false, false, 0, MoeNaming::kQwen},
};

}  // namespace

const LlamaFamilyArch* FindLlamaFamily(const std::string& hf_class) {
  for (const LlamaFamilyArch& a : kLlama) {
    if (hf_class == a.hf_class) return &a;
  }
  return nullptr;
}

std::string KnownArchitectures() {
  std::string out = "OPTForCausalLM";
  for (const LlamaFamilyArch& a : kLlama) out += std::string(", ") + a.hf_class;
  return out;
}

LlamaTensorNames LlamaLayerNames(int l, const LlamaFamilyArch& a) {
  const std::string p = "model.layers." + std::to_string(l) + ".";
  LlamaTensorNames n;
  n.attn_norm = p + "input_layernorm.weight";
  n.q = p + "self_attn.q_proj.weight";
  n.k = p + "self_attn.k_proj.weight";
  n.v = p + "self_attn.v_proj.weight";
  n.o = p + "self_attn.o_proj.weight";
  n.qkv = p + "self_attn.qkv_proj.weight";
  n.q_bias = p + "self_attn.q_proj.bias";
  n.k_bias = p + "self_attn.k_proj.bias";
  n.v_bias = p + "self_attn.v_proj.bias";
  n.o_bias = p + "self_attn.o_proj.bias";
  n.q_norm = p + "self_attn.q_norm.weight";
  n.k_norm = p + "self_attn.k_norm.weight";
  n.ffn_norm = p + "post_attention_layernorm.weight";
  n.gate = p + "mlp.gate_proj.weight";
  n.up = p + "mlp.up_proj.weight";
  n.down = p + "mlp.down_proj.weight";
  n.gate_up = p + "mlp.gate_up_proj.weight";
  if (a.gemma > 0) {  // four norms: around attention, and before and after the FFN
    n.post_attention_norm = p + "post_attention_layernorm.weight";
    n.ffn_norm = p + "pre_feedforward_layernorm.weight";
    n.post_ffn_norm = p + "post_feedforward_layernorm.weight";
  }
  return n;
}

std::string RouterName(int l, const LlamaFamilyArch& a) {
  const std::string p = "model.layers." + std::to_string(l) + ".";
  return p + (a.moe == MoeNaming::kMixtral ? "block_sparse_moe.gate.weight" : "mlp.gate.weight");
}

ExpertTensorNames ExpertNames(int l, int e, const LlamaFamilyArch& a) {
  const std::string p = "model.layers." + std::to_string(l) + ".";
  if (a.moe == MoeNaming::kMixtral) {
    const std::string x = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
    return {x + "w1.weight", x + "w3.weight", x + "w2.weight"};
  }
  const std::string x = p + "mlp.experts." + std::to_string(e) + ".";
  return {x + "gate_proj.weight", x + "up_proj.weight", x + "down_proj.weight"};
}

}  // namespace llmflash

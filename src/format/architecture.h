// One description per architecture the importers know: which Hugging Face
// class it is, which tensors it has under which names, and which of the
// forward pass's features (ModelConfig) it switches on. Importers read the
// table; the weight loader and the forward pass read only ModelConfig, so
// adding a family is adding a row here plus whatever is truly new in its math.
#ifndef LLMFLASH_FORMAT_ARCHITECTURE_H_
#define LLMFLASH_FORMAT_ARCHITECTURE_H_

#include <string>
#include <vector>

namespace llmflash {

// Where a mixture-of-experts checkpoint keeps its router and experts.
enum class MoeNaming {
  kNone,     // a dense MLP
  kMixtral,  // block_sparse_moe.gate, block_sparse_moe.experts.E.w1 (gate) / w3 (up) / w2 (down)
  kQwen,     // mlp.gate, mlp.experts.E.gate_proj / up_proj / down_proj (Qwen2-MoE, Qwen3-MoE, OLMoE)
};

// Llama-shaped decoders: RMSNorm, RoPE (rotate-half), gated FFN.
struct LlamaFamilyArch {
  const char* hf_class;      // config.json "architectures"[0]
  bool qkv_bias;             // q/k/v projections always have biases (Qwen2)
  bool qk_norm;              // q_norm / k_norm per head before RoPE (Qwen3)
  bool fused;                // qkv_proj and gate_up_proj (Phi-3), split at convert
  bool sliding_window;       // config.json's sliding_window applies (Mistral, Phi-3)
  bool reads_attention_bias; // config.json's attention_bias switches q/k/v/o biases (Llama, Qwen3)
  bool fatrelu;              // hidden_act "fatrelu" with hidden_act_param (ProSparse)
  bool bos_by_default;       // a tokenizer without its own rule gets BOS (Qwen: none)
  int gemma;                 // 2 or 3: Gemma's norms (1 + w, four per layer), scaled embeddings,
                             // query_pre_attn_scalar, soft-caps, alternating windows; 0: not Gemma
  MoeNaming moe = MoeNaming::kNone;  // a mixture of experts in place of the MLP, and its tensor names
};

// Every Llama-family row; null when `hf_class` is not one of them.
const LlamaFamilyArch* FindLlamaFamily(const std::string& hf_class);
// "LlamaForCausalLM, MistralForCausalLM, ..." for error messages.
std::string KnownArchitectures();

// Hugging Face tensor names of layer `l` in a Llama-family checkpoint.
struct LlamaTensorNames {
  std::string attn_norm, q, k, v, o, qkv, q_bias, k_bias, v_bias, o_bias, q_norm, k_norm;
  std::string ffn_norm, gate, up, down, gate_up;
  std::string post_attention_norm, post_ffn_norm;  // Gemma
};
LlamaTensorNames LlamaLayerNames(int l, const LlamaFamilyArch& a);

// Hugging Face tensor names of layer `l`'s router and of its expert `e`
// (a.moe != kNone).
struct ExpertTensorNames {
  std::string gate, up, down;
};
std::string RouterName(int l, const LlamaFamilyArch& a);
ExpertTensorNames ExpertNames(int l, int e, const LlamaFamilyArch& a);

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_ARCHITECTURE_H_

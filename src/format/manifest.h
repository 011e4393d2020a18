// Manifest: the parsed form of a model directory's manifest.json
// (docs/format.md gives every field). Parsing validates types, ranges and
// internal consistency; ValidateAgainstFiles checks sizes on disk.
//
// Thread-safety: a Manifest is a plain value.
#ifndef LLMFLASH_FORMAT_MANIFEST_H_
#define LLMFLASH_FORMAT_MANIFEST_H_

#include "util/activation.h"
#include <cstdint>
#include <string>
#include <vector>

#include "util/dtype.h"
#include "llmflash/status.h"

namespace llmflash {

inline constexpr int kFormatVersion = 1;
inline constexpr char kManifestName[] = "manifest.json";
inline constexpr uint64_t kMaxManifestBytes = 16 << 20;

// The transformer's shapes and math choices.
struct ModelConfig {
  std::string architecture = "llama";  // "llama" (RMSNorm/RoPE/SwiGLU family)
  int dim = 0;
  int ffn_dim = 0;  // neurons per FFN layer
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int vocab_size = 0;
  int max_seq_len = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  std::string rope_style = "interleaved";  // llama2.c pairs (2i, 2i+1)
  bool ffn_gated = true;                   // gate row present in records
  std::string activation = "silu";         // silu | relu | fatrelu | gelu_tanh (util/activation.h)
  float activation_param = 0.0f;           // fatrelu's threshold
  bool tied_classifier = true;
  int sliding_window = 0;  // attend to the last N positions only (Mistral); 0: all
  // OPT-style blocks (defaults are Llama's):
  std::string norm = "rmsnorm";  // rmsnorm | layernorm (with bias)
  bool pre_norm = true;          // false: post-LayerNorm blocks (opt-350m)
  bool attention_bias = false;   // q, k, v and output projections have biases
  bool ffn_bias = false;         // up (per neuron) and down projections have biases
  std::string positions = "rope";  // rope | learned (pos_embeddings[pos + offset])
  int position_offset = 0;
  int embed_dim = 0;        // token-embedding width when projected (OPT); 0: dim
  bool final_norm = true;   // a norm after the last layer
  // Added for the 2024 families (absent in older manifests: off).
  bool qkv_bias = false;  // q, k and v projections have biases, the output one not (Qwen2)
  bool qk_norm = false;   // RMSNorm over each head of q and k before RoPE (Qwen3)
  // RoPE frequency scaling: "none", "linear" (positions / factor) or
  // "llama3" (Llama 3.1's band-wise rule, with the factors below).
  std::string rope_scaling = "none";
  float rope_factor = 1.0f;
  float rope_low_freq_factor = 1.0f;
  float rope_high_freq_factor = 4.0f;
  int rope_original_context = 8192;
  std::string source_architecture;  // what it was converted from ("Qwen2ForCausalLM"), for display
  // Gemma 2/3 (absent in older manifests: off).
  bool embed_scale = false;     // embeddings times sqrt(dim)
  bool sandwich_norm = false;   // RMSNorm on the attention and FFN outputs too (post_attention_norm, post_ffn_norm)
  float attn_softcap = 0.0f;    // attention scores: cap * tanh(score / cap); 0: none
  float final_softcap = 0.0f;   // logits likewise; 0: none
  float query_scale = 0.0f;     // scores scaled by query_scale^-1/2 (query_pre_attn_scalar); 0: head_dim
  // Layers with the sliding window: all of them when 0 or 1, else those with
  // (l + 1) % period != 0 (Gemma 2: 2, Gemma 3: 6).
  int sliding_window_period = 0;
  float rope_local_theta = 0.0f;  // RoPE base of the sliding-window layers, unscaled (Gemma 3); 0: rope_theta
  // Mixture of experts (absent in older manifests: a dense FFN). Every layer
  // has n_experts gated FFNs of ffn_dim / n_experts neurons, stored as one
  // bundle of ffn_dim records, expert e owning records [e F, (e + 1) F); a
  // router (layers.L.router, n_experts x dim, f32) picks n_experts_used of
  // them per token by softmax and top-k, weighted by their probabilities.
  int n_experts = 0;             // 0: dense
  int n_experts_used = 0;        // top-k
  bool expert_norm_topk = true;  // top-k weights renormalised to sum 1 (Mixtral; Qwen3-MoE's norm_topk_prob)
  bool moe() const { return n_experts > 0; }
  // Neurons of one expert (of the whole FFN when dense).
  int ExpertDim() const { return n_experts > 0 ? ffn_dim / n_experts : ffn_dim; }
  int EmbedDim() const { return embed_dim == 0 ? dim : embed_dim; }
  // The FFN activation (validated when the manifest is read).
  Activation Act() const {
    auto a = Activation::Parse(activation, activation_param);
    return a.ok() ? *a : Activation{};
  }
};

struct FileEntry {
  std::string name;  // relative to the model directory
  uint64_t size = 0;
  uint32_t crc32c = 0;
};

struct TensorEntry {
  std::string name;
  uint64_t offset = 0;  // byte offset in the resident file
  std::vector<uint64_t> shape;
  DType dtype = DType::kF32;  // older manifests: the model's dtype
  // derived: rows (all but the last dimension) * RowBytes(dtype, last)
  uint64_t bytes = 0;
};

// The FFN bundle file: per layer, ffn_dim records of record_stride bytes.
struct BundleInfo {
  std::string file;
  uint64_t record_bytes = 0;   // gate row + up row + down column
  uint64_t record_stride = 0;  // record_bytes rounded up (docs/format.md)
  std::vector<uint64_t> layer_offsets;  // 4096-aligned start of each layer
};

struct TokenizerInfo {
  std::string type = "llama2c";  // format of `file`
  std::string file;
  int bos_id = 1;  // -1: the model takes no BOS (Qwen)
  int eos_id = 2;  // the end-of-sequence token: stop_ids[0]
  // Every token that ends generation (Llama 3.1: <|end_of_text|>, <|eom_id|>,
  // <|eot_id|>). Older manifests have none: {eos_id}.
  std::vector<int> stop_ids;
  // The model's chat template (a Jinja file in the directory; empty: none)
  // and the BOS/EOS text it is rendered with.
  std::string chat_template;
  std::string bos_text, eos_text;
};

// The low-rank sparsity predictor (docs/format.md, "predictor.bin").
// Points of PredictorLayerInfo::lru_misses (cache/miss_curve.h).
inline constexpr int kLruMissPoints = 25;

struct PredictorLayerInfo {
  uint64_t offset = 0;          // byte offset of the layer's arrays in the file
  // How this layer was fitted ("svd" or "trained") and the form of its
  // arrays (PredictorInfo::form). Predictors written before layers could
  // differ leave them out; they are then the predictor's own.
  std::string method;
  std::string form;
  int rank = 0;
  float threshold = 0;          // a neuron is predicted active when score > threshold
  float activation_threshold = 0;  // "active" means |activation| > this (0 for ReLU)
  float recall = 0, precision = 0, predicted_fraction = 0;  // held-out measurements
  // Neurons read per token ÷ ffn_dim by an LRU neuron matrix holding
  // MissCurveRowFraction(i) of the layer (cache/miss_curve.h), measured on
  // the predicted sets of the calibration text in order. Empty in predictors
  // written before it was recorded.
  std::vector<float> lru_misses;
};

struct PredictorInfo {
  bool present = false;
  std::string file;
  // What train-predictor was asked for: "svd", "trained", or "auto" (each
  // layer the better of the two on its held-out rows; layers[l].method says).
  std::string method;
  // The first layer's form ("gated": |act(Bg·Ag·x) * (Bu·Au·x)|; "logit":
  // B·A·x + bias); layers[l].form is each layer's.
  std::string form;
  float activation_sparsity = 0;  // requested inactive fraction (SiLU models)
  std::vector<PredictorLayerInfo> layers;

  // Bytes of one layer's arrays for this form and shapes.
  static uint64_t LayerBytes(const std::string& form, bool gated, int dim, int n, int rank);
};

struct Manifest {
  int format_version = kFormatVersion;
  ModelConfig config;
  // The default type of resident matrices (each tensor records its own).
  DType dtype = DType::kF32;
  // The FFN records' type ("bundle.dtype"; older directories: dtype).
  DType ffn_dtype = DType::kF32;
  TokenizerInfo tokenizer;
  std::vector<FileEntry> files;
  std::string resident_file;
  std::vector<TensorEntry> tensors;
  BundleInfo bundle;
  PredictorInfo predictor;

  const FileEntry* FindFile(const std::string& name) const;
  const TensorEntry* FindTensor(const std::string& name) const;
  // Byte offset of neuron `i` of layer `l` in the bundle file.
  uint64_t RecordOffset(int l, int i) const {
    return bundle.layer_offsets[l] + static_cast<uint64_t>(i) * bundle.record_stride;
  }
};

// Writes `m` as dir/manifest.json, atomically (temporary file + rename).
Status WriteManifest(const Manifest& m, const std::string& dir);

// Parses and checks manifest text; `path` names the file in errors.
StatusOr<Manifest> ParseManifest(const std::string& text,
                                 const std::string& path);
std::string SerializeManifest(const Manifest& m);

// Checks that every listed file exists with its recorded size, and that
// tensors and bundle layers lie inside their files.
Status ValidateAgainstFiles(const Manifest& m, const std::string& dir);

// Reads, parses and validates dir/manifest.json.
StatusOr<Manifest> LoadManifest(const std::string& dir);

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_MANIFEST_H_

// ResidentWeights: the weights that always stay in DRAM (embeddings,
// attention, norms, classifier), read once from the resident file and
// checked against the shapes the config implies. FFN weights are not here:
// they live in the bundle file and reach DRAM only through neuron matrices.
//
// Thread-safety: immutable after Load; shared by all sessions.
#ifndef LLMFLASH_MODEL_WEIGHTS_H_
#define LLMFLASH_MODEL_WEIGHTS_H_

#include <string>
#include <vector>

#include "format/manifest.h"
#include "kernels/typed_kernels.h"
#include "llmflash/status.h"
#include "util/aligned_buffer.h"

namespace llmflash {

struct LayerWeights {
  const float* attention_norm = nullptr;  // [dim]
  WeightRef wq;                           // [n_heads*head_dim, dim]
  WeightRef wk;                           // [n_kv_heads*head_dim, dim]
  WeightRef wv;                           // [n_kv_heads*head_dim, dim]
  WeightRef wo;                           // [dim, n_heads*head_dim]
  const float* ffn_norm = nullptr;        // [dim]
  // Present only when the config says so (OPT); null otherwise.
  const float* attention_norm_bias = nullptr;  // [dim] (layernorm)
  const float* ffn_norm_bias = nullptr;        // [dim] (layernorm)
  const float* bq = nullptr;                   // [q]
  const float* bk = nullptr;                   // [kv]
  const float* bv = nullptr;                   // [kv]
  const float* bo = nullptr;                   // [dim]
  const float* q_norm = nullptr;               // [head_dim] (qk_norm)
  const float* k_norm = nullptr;               // [head_dim] (qk_norm)
  const float* post_attention_norm = nullptr;  // [dim] (sandwich_norm)
  const float* post_ffn_norm = nullptr;        // [dim] (sandwich_norm)
  const float* ffn_up_bias = nullptr;          // [ffn_dim], per neuron
  const float* ffn_down_bias = nullptr;        // [dim]
  WeightRef router;                            // [n_experts, dim], f32 (mixture of experts)
};

class ResidentWeights {
 public:
  ResidentWeights() = default;
  ~ResidentWeights();
  ResidentWeights(const ResidentWeights&) = delete;
  ResidentWeights& operator=(const ResidentWeights&) = delete;

  // Reads dir/<resident file> (already size-checked by the manifest). With
  // `embeddings_on_flash` (untied classifier only) the token embedding table
  // is left in the file and rows are read per token (ReadEmbedding).
  Status Load(const Manifest& m, const std::string& dir, bool embeddings_on_flash = false);
  // DRAM the embedding table takes when it could stay on flash: its bytes
  // for an untied classifier, else 0 (the classifier needs the whole table).
  static uint64_t MovableEmbeddingBytes(const Manifest& m);
  // Scratch one ReadEmbedding needs, for any storage type (4 bytes an
  // element at most) and any row position (the read spans whole 4096-byte
  // blocks around the row).
  static uint64_t EmbeddingScratchBytes(const ModelConfig& c);

  bool embeddings_on_flash() const { return emb_fd_ >= 0; }
  // Reads token's embedding row (O_DIRECT where the file system allows) into
  // `scratch` (EmbeddingScratchBytes, 4096-aligned); *row points at it there.
  // Thread-safe.
  Status ReadEmbedding(int token, char* scratch, const void** row) const;

  uint64_t bytes() const { return data_.size(); }
  WeightRef tok_embeddings;  // [vocab, embed_dim]; data null when on flash
  std::vector<LayerWeights> layers;
  const float* norm = nullptr;    // [dim] (null without a final norm)
  const float* norm_bias = nullptr;  // [dim] (layernorm)
  WeightRef output;          // [vocab, embed_dim]; the embeddings when tied
  WeightRef pos_embeddings;  // [max_seq_len + offset, dim] (learned)
  WeightRef project_in;      // [dim, embed_dim] (embed_dim != dim)
  WeightRef project_out;     // [embed_dim, dim]

 private:
  AlignedBuffer data_;
  std::string path_;
  int emb_fd_ = -1;
  bool emb_direct_ = false;
  uint64_t emb_offset_ = 0, emb_row_bytes_ = 0;
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_WEIGHTS_H_

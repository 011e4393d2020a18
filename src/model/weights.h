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
  const float* ffn_up_bias = nullptr;          // [ffn_dim], per neuron
  const float* ffn_down_bias = nullptr;        // [dim]
};

class ResidentWeights {
 public:
  // Reads dir/<resident file> (already size-checked by the manifest).
  Status Load(const Manifest& m, const std::string& dir);

  uint64_t bytes() const { return data_.size(); }
  WeightRef tok_embeddings;  // [vocab, embed_dim]
  std::vector<LayerWeights> layers;
  const float* norm = nullptr;    // [dim] (null without a final norm)
  const float* norm_bias = nullptr;  // [dim] (layernorm)
  WeightRef output;          // [vocab, embed_dim]; the embeddings when tied
  WeightRef pos_embeddings;  // [max_seq_len + offset, dim] (learned)
  WeightRef project_in;      // [dim, embed_dim] (embed_dim != dim)
  WeightRef project_out;     // [embed_dim, dim]

 private:
  AlignedBuffer data_;
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_WEIGHTS_H_

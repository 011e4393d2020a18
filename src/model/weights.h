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
#include "llmflash/status.h"
#include "util/aligned_buffer.h"

namespace llmflash {

struct LayerWeights {
  const float* attention_norm = nullptr;  // [dim]
  const float* wq = nullptr;              // [n_heads*head_dim, dim]
  const float* wk = nullptr;              // [n_kv_heads*head_dim, dim]
  const float* wv = nullptr;              // [n_kv_heads*head_dim, dim]
  const float* wo = nullptr;              // [dim, n_heads*head_dim]
  const float* ffn_norm = nullptr;        // [dim]
};

class ResidentWeights {
 public:
  // Reads dir/<resident file> (already size-checked by the manifest).
  Status Load(const Manifest& m, const std::string& dir);

  uint64_t bytes() const { return data_.size(); }
  const float* tok_embeddings = nullptr;  // [vocab, dim]
  std::vector<LayerWeights> layers;
  const float* norm = nullptr;    // [dim]
  const float* output = nullptr;  // [vocab, dim]; the embeddings when tied

 private:
  AlignedBuffer data_;
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_WEIGHTS_H_

// Loading resident tensors and checking their shapes.
#include "model/weights.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/file.h"
#include "util/macros.h"

namespace llmflash {
namespace {

class TensorFinder {
 public:
  TensorFinder(const Manifest& m, const char* base, std::string path)
      : m_(m), base_(base), path_(std::move(path)) {}

  // Vectors (norms, biases) are always f32.
  Status Get(const std::string& name, std::vector<uint64_t> shape, const float** out) const {
    WeightRef w;
    RETURN_IF_ERROR(Get(name, std::move(shape), &w));
    if (w.dtype != DType::kF32) {
      return Status::Corruption(path_ + ": tensor \"" + name + "\" must be stored as f32");
    }
    *out = static_cast<const float*>(w.data);
    return Status::OK();
  }

  Status Get(const std::string& name, std::vector<uint64_t> shape, WeightRef* out) const {
    const TensorEntry* t = m_.FindTensor(name);
    if (t == nullptr) return Status::Corruption(path_ + ": missing tensor \"" + name + "\"");
    if (t->shape != shape) {
      std::string want, got;
      for (auto d : shape) want += std::to_string(d) + " ";
      for (auto d : t->shape) got += std::to_string(d) + " ";
      return Status::Corruption(path_ + ": tensor \"" + name + "\" has shape [ " + got +
                                "], the config implies [ " + want + "]");
    }
    *out = WeightRef{base_ + t->offset, t->dtype};
    return Status::OK();
  }

 private:
  const Manifest& m_;
  const char* base_;
  std::string path_;
};

}  // namespace

Status ResidentWeights::Load(const Manifest& m, const std::string& dir) {
  std::string path = JoinPath(dir, m.resident_file);
  const FileEntry* f = m.FindFile(m.resident_file);
  RETURN_IF_ERROR(ReadFileInto(path, f->size, &data_));

  const ModelConfig& c = m.config;
  const uint64_t d = c.dim, V = c.vocab_size, e = c.EmbedDim(), n = c.ffn_dim;
  const bool ln = c.norm == "layernorm";
  const uint64_t q = static_cast<uint64_t>(c.n_heads) * c.head_dim;
  const uint64_t kv = static_cast<uint64_t>(c.n_kv_heads) * c.head_dim;
  TensorFinder find(m, data_.data(), path);
  RETURN_IF_ERROR(find.Get("tok_embeddings", {V, e}, &tok_embeddings));
  if (e != d) {
    RETURN_IF_ERROR(find.Get("project_in", {d, e}, &project_in));
    RETURN_IF_ERROR(find.Get("project_out", {e, d}, &project_out));
  }
  if (c.positions == "learned") {
    RETURN_IF_ERROR(find.Get("pos_embeddings",
                             {static_cast<uint64_t>(c.max_seq_len) + c.position_offset, d},
                             &pos_embeddings));
  }
  layers.assign(c.n_layers, {});
  for (int l = 0; l < c.n_layers; ++l) {
    std::string p = "layers." + std::to_string(l) + ".";
    LayerWeights& w = layers[l];
    RETURN_IF_ERROR(find.Get(p + "attention_norm", {d}, &w.attention_norm));
    RETURN_IF_ERROR(find.Get(p + "wq", {q, d}, &w.wq));
    RETURN_IF_ERROR(find.Get(p + "wk", {kv, d}, &w.wk));
    RETURN_IF_ERROR(find.Get(p + "wv", {kv, d}, &w.wv));
    RETURN_IF_ERROR(find.Get(p + "wo", {d, q}, &w.wo));
    RETURN_IF_ERROR(find.Get(p + "ffn_norm", {d}, &w.ffn_norm));
    if (ln) {
      RETURN_IF_ERROR(find.Get(p + "attention_norm_bias", {d}, &w.attention_norm_bias));
      RETURN_IF_ERROR(find.Get(p + "ffn_norm_bias", {d}, &w.ffn_norm_bias));
    }
    if (c.attention_bias) {
      RETURN_IF_ERROR(find.Get(p + "bq", {q}, &w.bq));
      RETURN_IF_ERROR(find.Get(p + "bk", {kv}, &w.bk));
      RETURN_IF_ERROR(find.Get(p + "bv", {kv}, &w.bv));
      RETURN_IF_ERROR(find.Get(p + "bo", {d}, &w.bo));
    }
    if (c.ffn_bias) {
      RETURN_IF_ERROR(find.Get(p + "ffn_up_bias", {n}, &w.ffn_up_bias));
      RETURN_IF_ERROR(find.Get(p + "ffn_down_bias", {d}, &w.ffn_down_bias));
    }
  }
  if (c.final_norm) {
    RETURN_IF_ERROR(find.Get("norm", {d}, &norm));
    if (ln) RETURN_IF_ERROR(find.Get("norm_bias", {d}, &norm_bias));
  }
  if (c.tied_classifier) {
    output = tok_embeddings;
  } else {
    RETURN_IF_ERROR(find.Get("output", {V, e}, &output));
  }
  return Status::OK();
}

}  // namespace llmflash

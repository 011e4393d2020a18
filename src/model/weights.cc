// Loading resident tensors and checking their shapes.
#include "model/weights.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/aligned_buffer.h"
#include "util/checked_math.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash {
namespace {

class TensorFinder {
 public:
  // The file's bytes [skip_at, skip_at + skip) are not in memory: tensors
  // after them sit skip bytes earlier.
  TensorFinder(const Manifest& m, const char* base, std::string path, uint64_t skip_at = 0,
               uint64_t skip = 0)
      : m_(m), base_(base), path_(std::move(path)), skip_at_(skip_at), skip_(skip) {}

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
    const bool skipped = skip_ > 0 && t->offset >= skip_at_ && t->offset < skip_at_ + skip_;
    const uint64_t at = t->offset >= skip_at_ + skip_ ? t->offset - skip_ : t->offset;
    *out = WeightRef{skipped ? nullptr : base_ + at, t->dtype};
    return Status::OK();
  }

 private:
  const Manifest& m_;
  const char* base_;
  std::string path_;
  uint64_t skip_at_, skip_;
};

}  // namespace

ResidentWeights::~ResidentWeights() {
  if (emb_fd_ >= 0) close(emb_fd_);
}

uint64_t ResidentWeights::MovableEmbeddingBytes(const Manifest& m) {
  const TensorEntry* t = m.FindTensor("tok_embeddings");
  return t == nullptr || m.config.tied_classifier ? 0 : t->bytes;
}

uint64_t ResidentWeights::EmbeddingScratchBytes(const ModelConfig& c) {
  return static_cast<uint64_t>(c.EmbedDim()) * 4 + 2 * kDirectIoAlignment;
}

Status ResidentWeights::ReadEmbedding(int token, char* scratch, const void** row) const {
  const uint64_t at = emb_offset_ + static_cast<uint64_t>(token) * emb_row_bytes_;
  const uint64_t start = emb_direct_ ? at / kDirectIoAlignment * kDirectIoAlignment : at;
  const uint64_t end = emb_direct_ ? RoundUp(at + emb_row_bytes_, kDirectIoAlignment) : at + emb_row_bytes_;
  // O_DIRECT may stop at the end of the file: read what is there, then check.
  uint64_t got = 0;
  while (got < end - start) {
    ssize_t r = pread(emb_fd_, scratch + got, end - start - got, static_cast<off_t>(start + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      return Status::IOError(path_ + ": reading the embedding of token " + std::to_string(token) +
                             " at offset " + std::to_string(start + got) + " failed: " + std::strerror(errno));
    }
    if (r == 0) break;
    got += static_cast<uint64_t>(r);
  }
  if (got < at + emb_row_bytes_ - start) {
    return Status::Corruption(path_ + ": file ends inside the embedding of token " + std::to_string(token));
  }
  *row = scratch + (at - start);
  return Status::OK();
}

Status ResidentWeights::Load(const Manifest& m, const std::string& dir, bool embeddings_on_flash) {
  std::string path = JoinPath(dir, m.resident_file);
  path_ = path;
  const FileEntry* f = m.FindFile(m.resident_file);
  const TensorEntry* emb = m.FindTensor("tok_embeddings");
  uint64_t skip_at = 0, skip = 0;
  if (embeddings_on_flash && MovableEmbeddingBytes(m) > 0 && emb != nullptr) {
    skip_at = emb->offset;
    skip = emb->bytes;
    emb_offset_ = emb->offset;
    emb_row_bytes_ = RowBytes(emb->dtype, m.config.EmbedDim());
    if (!data_.Allocate(f->size - skip, 64)) {
      return Status::ResourceExhausted(path + ": cannot allocate " + std::to_string(f->size - skip) + " bytes");
    }
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::IOError(path + ": open failed: " + std::strerror(errno));
    Status st = PreadExact(fd, path, 0, data_.data(), skip_at);
    if (st.ok()) st = PreadExact(fd, path, skip_at + skip, data_.data() + skip_at, f->size - skip_at - skip);
    close(fd);
    RETURN_IF_ERROR(st);
    emb_fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    emb_direct_ = emb_fd_ >= 0;
    if (emb_fd_ < 0) emb_fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);  // e.g. tmpfs
    if (emb_fd_ < 0) return Status::IOError(path + ": open failed: " + std::strerror(errno));
  } else {
    RETURN_IF_ERROR(ReadFileInto(path, f->size, &data_));
  }

  const ModelConfig& c = m.config;
  const uint64_t d = c.dim, V = c.vocab_size, e = c.EmbedDim(), n = c.ffn_dim;
  const bool ln = c.norm == "layernorm";
  const uint64_t q = static_cast<uint64_t>(c.n_heads) * c.head_dim;
  const uint64_t kv = static_cast<uint64_t>(c.n_kv_heads) * c.head_dim;
  TensorFinder find(m, data_.data(), path, skip_at, skip);
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
    if (c.attention_bias || c.qkv_bias) {
      RETURN_IF_ERROR(find.Get(p + "bq", {q}, &w.bq));
      RETURN_IF_ERROR(find.Get(p + "bk", {kv}, &w.bk));
      RETURN_IF_ERROR(find.Get(p + "bv", {kv}, &w.bv));
    }
    if (c.attention_bias) RETURN_IF_ERROR(find.Get(p + "bo", {d}, &w.bo));
    if (c.sandwich_norm) {
      RETURN_IF_ERROR(find.Get(p + "post_attention_norm", {d}, &w.post_attention_norm));
      RETURN_IF_ERROR(find.Get(p + "post_ffn_norm", {d}, &w.post_ffn_norm));
    }
    if (c.qk_norm) {
      const uint64_t hd = c.head_dim;
      RETURN_IF_ERROR(find.Get(p + "q_norm", {hd}, &w.q_norm));
      RETURN_IF_ERROR(find.Get(p + "k_norm", {hd}, &w.k_norm));
    }
    if (c.moe()) RETURN_IF_ERROR(find.Get(p + "router", {static_cast<uint64_t>(c.n_experts), d}, &w.router));
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

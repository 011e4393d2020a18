// Importer for llama2.c checkpoints (version-0 header) and their tokenizer.
//
// Layout of the checkpoint: seven int32 (dim, hidden_dim, n_layers, n_heads,
// n_kv_heads, vocab_size, seq_len; a negative vocab_size means a separate
// classifier), then float32 tensors in a fixed order (see docs/format.md).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <vector>

#include "format/llama2c_importer.h"
#include "format/llama2c_tokenizer_file.h"
#include "format/model_writer.h"
#include "llmflash/convert.h"
#include "util/checked_math.h"
#include "util/macros.h"

namespace llmflash {
namespace {

using Header = Llama2cHeader;

class CheckpointReader {
 public:
  CheckpointReader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  // Reads the next `n` floats in file order.
  Status Next(uint64_t n, std::vector<float>* out) {
    out->resize(n);
    RETURN_IF_ERROR(PreadExact(fd_, path_, offset_, out->data(), n * 4));
    offset_ += n * 4;
    return Status::OK();
  }
  void Skip(uint64_t n) { offset_ += n * 4; }
  uint64_t offset() const { return offset_; }
  void Seek(uint64_t off) { offset_ = off; }

 private:
  int fd_;
  std::string path_;
  uint64_t offset_ = sizeof(Header);
};

// Splits an [L, rows, cols] block into per-layer tensors named prefix.l.
Status AddPerLayer(CheckpointReader* r, ModelWriter* w, const char* name, int L,
                   uint64_t rows, uint64_t cols) {
  std::vector<float> buf;
  for (int l = 0; l < L; ++l) {
    RETURN_IF_ERROR(r->Next(rows * cols, &buf));
    std::vector<uint64_t> shape = rows == 1 ? std::vector<uint64_t>{cols}
                                            : std::vector<uint64_t>{rows, cols};
    RETURN_IF_ERROR(w->AddResidentTensor("layers." + std::to_string(l) + "." + name,
                                         shape, buf.data()));
  }
  return Status::OK();
}

Status Convert(const ConvertOptions& o, int fd) {
  ASSIGN_OR_RETURN(uint64_t size, FileSize(o.input));
  Header h;
  if (size < sizeof(h)) return Status::Corruption(o.input + ": too short for a llama2.c header");
  RETURN_IF_ERROR(PreadExact(fd, o.input, 0, &h, sizeof(h)));
  bool shared;
  RETURN_IF_ERROR(ValidateLlama2cHeader(h, size, o.input, &shared));
  const int V = std::abs(h.vocab_size), L = h.n_layers;
  const uint64_t d = h.dim, f = h.hidden_dim, hs = d / h.n_heads, kv = hs * h.n_kv_heads;

  ASSIGN_OR_RETURN(std::string tok_bytes, ReadFileToString(o.tokenizer, 256ull << 20));
  RETURN_IF_ERROR(ParseLlama2cTokenizer(tok_bytes, V, o.tokenizer).status());

  ModelConfig c;
  c.dim = h.dim; c.ffn_dim = h.hidden_dim; c.n_layers = L; c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads; c.head_dim = static_cast<int>(hs); c.vocab_size = V;
  c.max_seq_len = h.seq_len; c.norm_eps = 1e-5f; c.rope_theta = 10000.0f;
  c.rope_style = "interleaved"; c.ffn_gated = true; c.activation = "silu";
  c.tied_classifier = shared;
  ModelWriter w;
  ASSIGN_OR_RETURN(StorageTypes types, StorageTypesFor(o));
  RETURN_IF_ERROR(w.Begin(o.output, c, types, o.note));
  auto progress = [&](double x, const char* what) { if (o.progress) o.progress(x, what); };

  CheckpointReader r(fd, o.input);
  std::vector<float> buf;
  RETURN_IF_ERROR(r.Next(V * d, &buf));
  RETURN_IF_ERROR(w.AddResidentTensor("tok_embeddings", {uint64_t(V), d}, buf.data()));
  RETURN_IF_ERROR(AddPerLayer(&r, &w, "attention_norm", L, 1, d));
  RETURN_IF_ERROR(AddPerLayer(&r, &w, "wq", L, d, d));
  RETURN_IF_ERROR(AddPerLayer(&r, &w, "wk", L, kv, d));
  RETURN_IF_ERROR(AddPerLayer(&r, &w, "wv", L, kv, d));
  RETURN_IF_ERROR(AddPerLayer(&r, &w, "wo", L, d, d));
  RETURN_IF_ERROR(AddPerLayer(&r, &w, "ffn_norm", L, 1, d));
  progress(0.2, "resident weights");
  // FFN: w1 (gate) [L, f, d], w2 (down) [L, d, f], w3 (up) [L, f, d].
  const uint64_t w1_at = r.offset(), w2_at = w1_at + L * f * d * 4, w3_at = w2_at + L * d * f * 4;
  std::vector<float> gate, down, up;
  for (int l = 0; l < L; ++l) {
    r.Seek(w1_at + l * f * d * 4);
    RETURN_IF_ERROR(r.Next(f * d, &gate));
    r.Seek(w2_at + l * d * f * 4);
    RETURN_IF_ERROR(r.Next(d * f, &down));
    r.Seek(w3_at + l * f * d * 4);
    RETURN_IF_ERROR(r.Next(f * d, &up));
    RETURN_IF_ERROR(w.AddFfnLayer(l, gate.data(), up.data(), down.data()));
    progress(0.2 + 0.7 * (l + 1) / L, "FFN layers");
  }
  r.Seek(w3_at + L * f * d * 4);
  RETURN_IF_ERROR(r.Next(d, &buf));
  RETURN_IF_ERROR(w.AddResidentTensor("norm", {d}, buf.data()));
  r.Skip(static_cast<uint64_t>(h.seq_len) * hs);  // freq_cis_real and _imag: recomputed
  if (!shared) {
    RETURN_IF_ERROR(r.Next(V * d, &buf));
    RETURN_IF_ERROR(w.AddResidentTensor("output", {uint64_t(V), d}, buf.data()));
  }
  RETURN_IF_ERROR(w.AddTokenizer(o.tokenizer, "llama2c", 1, 2));
  RETURN_IF_ERROR(w.Finish());
  progress(1.0, "done");
  return Status::OK();
}

}  // namespace

Status ValidateLlama2cHeader(const Llama2cHeader& h, uint64_t file_size,
                             const std::string& path, bool* shared) {
  auto bad = [&](const std::string& what) {
    return Status::Corruption(path + ": not a llama2.c checkpoint: " + what);
  };
  if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 ||
      h.n_kv_heads <= 0 || h.vocab_size == 0 || h.seq_len <= 0) {
    return bad("header has a zero or negative dimension");
  }
  if (h.dim > (1 << 16) || h.hidden_dim > (1 << 18) || h.n_layers > 1024 ||
      std::abs(static_cast<int64_t>(h.vocab_size)) > (1 << 22) || h.seq_len > (1 << 20)) {
    return bad("header dimensions are implausibly large");
  }
  if (h.dim % h.n_heads != 0 || h.n_heads % h.n_kv_heads != 0 || (h.dim / h.n_heads) % 2 != 0) {
    return bad("dim, n_heads and n_kv_heads are inconsistent");
  }
  *shared = h.vocab_size > 0;
  uint64_t d = h.dim, f = h.hidden_dim, L = h.n_layers, V = std::abs(h.vocab_size);
  uint64_t kv = d / h.n_heads * h.n_kv_heads, hs = d / h.n_heads;
  uint64_t floats = V * d + L * d * 2 + L * d * d * 2 + L * d * kv * 2 + L * f * d * 3 + d +
                    static_cast<uint64_t>(h.seq_len) * hs;  // two half-size RoPE tables
  if (!*shared) floats += V * d;
  uint64_t expect = sizeof(Header) + floats * 4;
  if (file_size != expect) {
    return bad("size is " + std::to_string(file_size) + " bytes, the header implies " +
               std::to_string(expect));
  }
  return Status::OK();
}

Status ConvertLlama2c(const ConvertOptions& options) {
  if (options.input.empty() || options.tokenizer.empty() || options.output.empty()) {
    return Status::InvalidArgument("convert needs an input checkpoint, a tokenizer and an output directory");
  }
  int fd = open(options.input.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound(options.input + ": no such file");
    return Status::IOError(options.input + ": open failed: " + std::strerror(err));
  }
  Status st = Convert(options, fd);
  close(fd);
  return st;
}

}  // namespace llmflash

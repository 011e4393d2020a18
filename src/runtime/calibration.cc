// Recording activations and reading FFN matrices for predictor work.
#include "runtime/calibration.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "format/bundle_layout.h"
#include "kernels/typed_kernels.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash {

StatusOr<std::unique_ptr<ActivationRecorder>> ActivationRecorder::Create(const std::string& path, int n_layers,
                                                                         int dim, int n, int64_t max_tokens) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(path + ": cannot create the calibration spill file: " + std::strerror(errno));
  return std::unique_ptr<ActivationRecorder>(new ActivationRecorder(path, fd, n_layers, dim, n, max_tokens));
}

ActivationRecorder::ActivationRecorder(std::string path, int fd, int n_layers, int dim, int n, int64_t max_tokens)
    : path_(std::move(path)), fd_(fd), dim_(dim), n_(n), max_tokens_(max_tokens), layers_(n_layers) {}

ActivationRecorder::~ActivationRecorder() {
  close(fd_);
  unlink(path_.c_str());
}

uint64_t ActivationRecorder::file_bytes() const {
  return static_cast<uint64_t>(layers_.size()) * max_tokens_ * (dim_ + n_) * sizeof(float);
}

void ActivationRecorder::OnFfn(int, int64_t t, const float* x, std::span<const int32_t> ids, const float* h) {
  std::vector<float>& row = held_[t];
  if (row.empty()) {  // the token's first part
    row.assign(dim_ + n_, 0.0f);
    std::memcpy(row.data(), x, dim_ * sizeof(float));
  }
  for (size_t i = 0; i < ids.size(); ++i) row[dim_ + ids[i]] = h[i];
}

void ActivationRecorder::OnLayerEnd(int layer) {
  Layer& s = layers_[layer];
  const uint64_t bytes = (dim_ + n_) * sizeof(float);
  for (const auto& [t, row] : held_) {
    if (!error_.ok()) break;
    if (s.count >= max_tokens_) {
      error_ = Status::Internal(path_ + ": layer " + std::to_string(layer) + " saw more than " +
                                std::to_string(max_tokens_) + " tokens");
      break;
    }
    error_ = PwriteExact(fd_, path_, (static_cast<uint64_t>(layer) * max_tokens_ + s.count) * bytes, row.data(),
                         bytes);
    ++s.count;
  }
  held_.clear();
}

Status ActivationRecorder::Finish() {
  if (error_.ok() && !held_.empty()) error_ = Status::Internal(path_ + ": a layer did not end");
  for (const Layer& s : layers_) {
    if (error_.ok() && s.count != layers_[0].count) {
      error_ = Status::Internal(path_ + ": layers recorded different numbers of tokens");
    }
  }
  return error_;
}

StatusOr<LayerSamples> ActivationRecorder::ReadLayer(int layer) const {
  const int64_t tokens = layers_[layer].count;
  const uint64_t row = (dim_ + n_) * sizeof(float);
  std::vector<float> buf(static_cast<size_t>(dim_ + n_) * std::min<int64_t>(tokens, 256));
  LayerSamples s;
  s.x.resize(static_cast<size_t>(tokens) * dim_);
  s.h.resize(static_cast<size_t>(tokens) * n_);
  for (int64_t first = 0; first < tokens; first += 256) {  // in pieces: no second copy of the layer
    const int64_t m = std::min<int64_t>(256, tokens - first);
    RETURN_IF_ERROR(PreadExact(fd_, path_, (static_cast<uint64_t>(layer) * max_tokens_ + first) * row,
                               buf.data(), m * row));
    for (int64_t i = 0; i < m; ++i) {
      const float* r = buf.data() + static_cast<size_t>(i) * (dim_ + n_);
      std::memcpy(s.x.data() + static_cast<size_t>(first + i) * dim_, r, dim_ * sizeof(float));
      std::memcpy(s.h.data() + static_cast<size_t>(first + i) * n_, r + dim_, n_ * sizeof(float));
    }
  }
  return s;
}

StatusOr<std::unique_ptr<ModelImpl>> OpenForAnalysis(const std::string& dir, int max_sessions,
                                                     ModelOptions o) {
  o.max_sessions = max_sessions;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> m, ModelImpl::OpenImpl(dir, o));
  return std::unique_ptr<ModelImpl>(static_cast<ModelImpl*>(m.release()));
}

Status RunTeacherForced(SessionImpl* session, const std::vector<int>& tokens, int context,
                        Prefill prefill, const std::function<void(size_t, const float*)>& on_logits) {
  for (size_t start = 0; start + 1 < tokens.size(); start += context) {
    size_t end = std::min(tokens.size(), start + context);
    std::vector<TokenId> window(tokens.begin() + start, tokens.begin() + end);
    // Each position's logits as they come, none kept (a window of a 7B's
    // 32,000-entry rows would be megabytes outside the budget); without a
    // consumer, a batch computes no logits but its last.
    LogitsCallback each;
    if (on_logits) {
      each = [&](int p, const float* logits) {
        // The last position's target starts the next window: it has no logits here.
        if (static_cast<size_t>(p) + 1 < window.size()) on_logits(start + p, logits);
        return true;
      };
    }
    session->NewContext();
    RETURN_IF_ERROR(session->AppendTokens(window, prefill, each));
  }
  return Status::OK();
}

StatusOr<std::vector<int>> SelfGenerate(ModelImpl* model, int count, uint64_t seed,
                                        const std::function<void(const std::string&)>& progress) {
  Status st = model->NeedTokenizer();
  if (!st.ok()) return st;
  if (model->tokenizer().bos_id() < 0) {
    return Status::Unsupported("this model takes no BOS token to start self-generated text "
                               "from; give calibration text instead");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Session> s, model->NewSession({.use_predictor = false}));
  std::vector<int> tokens;
  for (uint64_t round = 0; static_cast<int>(tokens.size()) < count; ++round) {
    s->Reset();  // each round a new text from BOS
    tokens.push_back(model->tokenizer().bos_id());
    GenerateOptions g;
    g.temperature = 1.0f;
    g.top_p = 1.0f;
    g.seed = seed + round;
    g.max_tokens = std::min(count - static_cast<int>(tokens.size()), model->info().max_context - 1);
    if (g.max_tokens <= 0) break;
    RETURN_IF_ERROR(s->Generate("", g, [&](TokenId id, std::string_view) {
      tokens.push_back(id);
      if (progress && tokens.size() % 16 == 0) {
        progress("self-generating: " + std::to_string(tokens.size()) + " of " + std::to_string(count) + " tokens");
      }
      return true;
    }));
  }
  return tokens;
}

StatusOr<FfnMatrices> ReadFfnMatrices(const Manifest& m, const std::string& dir, int layer) {
  const ModelConfig& c = m.config;
  BundleLayout b = ComputeBundleLayout(c.dim, c.ffn_dim, c.n_layers, c.ffn_gated, m.ffn_dtype);
  std::string path = JoinPath(dir, m.bundle.file);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": open failed: " + std::strerror(errno));
  std::vector<char> rec(b.record_stride);
  FfnMatrices out;
  out.up.resize(static_cast<size_t>(c.ffn_dim) * c.dim);
  if (c.ffn_gated) out.gate.resize(out.up.size());
  Status st;
  for (int i = 0; i < c.ffn_dim && st.ok(); ++i) {
    st = PreadExact(fd, path, m.RecordOffset(layer, i), rec.data(), b.record_stride);
    size_t row = static_cast<size_t>(i) * c.dim;
    ToFloat(rec.data() + b.up_offset, m.ffn_dtype, c.dim, out.up.data() + row);
    if (c.ffn_gated) ToFloat(rec.data() + b.gate_offset, m.ffn_dtype, c.dim, out.gate.data() + row);
  }
  close(fd);
  if (!st.ok()) return st;
  return out;
}

}  // namespace llmflash

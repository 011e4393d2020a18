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

void ActivationRecorder::OnFfn(int layer, const float* x, std::span<const int32_t> ids,
                               const float* h) {
  LayerSamples& s = layers_[layer];
  s.x.insert(s.x.end(), x, x + dim_);
  size_t at = s.h.size();
  s.h.resize(at + n_, 0.0f);
  for (size_t i = 0; i < ids.size(); ++i) s.h[at + ids[i]] = h[i];
}

StatusOr<std::unique_ptr<ModelImpl>> OpenForAnalysis(const std::string& dir, int max_sessions) {
  ModelOptions o;
  o.max_sessions = max_sessions;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> m, ModelImpl::OpenImpl(dir, o));
  return std::unique_ptr<ModelImpl>(static_cast<ModelImpl*>(m.release()));
}

Status RunTeacherForced(SessionImpl* session, int vocab, const std::vector<int>& tokens,
                        int context, const std::function<void(size_t, const float*)>& on_logits) {
  for (size_t start = 0; start + 1 < tokens.size(); start += context) {
    size_t end = std::min(tokens.size(), start + context);
    std::vector<TokenId> window(tokens.begin() + start, tokens.begin() + end);
    ASSIGN_OR_RETURN(std::vector<float> logits, session->Logits(
        window, session->state()->ffn.has_observer() ? Prefill::kToken : Prefill::kBatch));  // an observer sees one token at a time
    // The last position's target starts the next window: it has no logits here.
    for (size_t p = 0; p + 1 < window.size(); ++p) {
      if (on_logits) on_logits(start + p, logits.data() + p * vocab);
    }
  }
  return Status::OK();
}

StatusOr<std::vector<int>> SelfGenerate(ModelImpl* model, int count, uint64_t seed) {
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

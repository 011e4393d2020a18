// The generation loop (llama2.c's generate()) and teacher-forced logits.
#include "runtime/session_impl.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace llmflash {
namespace {

Status ValidateGenerate(const GenerateOptions& o) {
  auto bad = [](const std::string& what) { return Status::InvalidArgument("GenerateOptions." + what); };
  if (o.max_tokens < 0) return bad("max_tokens must be >= 0");
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature)) {
    return bad("temperature must be a finite number >= 0");
  }
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) return bad("top_p must be in (0, 1]");
  if (o.top_k < 0) return bad("top_k must be >= 0");
  if (!(o.min_p >= 0.0f && o.min_p < 1.0f)) return bad("min_p must be in [0, 1)");
  if (!(o.repetition_penalty > 0.0f) || !std::isfinite(o.repetition_penalty)) {
    return bad("repetition_penalty must be a finite number > 0");
  }
  if (o.repetition_window < 0) return bad("repetition_window must be >= 0");
  return Status::OK();
}

}  // namespace

SessionImpl::SessionImpl(ModelImpl* model, SessionState* state, const SessionOptions& options)
    : model_(model), state_(state), lookahead_(options.lookahead) {
  state_->ffn.Reset();
  state_->ffn.set_observer(nullptr);
  state_->ffn.set_compute_window(options.compute_window);
  state_->ffn.set_reuse(options.reuse_resident_neurons);
  state_->transformer.set_use_predictor(options.use_predictor);
  state_->transformer.set_lookahead(options.lookahead);
  stats_.io_backend = state_->ffn.io().name();
  stats_.direct_io = state_->ffn.io().direct_io();
}

SessionImpl::~SessionImpl() { model_->Release(state_); }

void SessionImpl::Reset() {
  state_->ffn.Reset();
  state_->transformer.set_lookahead(lookahead_);
  stats_.Clear();
  stats_.io_backend = state_->ffn.io().name();
  stats_.direct_io = state_->ffn.io().direct_io();
}

StatusOr<const float*> SessionImpl::Step(int token, int pos) {
  TokenStats ts;
  auto logits = state_->transformer.Forward(token, pos, &ts);
  if (logits.ok()) stats_.tokens.push_back(ts);
  return logits;
}

Status SessionImpl::Generate(std::string_view prompt, const GenerateOptions& options,
                             const TokenCallback& on_token) {
  Status st = ValidateGenerate(options);
  if (!st.ok()) return st;
  st = model_->NeedTokenizer();
  if (!st.ok()) return st;
  const TextTokenizer& tok = model_->tokenizer();
  std::vector<int> tokens = tok.Encode(prompt, options.add_bos, options.parse_special);
  if (tokens.empty()) {
    return Status::InvalidArgument("the prompt is empty and GenerateOptions.add_bos is false: nothing to run");
  }
  const int context = model_->info().max_context;
  if (static_cast<int>(tokens.size()) > context) {
    return Status::InvalidArgument("the prompt is " + std::to_string(tokens.size()) +
                                   " tokens; the context holds " + std::to_string(context));
  }
  sampler_.Reset(options);
  const int vocab = model_->info().vocab_size;
  logits_.resize(vocab);
  const int n_prompt = static_cast<int>(tokens.size());
  int token = tokens[0], generated = 0;
  for (int pos = 0; pos < context; ++pos) {
    auto logits = Step(token, pos);
    if (!logits.ok()) return logits.status();
    int next;
    if (pos + 1 < n_prompt) {
      next = tokens[pos + 1];
      ++stats_.prompt_tokens;
    } else {
      if (generated >= options.max_tokens) break;
      std::memcpy(logits_.data(), *logits, vocab * sizeof(float));
      // tokens holds the context so far: the prompt, then what was sampled.
      const int window = std::min(pos + 1, options.repetition_window);
      next = sampler_.Sample(logits_.data(), vocab, std::span<const int>(tokens).subspan(pos + 1 - window, window));
      tokens.push_back(next);
      ++generated;
      ++stats_.generated_tokens;
      if (tok.IsStop(next)) break;
      if (on_token && !on_token(next, tok.Decode(token, next))) break;
    }
    token = next;
  }
  return Status::OK();
}

Status SessionImpl::Run(const std::vector<TokenId>& tokens, const LogitsCallback& on_logits) {
  if (static_cast<int>(tokens.size()) > model_->info().max_context) {
    return Status::InvalidArgument(std::to_string(tokens.size()) + " tokens exceed the context of " +
                                   std::to_string(model_->info().max_context));
  }
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    auto logits = Step(tokens[pos], static_cast<int>(pos));
    if (!logits.ok()) return logits.status();
    ++stats_.prompt_tokens;
    if (on_logits && !on_logits(static_cast<int>(pos), *logits)) break;
  }
  return Status::OK();
}

StatusOr<std::vector<float>> SessionImpl::Logits(const std::vector<TokenId>& tokens) {
  const size_t vocab = model_->info().vocab_size;
  std::vector<float> out;
  out.reserve(tokens.size() * vocab);
  Status st = Run(tokens, [&](int, const float* logits) {
    out.insert(out.end(), logits, logits + vocab);
    return true;
  });
  if (!st.ok()) return Status(st.code(), "Logits: " + st.message());
  return out;
}

}  // namespace llmflash

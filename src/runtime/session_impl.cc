// The generation loop (llama2.c's generate()) and teacher-forced logits.
#include "runtime/session_impl.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/stop_strings.h"
#include "util/macros.h"
#include "util/timer.h"

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
  logits_.resize(model_->info().vocab_size);
}

SessionImpl::~SessionImpl() { model_->Release(state_); }

void SessionImpl::NewContext() {
  context_.clear();
  kv_len_ = 0;
  have_logits_ = false;
}

void SessionImpl::Reset() {
  state_->ffn.Reset();
  state_->transformer.set_lookahead(lookahead_);
  stats_.Clear();
  stats_.io_backend = state_->ffn.io().name();
  stats_.direct_io = state_->ffn.io().direct_io();
  NewContext();
}

StatusOr<std::vector<int>> SessionImpl::EncodeForContext(std::string_view text, const GenerateOptions& o) {
  RETURN_IF_ERROR(model_->NeedTokenizer());
  return model_->tokenizer().Encode(text, o.add_bos && context_.empty(), o.parse_special);
}

StatusOr<const float*> SessionImpl::RunNext(int n, bool prompt, bool all_logits) {
  TokenStats ts;
  ts.prompt = prompt;
  ASSIGN_OR_RETURN(const float* logits,
                   state_->transformer.Forward(std::span<const int>(context_.data() + kv_len_, n), kv_len_, &ts,
                                               all_logits));
  stats_.tokens.push_back(ts);
  kv_len_ += n;
  const size_t vocab = logits_.size();
  std::memcpy(logits_.data(), logits + (all_logits ? (n - 1) * vocab : 0), vocab * sizeof(float));
  have_logits_ = true;
  return logits;
}

Status SessionImpl::Prefill(std::span<const int> tokens, llmflash::Prefill mode, const LogitsCallback& on_logits,
                            TurnStats* turn) {
  const int context = model_->info().max_context;
  const int pending = static_cast<int>(context_.size()) - kv_len_;
  if (kv_len_ + pending + static_cast<int64_t>(tokens.size()) > context) {
    return Status::InvalidArgument(
        std::to_string(tokens.size()) + " more tokens do not fit: the context holds " +
        std::to_string(context_.size()) + " of its " + std::to_string(context) +
        " (Session::Reset() starts over; ModelOptions::max_context, --max-context, makes it longer)");
  }
  Timer timer;
  context_.insert(context_.end(), tokens.begin(), tokens.end());
  const size_t vocab = logits_.size();
  const int batch = mode == Prefill::kToken ? 1 : state_->transformer.max_batch();
  Status st;
  while (kv_len_ < static_cast<int>(context_.size())) {
    const int n = std::min<int>(batch, static_cast<int>(context_.size()) - kv_len_);
    const bool all = on_logits && n > 1;
    const int first = kv_len_;
    auto logits = RunNext(n, /*prompt=*/true, all);
    if (!logits.ok()) {
      st = logits.status();
      break;
    }
    turn->prompt_tokens += n;
    stats_.prompt_tokens += n;
    bool go_on = true;
    for (int b = 0; b < n && on_logits && go_on; ++b) {
      go_on = on_logits(first + b, *logits + (all ? b * vocab : 0));
    }
    if (!go_on) break;
  }
  context_.resize(kv_len_);  // what did not run is not in the context
  turn->prefill_ms += timer.ElapsedMs();
  return st;
}

Status SessionImpl::Append(std::string_view text, const GenerateOptions& options) {
  RETURN_IF_ERROR(ValidateGenerate(options));
  ASSIGN_OR_RETURN(std::vector<int> tokens, EncodeForContext(text, options));
  return AppendTokens(tokens, options.prefill, nullptr);
}

Status SessionImpl::AppendTokens(const std::vector<TokenId>& tokens, llmflash::Prefill prefill,
                                 const LogitsCallback& on_logits) {
  TurnStats turn;
  turn.context_before = context_.size();
  Status st = Prefill(tokens, prefill, on_logits, &turn);
  stats_.turns.push_back(turn);
  return st;
}

Status SessionImpl::Generate(std::string_view prompt, const GenerateOptions& options,
                             const TokenCallback& on_token) {
  RETURN_IF_ERROR(ValidateGenerate(options));
  Timer call;
  ASSIGN_OR_RETURN(std::vector<int> tokens, EncodeForContext(prompt, options));
  if (tokens.empty() && context_.empty()) {
    return Status::InvalidArgument("the prompt is empty and GenerateOptions.add_bos is false: nothing to run");
  }
  TurnStats turn;
  turn.context_before = context_.size();
  Status st = Prefill(tokens, options.prefill, nullptr, &turn);
  if (!st.ok()) {
    stats_.turns.push_back(turn);
    return st;
  }
  const TextTokenizer& tok = model_->tokenizer();
  const int context = model_->info().max_context;
  sampler_.Reset(options);
  StopStrings stops(options.stop);
  double first_at = -1;
  int last = -1;  // the last token delivered, for the final flush
  bool go_on = true;
  while (go_on && turn.generated_tokens < static_cast<uint64_t>(options.max_tokens)) {
    if (kv_len_ < static_cast<int>(context_.size())) {  // the last sampled token
      if (kv_len_ >= context) break;  // the context is full
      st = RunNext(1, /*prompt=*/false, false).status();
      if (!st.ok()) break;
    }
    // A token sampled now could never run: the context ends here.
    if (!have_logits_ || kv_len_ >= context) break;
    const int window = std::min<int>(kv_len_, options.repetition_window);
    sample_.assign(logits_.begin(), logits_.end());  // Sample changes them; a later call may need them
    const int next = sampler_.Sample(sample_.data(), static_cast<int>(sample_.size()),
                                     std::span<const int>(context_).subspan(kv_len_ - window, window));
    if (first_at < 0) first_at = call.ElapsedMs();
    ++turn.generated_tokens;
    ++stats_.generated_tokens;
    if (tok.IsStop(next)) break;
    const int prev = context_.empty() ? -1 : context_.back();
    context_.push_back(next);  // pending: the next step runs it
    const std::string text = stops.Feed(tok.Decode(prev, next));
    last = next;
    if (!text.empty() && on_token) go_on = on_token(next, text);
    if (stops.stopped()) break;
  }
  if (go_on && !stops.stopped() && last >= 0 && on_token) {
    const std::string rest = stops.Flush();
    if (!rest.empty()) on_token(last, rest);
  }
  turn.ttft_ms = first_at < 0 ? 0 : first_at;
  turn.decode_ms = first_at < 0 ? 0 : call.ElapsedMs() - first_at;
  stats_.turns.push_back(turn);
  return st;
}

Status SessionImpl::Run(const std::vector<TokenId>& tokens, const LogitsCallback& on_logits) {
  NewContext();
  return AppendTokens(tokens, Prefill::kToken, on_logits);
}

StatusOr<std::vector<float>> SessionImpl::Logits(const std::vector<TokenId>& tokens, llmflash::Prefill prefill) {
  const size_t vocab = model_->info().vocab_size;
  std::vector<float> out;
  out.reserve(tokens.size() * vocab);
  NewContext();
  Status st = AppendTokens(tokens, prefill, [&](int, const float* logits) {
    out.insert(out.end(), logits, logits + vocab);
    return true;
  });
  if (!st.ok()) return Status(st.code(), "Logits: " + st.message());
  return out;
}

}  // namespace llmflash

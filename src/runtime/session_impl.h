// SessionImpl: one context over one preallocated SessionState: text appended
// in micro-batches, generation continuing after what the context holds.
//
// Thread-safety: one thread at a time; distinct sessions of one model may run
// on different threads.
#ifndef LLMFLASH_RUNTIME_SESSION_IMPL_H_
#define LLMFLASH_RUNTIME_SESSION_IMPL_H_

#include <string>
#include <vector>

#include "llmflash/model.h"
#include "runtime/model_impl.h"
#include "runtime/sampler.h"

namespace llmflash {

class SessionImpl final : public Session {
 public:
  SessionImpl(ModelImpl* model, SessionState* state, const SessionOptions& options);
  ~SessionImpl() override;

  Status Generate(std::string_view prompt, const GenerateOptions& options,
                  const TokenCallback& on_token) override;
  Status Append(std::string_view text, const GenerateOptions& options) override;
  Status AppendTokens(const std::vector<TokenId>& tokens, Prefill prefill,
                      const LogitsCallback& on_logits) override;
  const std::vector<TokenId>& context() const override { return context_; }
  Status Run(const std::vector<TokenId>& tokens, const LogitsCallback& on_logits) override;
  StatusOr<std::vector<float>> Logits(const std::vector<TokenId>& tokens,
                                      Prefill prefill = Prefill::kBatch) override;
  void Reset() override;
  const Stats& stats() const override { return stats_; }

  // Internal: the state, for tests and the bench.
  SessionState* state() { return state_; }
  // Forgets the context, keeping the window and the stats (Logits and Run
  // start with it; so does each window of a calibration run).
  void NewContext();

 private:
  // Encodes text for this context (BOS only at its start).
  StatusOr<std::vector<int>> EncodeForContext(std::string_view text, const GenerateOptions& o);
  // Runs the pending token (if any) and then `tokens` at the end of the
  // context; logits_ ends as the logits after the last. Fails, changing
  // nothing, when they do not fit.
  Status Prefill(std::span<const int> tokens, llmflash::Prefill mode, const LogitsCallback& on_logits,
                 TurnStats* turn);
  // Runs the next n tokens of the context (after the KV cache's) in one
  // pass; logits_ becomes the logits after the last. Returns the pass's
  // logits (every token's when `all_logits`).
  StatusOr<const float*> RunNext(int n, bool prompt, bool all_logits);
  ModelImpl* model_;
  SessionState* state_;
  const Lookahead lookahead_;
  Sampler sampler_;
  Stats stats_;
  std::vector<TokenId> context_;  // every token of the context, the pending one last
  int kv_len_ = 0;                // of them, those in the KV cache
  bool have_logits_ = false;      // logits_ holds the logits after position kv_len_ - 1
  std::vector<float> logits_, sample_;
};

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_SESSION_IMPL_H_

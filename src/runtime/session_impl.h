// SessionImpl: generation over one preallocated SessionState.
//
// Thread-safety: one thread at a time; distinct sessions of one model may run
// on different threads.
#ifndef LLMFLASH_RUNTIME_SESSION_IMPL_H_
#define LLMFLASH_RUNTIME_SESSION_IMPL_H_

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
  Status Run(const std::vector<TokenId>& tokens, const LogitsCallback& on_logits) override;
  StatusOr<std::vector<float>> Logits(const std::vector<TokenId>& tokens) override;
  void Reset() override;
  const Stats& stats() const override { return stats_; }

  // Internal: the state, for tests and the bench.
  SessionState* state() { return state_; }

 private:
  // Runs one token at `pos`, appends its TokenStats.
  StatusOr<const float*> Step(int token, int pos);

  ModelImpl* model_;
  SessionState* state_;
  const Lookahead lookahead_;
  Sampler sampler_;
  Stats stats_;
  std::vector<float> logits_;
};

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_SESSION_IMPL_H_

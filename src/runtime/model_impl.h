// ModelImpl and SessionImpl: the Model/Session interfaces of model.h.
//
// Open loads the manifest, resident weights and tokenizer, plans the DRAM
// budget and preallocates max_sessions session states (KV cache, neuron
// matrices, I/O backend), so that nothing the budget covers is allocated
// after Open. NewSession hands out a free state; its destructor returns it.
//
// Thread-safety: ModelImpl is immutable after Open except for the state pool,
// guarded by a mutex. A SessionImpl is used by one thread at a time.
#ifndef LLMFLASH_RUNTIME_MODEL_IMPL_H_
#define LLMFLASH_RUNTIME_MODEL_IMPL_H_

#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <vector>

#include "format/manifest.h"
#include "llmflash/model.h"
#include "model/flash_ffn.h"
#include "model/chat_template.h"
#include "model/text_tokenizer.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "runtime/memory_plan.h"

namespace llmflash {

// Everything one session mutates.
struct SessionState {
  explicit SessionState(int threads) : pool(threads) {}
  ThreadPool pool;
  FlashFfn ffn;
  Transformer transformer;
  bool in_use = false;
};

class ModelImpl final : public Model {
 public:
  // `faults` (tests only) is installed in every session's I/O backend.
  static StatusOr<std::unique_ptr<Model>> OpenImpl(const std::string& dir,
                                                   const ModelOptions& options,
                                                   IoFaultInjector* faults = nullptr);

  StatusOr<std::unique_ptr<Session>> NewSession(const SessionOptions& options) override;
  const ModelInfo& info() const override { return info_; }
  const DeviceProfile& device_profile() const override { return profile_; }
  StatusOr<std::vector<TokenId>> Encode(std::string_view text, bool add_bos) const override;
  std::string Decode(TokenId prev, TokenId token) const override;
  StatusOr<std::string> RenderChat(const std::vector<ChatMessage>& messages,
                                   bool add_generation_prompt) const override;

  const Manifest& manifest() const { return manifest_; }
  const MemoryPlan& plan() const { return plan_; }
  bool has_predictor() const { return !predictors_.empty(); }
  const Predictors& predictors() const { return predictors_; }
  Predictors& mutable_predictors() { return predictors_; }  // offline work only (eval's sweep)
  const ResidentWeights& weights() const { return weights_; }
  const TextTokenizer& tokenizer() const { return *tokenizer_; }
  void Release(SessionState* state);
  // Unsupported when the model has no usable tokenizer.
  Status NeedTokenizer() const;

 private:
  Status Load(const std::string& dir, const ModelOptions& options, IoFaultInjector* faults);

  std::string dir_;
  Manifest manifest_;
  ResidentWeights weights_;
  Predictors predictors_;
  std::unique_ptr<TextTokenizer> tokenizer_;
  std::optional<ChatTemplate> chat_template_;
  MemoryPlan plan_;
  ModelInfo info_;
  DeviceProfile profile_;
  std::mutex mu_;
  std::vector<std::unique_ptr<SessionState>> states_;
};

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_MODEL_IMPL_H_

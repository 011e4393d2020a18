// The entry points: open a converted model directory, start sessions on it
// and generate text token by token, with FFN neurons read from flash.
//
//   auto model = llmflash::Model::Open("stories260K.llmflash", {});
//   auto session = (*model)->NewSession({});
//   Status st = (*session)->Generate("Once upon a time", {.max_tokens = 64},
//       [](TokenId id, std::string_view piece) { std::cout << piece; return true; });
//
// Thread-safety: a Model is immutable after Open and may be shared by any
// number of threads; each thread uses its own Session. A Session is not
// thread-safe. Every Session must be destroyed before its Model.
#ifndef LLMFLASH_MODEL_H_
#define LLMFLASH_MODEL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llmflash/export.h"
#include "llmflash/options.h"
#include "llmflash/profile.h"
#include "llmflash/stats.h"
#include "llmflash/status.h"

namespace llmflash {

using TokenId = int32_t;

// Receives each generated token and its text; return false to stop.
using TokenCallback = std::function<bool(TokenId id, std::string_view piece)>;

// Receives the logits (vocab_size floats, valid during the call) after the
// token at `pos`; return false to stop.
using LogitsCallback = std::function<bool(int pos, const float* logits)>;

// What Open decided: shapes, and how the DRAM budget is spent.
struct ModelInfo {
  std::string architecture;  // "llama" or "opt" (the forward pass's family)
  std::string source_architecture;  // what it was converted from, e.g. "Qwen2ForCausalLM" (may be empty)
  TokenId bos_id = -1;              // the token a text starts with; -1: none (Qwen)
  std::vector<TokenId> stop_ids;    // every token that ends generation (e.g. <|eot_id|>)
  std::string dtype;         // storage type of the resident matrices, e.g. "f32" (each may differ: inspect)
  std::string ffn_dtype;     // storage type of the FFN records on flash
  int n_layers = 0;
  int dim = 0;
  int ffn_dim = 0;           // neurons per FFN layer (a mixture of experts: all its experts')
  int n_experts = 0;         // experts per layer (0: a dense FFN); each has ffn_dim / n_experts neurons
  int n_experts_used = 0;    // experts the router picks per token
  int vocab_size = 0;
  int max_context = 0;       // tokens a session can hold
  int prefill_batch = 1;     // tokens a prompt's forward pass runs together
  uint64_t kv_cache_bytes = 0;  // of session_bytes: the KV cache for max_context tokens
  std::string kv_cache_dtype;   // how it stores keys and values: "f16", "f32" or "q8_0"
  uint64_t batch_bytes = 0;     // of session_bytes: activations and logits of a prompt's micro-batch
  uint64_t model_bytes = 0;     // resident file + FFN bundle file
  uint64_t resident_bytes = 0;  // always in DRAM: weights, predictors and text_bytes
  uint64_t text_bytes = 0;      // of resident_bytes: manifest, tokenizer, chat template
  uint64_t ffn_bytes = 0;       // FFN records on flash
  std::string ffn_path;         // the file holding them
  uint64_t record_bytes = 0;    // bytes one neuron occupies in the bundle
  uint64_t budget_bytes = 0;    // the DRAM budget in force
  uint64_t session_bytes = 0;   // per session: KV cache, scratch, I/O buffers
  // Neuron-matrix rows per session: per layer, in proportion to each layer's
  // expected active neurons (docs/cost-model.md), and their mean.
  std::vector<int> layer_neuron_capacity;
  int neuron_capacity = 0;
  bool streams_layers = false;  // fewer rows than ffn_dim somewhere: parts are streamed
  bool has_predictor = false;   // a sparsity predictor is stored with the model
  // What train-predictor stored: its method ("svd", "trained", or "auto":
  // chosen per layer), each layer's method, the largest layer rank, and over
  // the layers the mean recall, precision and predicted fraction it measured
  // on held-out calibration rows (empty and 0 without).
  std::string predictor_method;
  std::vector<std::string> predictor_layer_methods;
  int predictor_rank = 0;
  double predictor_recall = 0, predictor_precision = 0, predictor_fraction = 0;
  // The token embedding table stays on flash, a row read per token (untied
  // models whose budget cannot hold the whole FFN).
  bool embeddings_on_flash = false;
  // The plan (docs/cost-model.md).
  int window = 0;               // window size k in force
  std::string profile_source;   // where the device profile came from
  double weight_bytes_per_token = 0;     // resident weights one token reads
  std::map<std::string, double> weight_bytes_per_token_by_type;  // the same, by storage type
  double predictor_bytes_per_token = 0;  // predictor weights one token reads
  std::string predictor_dtype;  // how the predictor's matrices are held: f32 for f32 models, else f16
  double planned_ms_per_token = 0;  // the cost model's expected latency (llmflash mode)
  double planned_io_ms = 0, planned_compute_ms = 0, planned_predictor_ms = 0;
  double planned_reads_per_token = 0, planned_bytes_per_token = 0;
  double floor_ms = 0;          // the floor for that expected token
};

class Session;

class LLMFLASH_EXPORT Model {
 public:
  // Opens a model directory written by `llmflash convert`.
  static StatusOr<std::unique_ptr<Model>> Open(const std::string& dir,
                                               const ModelOptions& options);
  virtual ~Model();

  // Starts a session with its own KV cache and window. ResourceExhausted when
  // all ModelOptions::max_sessions slots are in use.
  virtual StatusOr<std::unique_ptr<Session>> NewSession(
      const SessionOptions& options) = 0;

  virtual const ModelInfo& info() const = 0;
  // The device profile the plan was made with.
  virtual const DeviceProfile& device_profile() const = 0;

  // Tokenizer access, for tools and tests.
  virtual StatusOr<std::vector<TokenId>> Encode(std::string_view text,
                                                bool add_bos) const = 0;
  // The text of `token` when it follows `prev` (llama2.c's decode rules).
  virtual std::string Decode(TokenId prev, TokenId token) const = 0;

  // The conversation as the model's own chat template renders it (from its
  // tokenizer_config.json at conversion), ending with the assistant's turn
  // opened when `add_generation_prompt`. Generate it with
  // GenerateOptions{.add_bos = false, .parse_special = true}. Unsupported
  // when the model has no template; a template's raise_exception() is an
  // InvalidArgument with its message.
  virtual StatusOr<std::string> RenderChat(const std::vector<ChatMessage>& messages,
                                           bool add_generation_prompt) const = 0;

 protected:
  Model() = default;
};

class LLMFLASH_EXPORT Session {
 public:
  virtual ~Session();

  // A session is one context: a conversation that continues. Each call
  // appends to it, and its tokens are processed once; Reset() starts over.

  // Appends `prompt` to the context, runs it through the model
  // (options.prefill: in batches by default), then samples up to
  // options.max_tokens new tokens after it, calling `on_token` for each.
  // Stops early at a stop token (EOS, <|eot_id|>, ...: not delivered and not
  // kept in the context), at a stop string, at the end of the context, or
  // when the callback returns false. Every delivered token is part of the
  // context, so the next call continues after it. `prompt` may be empty when
  // the context is not (generate more). A prompt that does not fit in what
  // is left of the context is an InvalidArgument, and the context is as it was.
  virtual Status Generate(std::string_view prompt,
                          const GenerateOptions& options,
                          const TokenCallback& on_token) = 0;

  // Appends `text` to the context and runs it through the model without
  // sampling (a system prompt, a document, a turn to answer later). Uses
  // options.add_bos, parse_special and prefill.
  virtual Status Append(std::string_view text, const GenerateOptions& options) = 0;

  // Appends `tokens` to the context, run in micro-batches (Prefill::kBatch)
  // or one decode step each (kToken). `on_logits` (may be empty; with
  // kBatch it makes every token's logits be computed) sees the logits after
  // each token; returning false stops there, the tokens run so far staying
  // in the context.
  virtual Status AppendTokens(const std::vector<TokenId>& tokens, Prefill prefill,
                              const LogitsCallback& on_logits) = 0;

  // The tokens the context holds, in order (the KV cache's positions, plus
  // the last sampled token, which the next call runs first).
  virtual const std::vector<TokenId>& context() const = 0;

  // Evaluates `tokens` on their own: starts a new context (keeping the
  // window and the stats) and runs them teacher-forced from position 0, each
  // one full decode step (predictor, window, reads, compute, logits) exactly
  // as a generated token would be, recorded in stats(). `on_logits` (may be
  // empty) sees the logits after each; returning false stops. Nothing is
  // sampled. This is what the benchmark's text-driven decoding measures.
  virtual Status Run(const std::vector<TokenId>& tokens,
                     const LogitsCallback& on_logits) = 0;

  // Evaluates `tokens` on their own (a new context, as Run) and returns the
  // logits at every position, vocab_size floats each, concatenated; the
  // tokens go through in micro-batches unless `prefill` is kToken.
  virtual StatusOr<std::vector<float>> Logits(const std::vector<TokenId>& tokens,
                                              Prefill prefill = Prefill::kBatch) = 0;

  // Forgets the context (KV cache) and the window.
  virtual void Reset() = 0;

  virtual const Stats& stats() const = 0;

 protected:
  Session() = default;
};

// Bytes of the model's weight files (resident file + FFN bundle), read from
// its manifest without loading anything; what a "50%" budget refers to.
LLMFLASH_EXPORT StatusOr<uint64_t> ModelWeightBytes(const std::string& dir);

// How a model directory stores its weights, from its manifest.
struct ModelStorage {
  std::string ffn_dtype;  // the FFN records' type
  uint64_t ffn_bytes = 0;
  // Resident tensors: bytes by storage type (vectors are f32).
  std::map<std::string, uint64_t> resident_bytes_by_type;
};
LLMFLASH_EXPORT StatusOr<ModelStorage> ReadModelStorage(const std::string& dir);

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_H_

// Transformer: one session's forward pass, read top to bottom like the math
// (llama2.c's forward()): embedding, then per layer RMSNorm -> attention with
// RoPE and a KV cache -> residual -> RMSNorm -> FFN from flash -> residual,
// then the final norm and the classifier.
//
// Thread-safety: not thread-safe; one per Session. The weights it points to
// are shared and immutable.
#ifndef LLMFLASH_MODEL_TRANSFORMER_H_
#define LLMFLASH_MODEL_TRANSFORMER_H_

#include <span>
#include <vector>

#include "format/manifest.h"
#include "kernels/parallel_kernels.h"
#include "llmflash/stats.h"
#include "model/flash_ffn.h"
#include "model/lookahead_policy.h"
#include "model/weights.h"
#include "predictor/low_rank_predictor.h"
#include "util/aligned_buffer.h"

namespace llmflash {

class Transformer {
 public:
  // Bytes of DRAM Init allocates for a context of `max_context` tokens and
  // forward passes of up to `max_batch` tokens (`threads`: the pool's, whose
  // chunks each keep a partial FFN sum of a batch).
  // Bytes of the KV cache for `max_context` tokens (of StateBytes).
  static uint64_t KvCacheBytes(const ModelConfig& c, int max_context, DType kv_dtype);
  static uint64_t StateBytes(const ModelConfig& c, int max_context, DType kv_dtype, int max_batch = 1,
                             int threads = 1);

  // `predictors` may be null or empty (dense model).
  // `pool` (may be null) splits the large products.
  void Init(const ModelConfig& c, const ResidentWeights* w, const Predictors* predictors,
            FlashFfn* ffn, int max_context, ThreadPool* pool = nullptr,
            DType kv_dtype = DType::kF32, int max_batch = 1);
  int max_batch() const { return max_batch_; }
  void set_use_predictor(bool on) { use_predictor_ = on && predictors_ && !predictors_->empty(); }
  bool use_predictor() const { return use_predictor_; }
  // Lookahead (pre-norm models with a predictor): before a layer's attention,
  // predict its FFN neurons from the layer's input and start reading them, so
  // the reads overlap the attention; the exact prediction after attention
  // then reads only what the lookahead missed. Also restarts kAuto's
  // measurements (a new or reset session).
  void set_lookahead(Lookahead mode) { lookahead_.Reset(mode); }

  // Runs `tokens` (1..max_batch of them) at positions pos, pos + 1, ...
  // (< max_context) in one pass: every product is a matrix product whose
  // weight rows are read once for all the tokens; each token attends
  // causally to the cache and to the tokens before it. Returns the logits of
  // the last token, or of every token (n x vocab) when `all_logits`.
  // Decoding is the one-token case. The lookahead runs for one token only.
  StatusOr<const float*> Forward(std::span<const int> tokens, int pos, TokenStats* stats,
                                 bool all_logits = false);
  StatusOr<const float*> Forward(int token, int pos, TokenStats* stats) {
    return Forward(std::span<const int>(&token, 1), pos, stats);
  }

  // RoPE's frequency per pair of a head, with the config's scaling.
  static std::vector<float> RopeFrequencies(const ModelConfig& c);

 private:
  // n rows at positions pos..: xb_ (n x dim) -> xb2_ (n x dim).
  void Attention(int l, int pos, int n);
  // One head of row b (at position pos) against the cache; `att` holds
  // max_context scores.
  void AttendHead(int l, int h, int pos, const float* q, float* att, float* out) const;
  Status Embed(int token, int pos, float* x, TokenStats* stats);  // -> x (dim)
  void Norm(const float* x, const float* weight, const float* bias, float* out) const;
  // n rows of `in` (n x dim) -> xb2_ (n x dim).
  Status Ffn(int l, const float* in, int n, TokenStats* stats);
  // A mixture-of-experts layer: the router's top-k per row, then the experts.
  Status Experts(int l, const float* in, int n, TokenStats* stats);
  // Layer l's router on n rows of `in`: each row's k experts and weights.
  void Route(int l, const float* in, int n, int32_t* ids, float* weights);
  Status Lookahead(int l, int pos, TokenStats* stats);  // starts layer l's reads; uses xb_, xb2_
  void Rope(float* vec, int n, int pos, const std::vector<float>& freq) const;
  // Whether layer l attends through the sliding window.
  bool Sliding(int l) const {
    return c_.sliding_window > 0 && (c_.sliding_window_period <= 1 || (l + 1) % c_.sliding_window_period != 0);
  }

  ModelConfig c_;
  const ResidentWeights* w_ = nullptr;
  FlashFfn* ffn_ = nullptr;
  const Predictors* predictors_ = nullptr;
  bool use_predictor_ = false;
  LookaheadPolicy lookahead_;
  ThreadPool* pool_ = nullptr;
  std::vector<int32_t> active_, lookahead_ids_;
  int max_batch_ = 1;
  // A batch's FFN: which neurons each row computes (n x ffn_dim), their union.
  std::vector<uint8_t> batch_mask_;
  std::vector<int32_t> batch_union_;
  std::vector<float> pred_scores_, pred_scratch_;
  // Mixture of experts: router probabilities (n x n_experts), each row's
  // top-k experts and their weights (n x n_experts_used).
  std::vector<float> router_probs_, route_weights_;
  std::vector<int32_t> route_;
  int max_context_ = 0;
  int64_t step_ = 0;  // forward passes so far: the window's clock
  std::vector<float> x_, xb_, xb2_, q_, k_, v_, att_, logits_;
  // [layer][pos][kv_dim], f32 or f16 (kv_dtype_).
  std::vector<char> key_cache_, value_cache_;
  DType kv_dtype_ = DType::kF32;
  void StoreKv(const float* from, int n, char* to) const;
  // The previous token's attention output per layer [layer][dim]: the
  // lookahead's guess of what this token's attention will add.
  std::vector<float> prev_attn_;
  AlignedBuffer emb_scratch_;  // one embedding row read from flash
  int prev_attn_pos_ = -1;  // position of the token that wrote prev_attn_
  std::vector<float> rope_freq_;                // per pair within a head (scaling applied)
  std::vector<float> rope_local_freq_;          // the sliding layers' (Gemma 3); empty: rope_freq_
  // The config's choices, parsed once in Init.
  bool rope_half_ = false;    // pairs (i, i + head_dim/2), else (2i, 2i+1)
  bool rope_ = true;          // RoPE positions, else learned ones
  bool layernorm_ = false;    // LayerNorm with bias, else RMSNorm
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_TRANSFORMER_H_

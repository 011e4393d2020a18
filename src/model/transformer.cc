// The forward pass.
#include "model/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "util/quantize.h"
#include "kernels/typed_kernels.h"
#include "util/half.h"
#include "util/macros.h"
#include "util/timer.h"

namespace llmflash {

uint64_t Transformer::StateBytes(const ModelConfig& c, int max_context, DType kv_dtype) {
  uint64_t kv = static_cast<uint64_t>(c.n_kv_heads) * c.head_dim;
  uint64_t q = static_cast<uint64_t>(c.n_heads) * c.head_dim;
  uint64_t cache = 2ull * c.n_layers * max_context * kv;
  uint64_t wide = std::max<uint64_t>({static_cast<uint64_t>(c.dim), q, static_cast<uint64_t>(c.EmbedDim())});
  uint64_t scratch = 2ull * c.dim + wide + q + 2 * kv + static_cast<uint64_t>(c.n_heads) * max_context +
                     c.vocab_size + c.head_dim + c.ffn_dim;  // + lookahead ids
  uint64_t prev_attn = static_cast<uint64_t>(c.n_layers) * c.dim;  // lookahead's guess
  // Plus room to read one embedding row from flash (AlignedBuffer rounds it
  // up to a whole block).
  uint64_t embedding_read = ResidentWeights::EmbeddingScratchBytes(c) + kDirectIoAlignment;
  return RowBytes(kv_dtype, cache) + (scratch + prev_attn) * sizeof(float) + embedding_read;
}

void Transformer::Init(const ModelConfig& c, const ResidentWeights* w,
                       const Predictors* predictors, FlashFfn* ffn, int max_context,
                       ThreadPool* pool, DType kv_dtype) {
  c_ = c;
  kv_dtype_ = kv_dtype;
  pool_ = pool;
  w_ = w;
  predictors_ = predictors;
  set_use_predictor(true);
  if (predictors_ != nullptr) {
    active_.reserve(c.ffn_dim);
    lookahead_ids_.reserve(c.ffn_dim);
    pred_scores_.assign(c.ffn_dim, 0);
    pred_scratch_.assign(2 * predictors_->max_rank(), 0);
  }
  ffn_ = ffn;
  max_context_ = max_context;
  const size_t kv = static_cast<size_t>(c.n_kv_heads) * c.head_dim;
  const size_t q = static_cast<size_t>(c.n_heads) * c.head_dim;
  x_.assign(c.dim, 0); xb2_.assign(c.dim, 0);
  if (w->embeddings_on_flash()) {
    emb_scratch_.Allocate(ResidentWeights::EmbeddingScratchBytes(c));
  }
  xb_.assign(std::max<size_t>({static_cast<size_t>(c.dim), q, static_cast<size_t>(c.EmbedDim())}), 0);
  q_.assign(q, 0); k_.assign(kv, 0); v_.assign(kv, 0);
  att_.assign(static_cast<size_t>(c.n_heads) * max_context, 0);
  logits_.assign(c.vocab_size, 0);
  key_cache_.assign(static_cast<size_t>(c.n_layers) * max_context * RowBytes(kv_dtype, kv), 0);
  value_cache_.assign(key_cache_.size(), 0);
  prev_attn_.assign(static_cast<size_t>(c.n_layers) * c.dim, 0);
  prev_attn_pos_ = -1;
  rope_half_ = c.rope_style == "half";
  rope_ = c.positions == "rope";
  layernorm_ = c.norm == "layernorm";
  rope_freq_ = RopeFrequencies(c);
  rope_local_freq_.clear();
  if (c.rope_local_theta > 0) {  // Gemma 3's local layers: their own base, no scaling
    ModelConfig local = c;
    local.rope_theta = c.rope_local_theta;
    local.rope_scaling = "none";
    rope_local_freq_ = RopeFrequencies(local);
  }
}

std::vector<float> Transformer::RopeFrequencies(const ModelConfig& c) {
  std::vector<float> f(c.head_dim / 2);
  for (int i = 0; i < c.head_dim / 2; ++i) {
    f[i] = 1.0f / std::pow(c.rope_theta, static_cast<float>(2 * i) / c.head_dim);
  }
  if (c.rope_scaling == "linear") {
    for (float& v : f) v /= c.rope_factor;
  } else if (c.rope_scaling == "llama3") {
    // Llama 3.1: wavelengths longer than the original context / low factor
    // are slowed by `factor`, shorter than context / high factor kept, and
    // the band between interpolated.
    const double ctx = c.rope_original_context, lo = c.rope_low_freq_factor, hi = c.rope_high_freq_factor;
    const double low_wavelen = ctx / lo, high_wavelen = ctx / hi;
    for (float& v : f) {
      const double wavelen = 2 * M_PI / v;
      if (wavelen > low_wavelen) {
        v = static_cast<float>(v / c.rope_factor);
      } else if (wavelen >= high_wavelen) {
        const double smooth = (ctx / wavelen - lo) / (hi - lo);
        v = static_cast<float>((1 - smooth) * v / c.rope_factor + smooth * v);
      }
    }
  }
  return f;
}

// "interleaved" (llama2.c) rotates pairs (2i, 2i+1) of each head;
// "half" (Hugging Face) rotates pairs (i, i + head_dim/2).
void Transformer::Rope(float* vec, int n, int pos, const std::vector<float>& freq) const {
  const int hs = c_.head_dim, half = hs / 2;
  for (int h = 0; h < n / hs; ++h) {
    float* v = vec + h * hs;
    for (int i = 0; i < half; ++i) {
      float angle = pos * freq[i];
      float cr = std::cos(angle), ci = std::sin(angle);
      int a = rope_half_ ? i : 2 * i;
      int b = rope_half_ ? i + half : 2 * i + 1;
      float v0 = v[a], v1 = v[b];
      v[a] = v0 * cr - v1 * ci;
      v[b] = v0 * ci + v1 * cr;
    }
  }
}

void Transformer::Attention(int l, int pos) {
  const LayerWeights& w = w_->layers[l];
  const int hs = c_.head_dim, kv_dim = c_.n_kv_heads * hs, q_dim = c_.n_heads * hs;
  const int kv_mul = c_.n_heads / c_.n_kv_heads;
  MatVec(pool_, w.wq, xb_.data(), q_dim, c_.dim, q_.data());
  MatVec(pool_, w.wk, xb_.data(), kv_dim, c_.dim, k_.data());
  MatVec(pool_, w.wv, xb_.data(), kv_dim, c_.dim, v_.data());
  if (w.bq != nullptr) {
    Axpy(1.0f, w.bq, q_dim, q_.data());
    Axpy(1.0f, w.bk, kv_dim, k_.data());
    Axpy(1.0f, w.bv, kv_dim, v_.data());
  }
  if (w.q_norm != nullptr) {  // Qwen3: RMSNorm over each head, before RoPE
    for (int h = 0; h < c_.n_heads; ++h) RmsNorm(q_.data() + h * hs, w.q_norm, hs, c_.norm_eps, q_.data() + h * hs);
    for (int h = 0; h < c_.n_kv_heads; ++h) RmsNorm(k_.data() + h * hs, w.k_norm, hs, c_.norm_eps, k_.data() + h * hs);
  }
  const bool sliding = Sliding(l);
  if (rope_) {
    const std::vector<float>& freq = sliding && !rope_local_freq_.empty() ? rope_local_freq_ : rope_freq_;
    Rope(q_.data(), q_dim, pos, freq);
    Rope(k_.data(), kv_dim, pos, freq);
  }
  const size_t row = RowBytes(kv_dtype_, kv_dim);
  const size_t layer_off = static_cast<size_t>(l) * max_context_ * row;
  char* kc = key_cache_.data() + layer_off;
  char* vc = value_cache_.data() + layer_off;
  StoreKv(k_.data(), kv_dim, kc + static_cast<size_t>(pos) * row);
  StoreKv(v_.data(), kv_dim, vc + static_cast<size_t>(pos) * row);
  // Gemma scales by query_pre_attn_scalar^-1/2, everyone else by head_dim's.
  const float scale = 1.0f / std::sqrt(c_.query_scale > 0 ? c_.query_scale : static_cast<float>(hs));
  const float cap = c_.attn_softcap;
  // The sliding window (Mistral: every layer; Gemma: some): only the last
  // `sliding_window` positions.
  const int first = sliding ? std::max(0, pos - c_.sliding_window + 1) : 0;
  for (int h = 0; h < c_.n_heads; ++h) {
    const float* q = q_.data() + h * hs;
    float* att = att_.data() + static_cast<size_t>(h) * max_context_;
    const int kv_off = (h / kv_mul) * hs;
    for (int t = first; t <= pos; ++t) {
      att[t] = DotTyped(kc + static_cast<size_t>(t) * row + RowBytes(kv_dtype_, kv_off), kv_dtype_, q, hs) * scale;
      if (cap > 0) att[t] = cap * std::tanh(att[t] / cap);  // Gemma 2's soft-capping
    }
    Softmax(att + first, pos + 1 - first);
    float* out = xb_.data() + h * hs;
    std::memset(out, 0, hs * sizeof(float));
    for (int t = first; t <= pos; ++t) {
      AxpyTyped(att[t], vc + static_cast<size_t>(t) * row + RowBytes(kv_dtype_, kv_off), kv_dtype_, hs, out);
    }
  }
  MatVec(pool_, w.wo, xb_.data(), c_.dim, q_dim, xb2_.data());
  if (w.bo != nullptr) Axpy(1.0f, w.bo, c_.dim, xb2_.data());
  if (w.post_attention_norm != nullptr) {  // Gemma: the attention output is normed before the residual
    RmsNorm(xb2_.data(), w.post_attention_norm, c_.dim, c_.norm_eps, xb2_.data());
  }
}

void Transformer::StoreKv(const float* from, int n, char* to) const {
  QuantizeRow(kv_dtype_, from, n, to);
}

void Transformer::Norm(const float* x, const float* weight, const float* bias, float* out) const {
  if (layernorm_) {
    LayerNorm(x, weight, bias, c_.dim, c_.norm_eps, out);
  } else {
    RmsNorm(x, weight, c_.dim, c_.norm_eps, out);
  }
}

Status Transformer::Embed(int token, int pos, TokenStats* stats) {
  const int d = c_.dim, e = c_.EmbedDim();
  const WeightRef& emb = w_->tok_embeddings;
  const void* row;
  if (w_->embeddings_on_flash()) {
    ScopedTimer timer(&stats->io_ms);
    RETURN_IF_ERROR(w_->ReadEmbedding(token, emb_scratch_.data(), &row));
  } else {
    row = emb.At(static_cast<size_t>(token) * e);
  }
  if (w_->project_in) {
    ToFloat(row, emb.dtype, e, xb_.data());
    MatVec(pool_, w_->project_in, xb_.data(), d, e, x_.data());
  } else {
    ToFloat(row, emb.dtype, d, x_.data());
  }
  if (c_.embed_scale) {  // Gemma: times sqrt(dim), in the activations' float type
    const float s = static_cast<float>(std::sqrt(static_cast<double>(d)));
    for (int i = 0; i < d; ++i) x_[i] *= s;
  }
  if (w_->pos_embeddings) {
    const WeightRef& p = w_->pos_embeddings;
    AxpyTyped(1.0f, p.At(static_cast<size_t>(pos + c_.position_offset) * d), p.dtype, d, x_.data());
  }
  return Status::OK();
}

// The layer's FFN input is Norm(x + Attn(x)). Before attention runs, the
// guess is Norm(x + a), a being what attention added for the previous token
// at this layer (attention outputs of neighbouring tokens are alike: both
// mostly weigh the same context), or Norm(x) at the first position.
Status Transformer::Lookahead(int l, int pos, TokenStats* stats) {
  const LayerWeights& w = w_->layers[l];
  const int d = c_.dim;
  std::memcpy(xb2_.data(), x_.data(), d * sizeof(float));
  if (prev_attn_pos_ == pos - 1 && pos > 0) {
    Axpy(1.0f, prev_attn_.data() + static_cast<size_t>(l) * d, d, xb2_.data());
  }
  Norm(xb2_.data(), w.ffn_norm, w.ffn_norm_bias, xb_.data());
  {
    ScopedTimer timer(&stats->predictor_ms);
    predictors_->layer(l).Predict(xb_.data(), &lookahead_ids_, pred_scores_.data(),
                                  pred_scratch_.data(), pool_);
  }
  return ffn_->Prefetch(l, step_, lookahead_ids_, stats);
}

Status Transformer::Ffn(int l, const float* in, TokenStats* stats) {
  std::fill(xb2_.begin(), xb2_.end(), 0.0f);
  std::span<const int32_t> active = ffn_->all_ids();
  if (use_predictor_) {
    ScopedTimer timer(&stats->predictor_ms);
    predictors_->layer(l).Predict(in, &active_, pred_scores_.data(), pred_scratch_.data(), pool_);
    active = active_;
  }
  Status st = ffn_->Compute(l, step_, active, in, xb2_.data(), stats, w_->layers[l].ffn_up_bias);
  const float* down_bias = w_->layers[l].ffn_down_bias;
  if (down_bias != nullptr) Axpy(1.0f, down_bias, c_.dim, xb2_.data());
  if (const float* post = w_->layers[l].post_ffn_norm) RmsNorm(xb2_.data(), post, c_.dim, c_.norm_eps, xb2_.data());
  return st;
}

StatusOr<const float*> Transformer::Forward(int token, int pos, TokenStats* stats) {
  if (token < 0 || token >= c_.vocab_size) {
    return Status::InvalidArgument("token id " + std::to_string(token) + " is outside the vocabulary");
  }
  if (pos < 0 || pos >= max_context_) {
    return Status::InvalidArgument("position " + std::to_string(pos) + " exceeds the context of " +
                                   std::to_string(max_context_) + " tokens");
  }
  Timer total;
  const int d = c_.dim;
  const uint64_t moved_before = ffn_->bytes_moved();
  RETURN_IF_ERROR(Embed(token, pos, stats));
  ffn_->BeginToken(stats);
  const bool can_look = c_.pre_norm && use_predictor_ && ffn_->can_prefetch();
  const bool lookahead = can_look && lookahead_.Next();
  stats->lookahead = lookahead;
  for (int l = 0; l < c_.n_layers; ++l) {
    const LayerWeights& w = w_->layers[l];
    if (c_.pre_norm) {  // x += Attn(Norm(x)); x += FFN(Norm(x))
      if (lookahead) {
        Status st = Lookahead(l, pos, stats);
        if (!st.ok()) return st;
      }
      Norm(x_.data(), w.attention_norm, w.attention_norm_bias, xb_.data());
      Attention(l, pos);
      if (can_look) {  // also without the lookahead: the next token may use it
        std::memcpy(prev_attn_.data() + static_cast<size_t>(l) * d, xb2_.data(), d * sizeof(float));
      }
      Axpy(1.0f, xb2_.data(), d, x_.data());
      Norm(x_.data(), w.ffn_norm, w.ffn_norm_bias, xb_.data());
      Status st = Ffn(l, xb_.data(), stats);
      if (!st.ok()) return st;
      Axpy(1.0f, xb2_.data(), d, x_.data());
    } else {  // post-norm: x = Norm(x + Attn(x)); x = Norm(x + FFN(x))
      std::memcpy(xb_.data(), x_.data(), d * sizeof(float));
      Attention(l, pos);
      Axpy(1.0f, xb2_.data(), d, x_.data());
      Norm(x_.data(), w.attention_norm, w.attention_norm_bias, x_.data());
      Status st = Ffn(l, x_.data(), stats);
      if (!st.ok()) return st;
      Axpy(1.0f, xb2_.data(), d, x_.data());
      Norm(x_.data(), w.ffn_norm, w.ffn_norm_bias, x_.data());
    }
  }
  if (w_->norm != nullptr) Norm(x_.data(), w_->norm, w_->norm_bias, x_.data());
  const float* final = x_.data();
  if (w_->project_out) {
    MatVec(pool_, w_->project_out, x_.data(), c_.EmbedDim(), d, xb_.data());
    final = xb_.data();
  }
  MatVec(pool_, w_->output, final, c_.vocab_size, c_.EmbedDim(), logits_.data());
  if (c_.final_softcap > 0) {  // Gemma 2
    const float cap = c_.final_softcap;
    for (float& v : logits_) v = cap * std::tanh(v / cap);
  }
  prev_attn_pos_ = can_look ? pos : -1;
  ++step_;
  stats->bytes_moved = ffn_->bytes_moved() - moved_before;
  stats->total_ms = total.ElapsedMs();
  stats->compute_ms = stats->total_ms - stats->io_ms - stats->memory_ms - stats->predictor_ms;
  lookahead_.Record(lookahead, stats->io_ms, stats->total_ms);
  return static_cast<const float*>(logits_.data());
}

}  // namespace llmflash

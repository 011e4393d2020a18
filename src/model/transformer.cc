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

uint64_t Transformer::KvCacheBytes(const ModelConfig& c, int max_context, DType kv_dtype) {
  return RowBytes(kv_dtype, 2ull * c.n_layers * max_context * static_cast<uint64_t>(c.n_kv_heads) * c.head_dim);
}

uint64_t Transformer::StateBytes(const ModelConfig& c, int max_context, DType kv_dtype, int max_batch,
                                 int threads) {
  const uint64_t kv = static_cast<uint64_t>(c.n_kv_heads) * c.head_dim;
  const uint64_t q = static_cast<uint64_t>(c.n_heads) * c.head_dim;
  const uint64_t wide = std::max<uint64_t>({static_cast<uint64_t>(c.dim), q, static_cast<uint64_t>(c.EmbedDim())});
  const uint64_t nb = std::max(1, max_batch);
  const uint64_t chunks = threads > 1 ? static_cast<uint64_t>(threads) * ThreadPool::kChunksPerThread : 1;
  // Per row of a batch: x, xb, xb2, q, k, v and its logits.
  const uint64_t per_row = 2ull * c.dim + wide + q + 2 * kv + c.vocab_size;
  uint64_t scratch = nb * per_row + std::max<uint64_t>(c.n_heads, chunks) * max_context + c.head_dim +
                     c.ffn_dim;  // + lookahead ids
  uint64_t bytes = 0;
  if (nb > 1) {
    // The FFN's row masks and union, the pool chunks' partial sums, and each
    // thread's prepared inputs: int8 blocks (36 bytes per 32) for quantized
    // rows, one set for the products (up to `wide` columns) and one for the
    // FFN's records (dim).
    scratch += c.ffn_dim + static_cast<uint64_t>(std::max(0, threads - 1)) * nb * c.dim;
    bytes += nb * c.ffn_dim + static_cast<uint64_t>(threads) * nb * (wide + c.dim) * 9 / 8;
    // Each thread's gate and up products of a panel of neurons, its h per
    // tile and each row's tokens (FfnRowsBatch).
    bytes += static_cast<uint64_t>(threads) * 4 * nb * kPanelRows * sizeof(float);
  }
  if (c.moe()) {
    // The router's probabilities and each row's top-k (ids and weights);
    // the rows routed to one expert gathered, and its output for them.
    scratch += nb * (c.n_experts + 2ull * c.n_experts_used + 2ull * c.dim);
  }
  const uint64_t prev_attn = static_cast<uint64_t>(c.n_layers) * c.dim;  // lookahead's guess
  // Plus room to read one embedding row from flash (AlignedBuffer rounds it
  // up to a whole block).
  const uint64_t embedding_read = ResidentWeights::EmbeddingScratchBytes(c) + kDirectIoAlignment;
  return KvCacheBytes(c, max_context, kv_dtype) + (scratch + prev_attn) * sizeof(float) + bytes + embedding_read;
}

void Transformer::Init(const ModelConfig& c, const ResidentWeights* w,
                       const Predictors* predictors, FlashFfn* ffn, int max_context,
                       ThreadPool* pool, DType kv_dtype, int max_batch) {
  c_ = c;
  kv_dtype_ = kv_dtype;
  pool_ = pool;
  w_ = w;
  predictors_ = predictors;
  max_batch_ = std::max(1, max_batch);
  const size_t nb = max_batch_;
  set_use_predictor(true);
  if (c.moe()) lookahead_ids_.reserve(static_cast<size_t>(c.n_experts_used) * c.ExpertDim());
  if (predictors_ != nullptr) {
    active_.reserve(c.ffn_dim);
    lookahead_ids_.reserve(c.ffn_dim);
    pred_scores_.assign(c.ffn_dim, 0);
    pred_scratch_.assign(2 * predictors_->max_rank(), 0);
  }
  if (nb > 1) {
    batch_mask_.assign(nb * c.ffn_dim, 0);
    batch_union_.reserve(c.ffn_dim);
  }
  if (c.moe()) {
    router_probs_.assign(nb * c.n_experts, 0);
    route_.assign(nb * c.n_experts_used, 0);
    route_weights_.assign(nb * c.n_experts_used, 0);
  }
  ffn_ = ffn;
  max_context_ = max_context;
  const size_t kv = static_cast<size_t>(c.n_kv_heads) * c.head_dim;
  const size_t q = static_cast<size_t>(c.n_heads) * c.head_dim;
  x_.assign(nb * c.dim, 0); xb2_.assign(nb * c.dim, 0);
  if (w->embeddings_on_flash()) {
    emb_scratch_.Allocate(ResidentWeights::EmbeddingScratchBytes(c));
  }
  xb_.assign(nb * std::max<size_t>({static_cast<size_t>(c.dim), q, static_cast<size_t>(c.EmbedDim())}), 0);
  q_.assign(nb * q, 0); k_.assign(nb * kv, 0); v_.assign(nb * kv, 0);
  const size_t chunks = pool != nullptr ? pool->chunks() : 1;
  att_.assign(std::max<size_t>(c.n_heads, chunks) * max_context, 0);
  logits_.assign(nb * c.vocab_size, 0);
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

void Transformer::Attention(int l, int pos, int n) {
  const LayerWeights& w = w_->layers[l];
  const int d = c_.dim, hs = c_.head_dim, kv_dim = c_.n_kv_heads * hs, q_dim = c_.n_heads * hs;
  MatMul(pool_, w.wq, xb_.data(), n, q_dim, d, q_.data());
  MatMul(pool_, w.wk, xb_.data(), n, kv_dim, d, k_.data());
  MatMul(pool_, w.wv, xb_.data(), n, kv_dim, d, v_.data());
  const bool sliding = Sliding(l);
  const std::vector<float>& freq = sliding && !rope_local_freq_.empty() ? rope_local_freq_ : rope_freq_;
  const size_t row = RowBytes(kv_dtype_, kv_dim);
  const size_t layer_off = static_cast<size_t>(l) * max_context_ * row;
  for (int b = 0; b < n; ++b) {
    float* q = q_.data() + static_cast<size_t>(b) * q_dim;
    float* k = k_.data() + static_cast<size_t>(b) * kv_dim;
    float* v = v_.data() + static_cast<size_t>(b) * kv_dim;
    if (w.bq != nullptr) {
      Axpy(1.0f, w.bq, q_dim, q);
      Axpy(1.0f, w.bk, kv_dim, k);
      Axpy(1.0f, w.bv, kv_dim, v);
    }
    if (w.q_norm != nullptr) {  // Qwen3: RMSNorm over each head, before RoPE
      for (int h = 0; h < c_.n_heads; ++h) RmsNorm(q + h * hs, w.q_norm, hs, c_.norm_eps, q + h * hs);
      for (int h = 0; h < c_.n_kv_heads; ++h) RmsNorm(k + h * hs, w.k_norm, hs, c_.norm_eps, k + h * hs);
    }
    if (rope_) {
      Rope(q, q_dim, pos + b, freq);
      Rope(k, kv_dim, pos + b, freq);
    }
    // Every row's keys and values go in first: row b attends to rows < b.
    StoreKv(k, kv_dim, key_cache_.data() + layer_off + static_cast<size_t>(pos + b) * row);
    StoreKv(v, kv_dim, value_cache_.data() + layer_off + static_cast<size_t>(pos + b) * row);
  }
  // Each (row, head) on its own: the split over threads changes no result.
  const int items = n * c_.n_heads;
  auto attend = [&](int begin, int end, float* att) {
    for (int i = begin; i < end; ++i) {
      const int b = i / c_.n_heads, h = i % c_.n_heads;
      AttendHead(l, h, pos + b, q_.data() + static_cast<size_t>(b) * q_dim + h * hs, att,
                 xb_.data() + static_cast<size_t>(b) * q_dim + h * hs);
    }
  };
  const int64_t work = static_cast<int64_t>(items) * (pos + n) * hs;
  if (pool_ == nullptr || pool_->size() == 1 || work < kMinParallelWork) {
    attend(0, items, att_.data());
  } else {
    pool_->ParallelFor(items, [&](int chunk, int begin, int end) {
      attend(begin, end, att_.data() + static_cast<size_t>(chunk) * max_context_);
    });
  }
  MatMul(pool_, w.wo, xb_.data(), n, d, q_dim, xb2_.data());
  for (int b = 0; b < n; ++b) {
    float* o = xb2_.data() + static_cast<size_t>(b) * d;
    if (w.bo != nullptr) Axpy(1.0f, w.bo, d, o);
    if (w.post_attention_norm != nullptr) {  // Gemma: the attention output is normed before the residual
      RmsNorm(o, w.post_attention_norm, d, c_.norm_eps, o);
    }
  }
}

void Transformer::AttendHead(int l, int h, int pos, const float* q, float* att, float* out) const {
  const int hs = c_.head_dim, kv_dim = c_.n_kv_heads * hs;
  const int kv_mul = c_.n_heads / c_.n_kv_heads;
  const size_t row = RowBytes(kv_dtype_, kv_dim);
  const size_t layer_off = static_cast<size_t>(l) * max_context_ * row;
  const char* kc = key_cache_.data() + layer_off;
  const char* vc = value_cache_.data() + layer_off;
  // Gemma scales by query_pre_attn_scalar^-1/2, everyone else by head_dim's.
  const float scale = 1.0f / std::sqrt(c_.query_scale > 0 ? c_.query_scale : static_cast<float>(hs));
  const float cap = c_.attn_softcap;
  // The sliding window (Mistral: every layer; Gemma: some): only the last
  // `sliding_window` positions.
  const int first = Sliding(l) ? std::max(0, pos - c_.sliding_window + 1) : 0;
  const size_t kv_off = RowBytes(kv_dtype_, (h / kv_mul) * hs);
  thread_local KernelInput in;  // q as the key rows' products take it, once per head
  in.Prepare(kv_dtype_, q, hs);
  for (int t = first; t <= pos; ++t) {
    att[t] = DotPrepared(kc + static_cast<size_t>(t) * row + kv_off, kv_dtype_, in, hs) * scale;
    if (cap > 0) att[t] = cap * std::tanh(att[t] / cap);  // Gemma 2's soft-capping
  }
  Softmax(att + first, pos + 1 - first);
  std::memset(out, 0, hs * sizeof(float));
  for (int t = first; t <= pos; ++t) {
    AxpyTyped(att[t], vc + static_cast<size_t>(t) * row + kv_off, kv_dtype_, hs, out);
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

Status Transformer::Embed(int token, int pos, float* x, TokenStats* stats) {
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
    MatVec(pool_, w_->project_in, xb_.data(), d, e, x);
  } else {
    ToFloat(row, emb.dtype, d, x);
  }
  if (c_.embed_scale) {  // Gemma: times sqrt(dim), in the activations' float type
    const float s = static_cast<float>(std::sqrt(static_cast<double>(d)));
    for (int i = 0; i < d; ++i) x[i] *= s;
  }
  if (w_->pos_embeddings) {
    const WeightRef& p = w_->pos_embeddings;
    AxpyTyped(1.0f, p.At(static_cast<size_t>(pos + c_.position_offset) * d), p.dtype, d, x);
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
    if (c_.moe()) {  // the router on the guess: its experts' neurons
      Route(l, xb_.data(), 1, route_.data(), route_weights_.data());
      const int f = c_.ExpertDim();
      std::sort(route_.begin(), route_.begin() + c_.n_experts_used);
      lookahead_ids_.clear();
      for (int j = 0; j < c_.n_experts_used; ++j) {
        for (int i = 0; i < f; ++i) lookahead_ids_.push_back(route_[j] * f + i);
      }
    } else {
      predictors_->layer(l).Predict(xb_.data(), &lookahead_ids_, pred_scores_.data(), pred_scratch_.data(),
                                    pool_);
    }
  }
  return ffn_->Prefetch(l, step_, lookahead_ids_, stats);
}

// One token: its predicted neurons. A batch: each row's predicted neurons,
// read once as their union, each row computing only its own (so every row
// gets what it would get alone).
Status Transformer::Ffn(int l, const float* in, int n, TokenStats* stats) {
  const int d = c_.dim, ffn = c_.ffn_dim;
  std::fill(xb2_.begin(), xb2_.begin() + static_cast<size_t>(n) * d, 0.0f);
  const float* up_bias = w_->layers[l].ffn_up_bias;
  Status st;
  if (c_.moe()) {
    st = Experts(l, in, n, stats);
  } else if (n == 1) {
    std::span<const int32_t> active = ffn_->all_ids();
    if (use_predictor_) {
      ScopedTimer timer(&stats->predictor_ms);
      predictors_->layer(l).Predict(in, &active_, pred_scores_.data(), pred_scratch_.data(), pool_);
      active = active_;
    }
    st = ffn_->Compute(l, step_, active, in, xb2_.data(), stats, up_bias);
  } else if (!use_predictor_) {
    st = ffn_->ComputeBatch(l, step_ + n - 1, ffn_->all_ids(), in, n, nullptr, xb2_.data(), stats, up_bias);
  } else {
    {
      ScopedTimer timer(&stats->predictor_ms);
      std::fill(batch_mask_.begin(), batch_mask_.begin() + static_cast<size_t>(n) * ffn, uint8_t{0});
      for (int b = 0; b < n; ++b) {
        predictors_->layer(l).Predict(in + static_cast<size_t>(b) * d, &active_, pred_scores_.data(),
                                      pred_scratch_.data(), pool_);
        uint8_t* mask = batch_mask_.data() + static_cast<size_t>(b) * ffn;
        for (int32_t id : active_) mask[id] = 1;
      }
      batch_union_.clear();
      for (int id = 0; id < ffn; ++id) {
        for (int b = 0; b < n; ++b) {
          if (batch_mask_[static_cast<size_t>(b) * ffn + id] != 0) {
            batch_union_.push_back(id);
            break;
          }
        }
      }
    }
    st = ffn_->ComputeBatch(l, step_ + n - 1, batch_union_, in, n, batch_mask_.data(), xb2_.data(), stats,
                            up_bias);
  }
  const float* down_bias = w_->layers[l].ffn_down_bias;
  const float* post = w_->layers[l].post_ffn_norm;
  for (int b = 0; b < n; ++b) {
    float* o = xb2_.data() + static_cast<size_t>(b) * d;
    if (down_bias != nullptr) Axpy(1.0f, down_bias, d, o);
    if (post != nullptr) RmsNorm(o, post, d, c_.norm_eps, o);
  }
  return st;
}

// Mixtral and Qwen3-MoE route alike: softmax over the router's logits, the
// k most probable experts (ties to the lower index), their probabilities
// renormalised to sum 1 when the config says so.
void Transformer::Route(int l, const float* in, int n, int32_t* ids_out, float* weights_out) {
  const int d = c_.dim, e_count = c_.n_experts, k = c_.n_experts_used;
  MatMul(pool_, w_->layers[l].router, in, n, e_count, d, router_probs_.data());
  for (int b = 0; b < n; ++b) {
    float* p = router_probs_.data() + static_cast<size_t>(b) * e_count;
    int32_t* ids = ids_out + static_cast<size_t>(b) * k;
    float* wts = weights_out + static_cast<size_t>(b) * k;
    Softmax(p, e_count);
    float sum = 0;
    for (int j = 0; j < k; ++j) {
      int best = -1;
      for (int e = 0; e < e_count; ++e) {
        if (std::find(ids, ids + j, e) != ids + j) continue;
        if (best < 0 || p[e] > p[best]) best = e;
      }
      ids[j] = best;
      wts[j] = p[best];
      sum += p[best];
    }
    if (c_.expert_norm_topk) for (int j = 0; j < k; ++j) wts[j] /= sum;
  }
}

Status Transformer::Experts(int l, const float* in, int n, TokenStats* stats) {
  {
    ScopedTimer timer(&stats->predictor_ms);
    Route(l, in, n, route_.data(), route_weights_.data());
  }
  return ffn_->ComputeExperts(l, step_ + n - 1, route_.data(), route_weights_.data(), c_.n_experts_used, in, n,
                              xb2_.data(), stats);
}

StatusOr<const float*> Transformer::Forward(std::span<const int> tokens, int pos, TokenStats* stats,
                                            bool all_logits) {
  const int n = static_cast<int>(tokens.size());
  if (n < 1 || n > max_batch_) {
    return Status::InvalidArgument("a forward pass takes 1.." + std::to_string(max_batch_) + " tokens, not " +
                                   std::to_string(n));
  }
  for (int token : tokens) {
    if (token < 0 || token >= c_.vocab_size) {
      return Status::InvalidArgument("token id " + std::to_string(token) + " is outside the vocabulary");
    }
  }
  if (pos < 0 || pos + n > max_context_) {
    return Status::InvalidArgument("position " + std::to_string(pos + n - 1) + " exceeds the context of " +
                                   std::to_string(max_context_) + " tokens");
  }
  Timer total;
  const int d = c_.dim;
  const uint64_t moved_before = ffn_->bytes_moved();
  for (int b = 0; b < n; ++b) RETURN_IF_ERROR(Embed(tokens[b], pos + b, x_.data() + static_cast<size_t>(b) * d, stats));
  ffn_->BeginToken(stats);
  // The router is a mixture of experts' exact predictor: its lookahead runs
  // whether or not a sparsity predictor is stored.
  const bool can_look = c_.pre_norm && (use_predictor_ || c_.moe()) && ffn_->can_prefetch();
  const bool lookahead = n == 1 && can_look && lookahead_.Next();
  stats->lookahead = lookahead;
  stats->batch = n;
  auto rows = [&](std::vector<float>& v, int b) { return v.data() + static_cast<size_t>(b) * d; };
  auto add = [&](std::vector<float>& from, std::vector<float>& to) {
    for (int b = 0; b < n; ++b) Axpy(1.0f, rows(from, b), d, rows(to, b));
  };
  for (int l = 0; l < c_.n_layers; ++l) {
    const LayerWeights& w = w_->layers[l];
    if (c_.pre_norm) {  // x += Attn(Norm(x)); x += FFN(Norm(x))
      if (lookahead) {
        Status st = Lookahead(l, pos, stats);
        if (!st.ok()) return st;
      }
      for (int b = 0; b < n; ++b) Norm(rows(x_, b), w.attention_norm, w.attention_norm_bias, rows(xb_, b));
      Attention(l, pos, n);
      if (can_look) {  // also without the lookahead: the next token may use it
        std::memcpy(prev_attn_.data() + static_cast<size_t>(l) * d, rows(xb2_, n - 1), d * sizeof(float));
      }
      add(xb2_, x_);
      for (int b = 0; b < n; ++b) Norm(rows(x_, b), w.ffn_norm, w.ffn_norm_bias, rows(xb_, b));
      Status st = Ffn(l, xb_.data(), n, stats);
      if (!st.ok()) return st;
      add(xb2_, x_);
    } else {  // post-norm: x = Norm(x + Attn(x)); x = Norm(x + FFN(x))
      std::memcpy(xb_.data(), x_.data(), static_cast<size_t>(n) * d * sizeof(float));
      Attention(l, pos, n);
      add(xb2_, x_);
      for (int b = 0; b < n; ++b) Norm(rows(x_, b), w.attention_norm, w.attention_norm_bias, rows(x_, b));
      Status st = Ffn(l, x_.data(), n, stats);
      if (!st.ok()) return st;
      add(xb2_, x_);
      for (int b = 0; b < n; ++b) Norm(rows(x_, b), w.ffn_norm, w.ffn_norm_bias, rows(x_, b));
    }
  }
  // The classifier: every row's logits, or the last row's.
  const int first = all_logits ? 0 : n - 1, count = n - first;
  float* x_out = rows(x_, first);
  if (w_->norm != nullptr) {
    for (int b = first; b < n; ++b) Norm(rows(x_, b), w_->norm, w_->norm_bias, rows(x_, b));
  }
  const float* final = x_out;
  if (w_->project_out) {
    MatMul(pool_, w_->project_out, x_out, count, c_.EmbedDim(), d, xb_.data());
    final = xb_.data();
  }
  MatMul(pool_, w_->output, final, count, c_.vocab_size, c_.EmbedDim(), logits_.data());
  if (c_.final_softcap > 0) {  // Gemma 2
    const float cap = c_.final_softcap;
    for (size_t i = 0; i < static_cast<size_t>(count) * c_.vocab_size; ++i) {
      logits_[i] = cap * std::tanh(logits_[i] / cap);
    }
  }
  prev_attn_pos_ = can_look ? pos + n - 1 : -1;
  step_ += n;
  stats->bytes_moved = ffn_->bytes_moved() - moved_before;
  stats->total_ms = total.ElapsedMs();
  stats->compute_ms = stats->total_ms - stats->io_ms - stats->memory_ms - stats->predictor_ms;
  if (n == 1) lookahead_.Record(lookahead, stats->io_ms, stats->total_ms);
  return static_cast<const float*>(logits_.data());
}

}  // namespace llmflash

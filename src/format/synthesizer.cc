// llmflash synth: deterministic synthetic checkpoints in the Hugging Face layout.
#include <sys/stat.h>
#include <unistd.h>

#include <Eigen/Core>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "format/hf_importer.h"
#include "format/safetensors_writer.h"
#include "llmflash/convert.h"
#include "util/utf8.h"
#include "util/file.h"
#include "util/half.h"
#include "util/macros.h"

namespace llmflash {
namespace {

// Attention's output scale, in units of 1/sqrt(d), for a 12-layer model:
// small, so that what a token attends to moves its hidden state less than
// its own embedding does. Deeper models get less per layer (DepthScale), so
// that the stream's total additions do not grow with depth: at 0.4 on all 32
// layers of the 6.7b preset consecutive tokens shared 28% of their active
// neurons (12% on the 12-layer 125m preset) and only 1.7% of the FFN was new
// per token at k = 5.
constexpr float kAttnOut = 0.4f;

struct Shape {
  int d, n, layers, heads, vocab, positions;  // n: an expert's neurons in a mixture of experts
  int kv_heads = 0;  // 0: heads (no grouped-query attention)
  int head_dim = 0;  // 0: d / heads
  int experts = 0, used = 0;  // a mixture of experts: experts per layer, routed per token
  int KvHeads() const { return kv_heads > 0 ? kv_heads : heads; }
  int HeadDim() const { return head_dim > 0 ? head_dim : d / heads; }
};

const std::map<std::string, Shape>& Presets(const std::string& arch) {
  static const std::map<std::string, Shape> opt = {
      {"tiny", {64, 256, 2, 4, 512, 256}},         {"125m", {768, 3072, 12, 12, 50272, 2048}},
      {"1.3b", {2048, 8192, 24, 32, 50272, 2048}}, {"6.7b", {4096, 16384, 32, 32, 50272, 2048}}};
  static const std::map<std::string, Shape> llama = {
      {"tiny", {64, 192, 2, 4, 512, 256}},        {"125m", {768, 2048, 12, 12, 32000, 2048}},
      {"1.3b", {2048, 5504, 24, 16, 32000, 2048}}, {"6.7b", {4096, 11008, 32, 32, 32000, 4096}},
      {"7b", {4096, 11008, 32, 32, 32000, 4096}}};
  // Llama 3.1 8B and Qwen2.5 7B as their config.json files give them
  // (grouped-query attention; the positions are what the bench needs, not
  // the 128K their RoPE scaling reaches).
  static const std::map<std::string, Shape> llama3 = {
      {"tiny", {64, 192, 2, 4, 512, 256, 2}}, {"8b", {4096, 14336, 32, 32, 128256, 8192, 8}}};
  static const std::map<std::string, Shape> qwen2 = {
      {"tiny", {64, 192, 2, 4, 512, 256, 2}}, {"7b", {3584, 18944, 28, 28, 152064, 32768, 4}}};
  // Mixtral-8x7B-v0.1 and Qwen3-30B-A3B as their config.json files give them.
  static const std::map<std::string, Shape> mixtral = {
      {"tiny", {64, 96, 2, 4, 512, 256, 2, 0, 8, 2}}, {"8x7b", {4096, 14336, 32, 32, 32000, 32768, 8, 0, 8, 2}}};
  static const std::map<std::string, Shape> qwen3_moe = {
      {"tiny", {64, 32, 2, 4, 512, 256, 2, 32, 16, 4}},
      {"30b-a3b", {2048, 768, 48, 32, 151936, 40960, 4, 128, 128, 8}}};
  if (arch == "mixtral") return mixtral;
  if (arch == "qwen3-moe") return qwen3_moe;
  if (arch == "opt") return opt;
  if (arch == "llama3") return llama3;
  if (arch == "qwen2") return qwen2;
  return llama;
}

// xoshiro256** seeded by splitmix64: fast, deterministic per stream.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& s : s_) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      s = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    uint64_t r = Rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0]; s_[3] ^= s_[1]; s_[1] ^= s_[2]; s_[0] ^= s_[3]; s_[2] ^= t; s_[3] = Rotl(s_[3], 45);
    return r;
  }
  // Uniform with mean 0 and variance 1 (cheap stand-in for a normal).
  float Unit() { return (static_cast<float>(Next() >> 40) / 16777216.0f - 0.5f) * 3.4641016f; }
  double Uniform01() { return (Next() >> 11) * (1.0 / 9007199254740992.0); }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

double InverseNormalCdf(double p) {  // bisection on the CDF; plenty fast here
  double lo = -10, hi = 10;
  for (int i = 0; i < 80; ++i) {
    double mid = (lo + hi) / 2;
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

// A fixed random orthogonal map of R^d applied in O(d log d): random signs,
// a normalised Walsh-Hadamard transform of the first P = 2^floor(log2 d)
// coordinates, a random permutation, random signs and the transform of the
// last P coordinates. Every step is orthogonal, so the map is, and it mixes
// every coordinate with every other.
class Rotation {
 public:
  Rotation(int d, uint64_t seed) : d_(d), p_(1), s1_(d), s2_(d), perm_(d) {
    while (p_ * 2 <= d) p_ *= 2;
    Rng r(seed);
    for (int i = 0; i < d; ++i) {
      s1_[i] = (r.Next() >> 63) ? 1.0f : -1.0f;
      s2_[i] = (r.Next() >> 63) ? 1.0f : -1.0f;
      perm_[i] = i;
    }
    for (int i = d - 1; i > 0; --i) std::swap(perm_[i], perm_[r.Next() % (i + 1)]);
  }
  void Apply(float* v) const {
    std::vector<float> t(d_);
    for (int i = 0; i < d_; ++i) v[i] *= s1_[i];
    Hadamard(v, p_);
    for (int i = 0; i < d_; ++i) t[perm_[i]] = v[i] * s2_[i];
    Hadamard(t.data() + d_ - p_, p_);
    std::copy(t.begin(), t.end(), v);
  }

 private:
  static void Hadamard(float* v, int p) {
    for (int h = 1; h < p; h *= 2) {
      for (int i = 0; i < p; i += 2 * h) {
        for (int j = i; j < i + h; ++j) {
          const float a = v[j], b = v[j + h];
          v[j] = a + b;
          v[j + h] = a - b;
        }
      }
    }
    const float norm = 1.0f / std::sqrt(static_cast<float>(p));
    for (int i = 0; i < p; ++i) v[i] *= norm;
  }
  int d_, p_;
  std::vector<float> s1_, s2_;
  std::vector<int> perm_;
};

using RowFill = std::function<void(uint64_t row, float* out)>;  // one row of `cols` floats

struct Tensor {
  TensorSpec spec;
  RowFill fill;
};

class Builder {
 public:
  Builder(const SynthOptions& o, const Shape& s) : o_(o), s_(s) {}

  uint64_t Stream(uint64_t tag) const { return o_.seed * 1000003ull + tag; }

  Tensor Random(std::string name, std::vector<uint64_t> shape, float scale, uint64_t tag) const {
    uint64_t cols = shape.back();
    return {{name, DType::kF16, shape}, [=, this](uint64_t row, float* out) {
              Rng r(Stream(tag) * 1315423911ull + row);
              for (uint64_t c = 0; c < cols; ++c) out[c] = scale * r.Unit();
            }};
  }
  Tensor Constant(std::string name, uint64_t n, float v) const {
    return {{name, DType::kF16, {n}}, [=](uint64_t, float* out) { for (uint64_t i = 0; i < n; ++i) out[i] = v; }};
  }
  Tensor Vector(std::string name, uint64_t n, std::function<float(uint64_t)> f) const {
    return {{name, DType::kF16, {n}}, [=](uint64_t, float* out) { for (uint64_t i = 0; i < n; ++i) out[i] = f(i); }};
  }

  // An FFN input matrix (n x d) with no low-rank structure to copy: row i is
  // a fixed random rotation of (a_i ⊙ σ), a_i iid, σ_k = (1 + k/64)^-1/2 — a
  // full-rank, slowly decaying spectrum — with the component along u (the
  // Llama shift direction) removed, normalised to unit length, then minus
  // shift_i * u. What makes activations predictable is the data: the
  // residual stream is anisotropic (Embedding below), as trained models' are.
  RowFill FullRankRow(uint64_t tag, const std::vector<float>* shift) const {
    const int d = s_.d;
    auto rot = std::make_shared<Rotation>(d, Stream(tag) ^ 0xABCDEF);
    auto sigma = std::make_shared<std::vector<float>>(d);
    for (int k = 0; k < d; ++k) (*sigma)[k] = 1.0f / std::sqrt(1.0f + k / 64.0f);
    const std::vector<float>* u = u_.empty() ? nullptr : &u_;
    return [=, this](uint64_t row, float* out) {
      Rng ra(Stream(tag) * 2654435761ull + row);
      for (int k = 0; k < d; ++k) out[k] = ra.Unit() * (*sigma)[k];
      rot->Apply(out);
      Eigen::Map<Eigen::VectorXf> w(out, d);
      if (u != nullptr) w -= w.dot(Eigen::Map<const Eigen::VectorXf>(u->data(), d)) * Eigen::Map<const Eigen::VectorXf>(u->data(), d);
      w /= w.norm();
      if (shift != nullptr) {
        for (int c = 0; c < d; ++c) w(c) -= (*shift)[row] * (*u)[c];
      }
    };
  }
  Tensor FullRank(std::string name, uint64_t tag, const std::vector<float>* shift) const {
    return {{name, DType::kF16, {uint64_t(s_.n), uint64_t(s_.d)}}, FullRankRow(tag, shift)};
  }

  // Token embeddings: component k of every row has standard deviation σ_k =
  // (1 + k/kEmbedKnee)^-1, scaled so the mean variance is 1: hidden states
  // of trained models have a low effective rank, which is what lets a
  // rank-128 predictor trained on data see most of what decides a neuron.
  float EmbeddingSigma(int k) const { return embed_sigma_[k]; }
  void MakeEmbeddingSpectrum() {
    double sum = 0;
    for (int k = 0; k < s_.d; ++k) sum += std::pow(1.0 + k / kEmbedKnee, -2.0 * kEmbedPower);
    const double scale = std::sqrt(s_.d / sum);
    embed_sigma_.resize(s_.d);
    for (int k = 0; k < s_.d; ++k) embed_sigma_[k] = static_cast<float>(scale * std::pow(1.0 + k / kEmbedKnee, -kEmbedPower));
  }
  // The spread of w . x for a unit row w and a normalised hidden state x:
  // the embedding's share of the variance along w, plus an isotropic share
  // for what attention and earlier FFNs add.
  float ProjectedStd(const float* w) const {
    double v = 0;
    for (int k = 0; k < s_.d; ++k) v += double(w[k]) * w[k] * EmbeddingSigma(k) * EmbeddingSigma(k);
    return static_cast<float>(std::sqrt((1 - kIsotropicShare) * v + kIsotropicShare));
  }
  static constexpr float kEmbedKnee = 8.0f;
  static constexpr float kEmbedPower = 1.25f;
  static constexpr double kIsotropicShare = 0.15;

  // Per-neuron inactive probabilities of layer l: the layer's active fraction
  // grows with depth, from half the requested mean to 1.5 times it, as in
  // trained OPT models (more active neurons in later layers); neurons spread
  // around it (logit-normal, σ = 0.8: hot and cold neurons).
  double LayerActive(int layer) const {
    const double mean = 1 - o_.activation_sparsity;
    const double f = s_.layers > 1 ? double(layer) / (s_.layers - 1) : 0.5;
    return std::min(0.99, mean * (0.5 + f));
  }
  // The spread of the neurons' logits around their layer's: hot neurons fire
  // on most tokens and are read once; at 0.8 a window of 5 tokens already
  // held two thirds of each token's active neurons on the 1.3b preset.
  static constexpr double kNeuronSpread = 0.5;
  std::vector<float> Sparsities(int layer) const {
    Rng r(Stream(90000 + layer));
    std::vector<float> s(s_.n);
    const double a = LayerActive(layer);
    // E[sigmoid(m + 0.8 Z)] ~ sigmoid(m / sqrt(1 + pi 0.64 / 8)) (the probit
    // approximation): widen m so that the layer's mean lands on `a` (without
    // it the 6.7b preset at 0.97 had 4.1% active, not 3%).
    const double logit = std::log((1 - a) / a) * std::sqrt(1 + M_PI * kNeuronSpread * kNeuronSpread / 8);
    for (float& x : s) x = static_cast<float>(1 / (1 + std::exp(-(logit + kNeuronSpread * r.Unit()))));
    return s;
  }

  // The token embedding table (V x d): row v has component k of spread
  // EmbeddingSigma(k), plus `along_u` times u when u exists.
  Tensor Embedding(std::string name, float along_u) {
    MakeEmbeddingSpectrum();
    const uint64_t d = s_.d;
    const std::vector<float>* u = u_.empty() ? nullptr : &u_;
    return {{name, DType::kF16, {uint64_t(s_.vocab), d}}, [=, this](uint64_t row, float* out) {
              Rng r(Stream(1) * 1315423911ull + row);
              for (uint64_t k = 0; k < d; ++k) out[k] = r.Unit() * EmbeddingSigma(static_cast<int>(k));
              if (u != nullptr) for (uint64_t k = 0; k < d; ++k) out[k] += along_u * (*u)[k];
            }};
  }
  // The FFN's output matrix (d x n): each layer adds about kFfnShare of the
  // residual stream's variance, so that the token's own embedding stays the
  // larger part of it through all layers, as in trained models.
  Tensor FfnOut(std::string name, int layer, uint64_t tag) const {
    const double active = LayerActive(layer) * s_.n;
    return Random(name, {uint64_t(s_.d), uint64_t(s_.n)},
                  static_cast<float>(std::sqrt(kFfnShare * DepthScale() / (0.3 * active))), tag);
  }
  static constexpr double kFfnShare = 0.01;
  // Per-layer additions to the residual stream (variance) scale by 12 / layers
  // beyond 12 layers.
  double DepthScale() const { return std::min(1.0, 12.0 / s_.layers); }
  float AttnOut() const { return kAttnOut * static_cast<float>(std::sqrt(DepthScale())); }

  void MakeDirection() {
    Rng r(Stream(77));
    u_.resize(s_.d);
    float norm = 0;
    for (float& x : u_) { x = r.Unit(); norm += x * x; }
    for (float& x : u_) x /= std::sqrt(norm);
  }
  const std::vector<float>& u() const { return u_; }

 private:
  const SynthOptions& o_;
  Shape s_;
  std::vector<float> u_;
  std::vector<float> embed_sigma_;
};

std::vector<Tensor> OptTensors(Builder& b, const Shape& s, std::vector<std::vector<float>>* keep) {
  const uint64_t d = s.d, n = s.n;
  const float wd = 1.0f / std::sqrt(float(d));
  std::vector<Tensor> t;
  t.push_back(b.Embedding("model.decoder.embed_tokens.weight", 0.0f));
  // Positions vary slowly, so neighbouring tokens see similar ones.
  t.push_back({{"model.decoder.embed_positions.weight", DType::kF16, {uint64_t(s.positions) + 2, d}},
               [=](uint64_t row, float* out) {
                 for (uint64_t c = 0; c < d; ++c) out[c] = 0.3f * std::sin(0.01f * row * (1 + c % 7) + c);
               }});
  for (int l = 0; l < s.layers; ++l) {
    std::string p = "model.decoder.layers." + std::to_string(l) + ".";
    uint64_t tag = 100 + 20 * l;
    t.push_back(b.Constant(p + "self_attn_layer_norm.weight", d, 1.0f));
    t.push_back(b.Constant(p + "self_attn_layer_norm.bias", d, 0.0f));
    // Small q/k: near-uniform attention that averages over the context.
    t.push_back(b.Random(p + "self_attn.q_proj.weight", {d, d}, 0.2f * wd, tag + 1));
    t.push_back(b.Constant(p + "self_attn.q_proj.bias", d, 0.0f));
    t.push_back(b.Random(p + "self_attn.k_proj.weight", {d, d}, 0.2f * wd, tag + 2));
    t.push_back(b.Constant(p + "self_attn.k_proj.bias", d, 0.0f));
    t.push_back(b.Random(p + "self_attn.v_proj.weight", {d, d}, wd, tag + 3));
    t.push_back(b.Constant(p + "self_attn.v_proj.bias", d, 0.0f));
    t.push_back(b.Random(p + "self_attn.out_proj.weight", {d, d}, b.AttnOut() * wd, tag + 4));
    t.push_back(b.Constant(p + "self_attn.out_proj.bias", d, 0.0f));
    t.push_back(b.Constant(p + "final_layer_norm.weight", d, 1.0f));
    t.push_back(b.Constant(p + "final_layer_norm.bias", d, 0.0f));
    RowFill fc1 = b.FullRankRow(tag + 5, nullptr);
    t.push_back({{p + "fc1.weight", DType::kF16, {n, d}}, fc1});
    // fc1_i . x is about N(0, std_i^2) on LayerNorm'd inputs: a bias of
    // -std_i Phi^-1(s_i) leaves neuron i inactive with probability s_i.
    keep->push_back(b.Sparsities(l));
    const std::vector<float>* sp = &keep->back();
    t.push_back(b.Vector(p + "fc1.bias", n, [sp, fc1, &b, d](uint64_t i) {
      std::vector<float> w(d);
      fc1(i, w.data());
      return float(-InverseNormalCdf((*sp)[i]) * b.ProjectedStd(w.data()));
    }));
    t.push_back(b.FfnOut(p + "fc2.weight", l, tag + 6));
    t.push_back(b.Constant(p + "fc2.bias", d, 0.0f));
  }
  t.push_back(b.Constant("model.decoder.final_layer_norm.weight", d, 1.0f));
  t.push_back(b.Constant("model.decoder.final_layer_norm.bias", d, 0.0f));
  return t;
}

// How much the variance of a Llama gate row's input orthogonal to u grows
// from the first layer to the last (attention and FFN outputs accumulate in
// the residual stream; DepthScale keeps the total alike for any depth).
// Measured: the 7b preset at --activation-sparsity 0.89 without it had 5.6%
// active in layer 0 and 26.1% in layer 31 for 5.5% and 16.5% asked: probit
// z-scores 1.52x too small at the top, a variance 2.3x the first layer's.
constexpr double kStreamGrowth = 1.3;

std::vector<Tensor> LlamaTensors(Builder& b, const Shape& s, bool relu, bool qkv_bias,
                                 std::vector<std::vector<float>>* keep) {
  const uint64_t d = s.d, n = s.n, V = s.vocab;
  const uint64_t kv = d / s.heads * s.KvHeads();
  const float wd = 1.0f / std::sqrt(float(d));
  b.MakeDirection();
  std::vector<Tensor> t;
  // Embeddings carry a shared direction u (weight sqrt(d) against the token
  // parts), which the gate rows can lean against: the "shift".
  const std::vector<float>* u = &b.u();
  const float c = std::sqrt(float(d));
  t.push_back(b.Embedding("model.embed_tokens.weight", c));
  for (int l = 0; l < s.layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    uint64_t tag = 100 + 20 * l;
    t.push_back(b.Constant(p + "input_layernorm.weight", d, 1.0f));
    t.push_back(b.Random(p + "self_attn.q_proj.weight", {d, d}, 0.2f * wd, tag + 1));
    t.push_back(b.Random(p + "self_attn.k_proj.weight", {kv, d}, 0.2f * wd, tag + 2));
    t.push_back(b.Random(p + "self_attn.v_proj.weight", {kv, d}, wd, tag + 3));
    if (qkv_bias) {  // Qwen2: small biases on q, k and v
      t.push_back(b.Random(p + "self_attn.q_proj.bias", {d}, 0.02f, tag + 10));
      t.push_back(b.Random(p + "self_attn.k_proj.bias", {kv}, 0.02f, tag + 11));
      t.push_back(b.Random(p + "self_attn.v_proj.bias", {kv}, 0.02f, tag + 12));
    }
    t.push_back(b.Random(p + "self_attn.o_proj.weight", {d, d}, b.AttnOut() * wd, tag + 4));
    t.push_back(b.Constant(p + "post_attention_layernorm.weight", d, 1.0f));
    // x = h / rms(h) with h ~ g + c u: x.u ~ c / rms and w.x ~ N(0, std_i^2 / rms^2)
    // (w orthogonal to u), so a shift of std_i Phi^-1(s_i) / c along u
    // leaves about s_i inactive. What the layers below add to h is
    // orthogonal to u: it widens w.x and not x.u, so deeper layers need
    // proportionally more shift (StreamGrowth).
    keep->push_back(b.Sparsities(l));
    RowFill gate = b.FullRankRow(tag + 5, nullptr);
    std::vector<float>& shift = keep->back();
    std::vector<float> w(d);
    const double grow = std::sqrt(1 + kStreamGrowth * (s.layers > 1 ? double(l) / (s.layers - 1) : 0));
    for (uint64_t i = 0; i < n; ++i) {
      gate(i, w.data());
      shift[i] = relu ? static_cast<float>(InverseNormalCdf(shift[i]) * b.ProjectedStd(w.data()) * grow / c) : 0.0f;
    }
    t.push_back(b.FullRank(p + "mlp.gate_proj.weight", tag + 5, &shift));
    t.push_back(b.FullRank(p + "mlp.up_proj.weight", tag + 6, nullptr));
    t.push_back(b.FfnOut(p + "mlp.down_proj.weight", l, tag + 7));
  }
  (void)u;
  t.push_back(b.Constant("model.norm.weight", d, 1.0f));
  t.push_back(b.Random("lm_head.weight", {V, d}, wd, 9));
  return t;
}

// Router logits: kRouterSpread times a token-dependent part (about unit
// spread: a unit row orthogonal to u against the normalised hidden state)
// plus a fixed per-expert popularity of spread kExpertPopularity, carried by
// u, which every hidden state holds about equally. The popularity skews how
// often experts are picked, as in trained routers (Qwen3-30B-A3B's most
// used experts see several times the mean load); the token-dependent part
// changes with the hidden state, which neighbouring tokens share through
// attention (token-to-token persistence).
constexpr float kRouterSpread = 2.0f;
constexpr float kExpertPopularity = 0.7f;

// A mixture-of-experts decoder (Mixtral or Qwen3-MoE names): Llama
// attention (Qwen3-MoE: head_dim apart from d / heads, q/k norms) and, per
// layer, a router and `experts` SwiGLU experts whose gate and up rows are
// full rank like the dense presets' FFN rows.
std::vector<Tensor> MoeTensors(Builder& b, const Shape& s, bool mixtral) {
  const uint64_t d = s.d, n = s.n, V = s.vocab, E = s.experts;
  const uint64_t hd = s.HeadDim(), q = static_cast<uint64_t>(s.heads) * hd, kv = static_cast<uint64_t>(s.KvHeads()) * hd;
  const float wd = 1.0f / std::sqrt(float(d));
  b.MakeDirection();
  const std::vector<float>* u = &b.u();
  std::vector<Tensor> t;
  t.push_back(b.Embedding("model.embed_tokens.weight", std::sqrt(float(d))));
  // x.u of a normalised hidden state h / rms(h), h = g + sqrt(d) u with |g|^2 ~ d.
  const float along_u = std::sqrt(float(d) / 2);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const uint64_t tag = 100 + 20 * l;
    t.push_back(b.Constant(p + "input_layernorm.weight", d, 1.0f));
    t.push_back(b.Random(p + "self_attn.q_proj.weight", {q, d}, 0.2f * wd, tag + 1));
    t.push_back(b.Random(p + "self_attn.k_proj.weight", {kv, d}, 0.2f * wd, tag + 2));
    t.push_back(b.Random(p + "self_attn.v_proj.weight", {kv, d}, wd, tag + 3));
    t.push_back(b.Random(p + "self_attn.o_proj.weight", {d, q}, b.AttnOut() / std::sqrt(float(q)), tag + 4));
    if (!mixtral) {
      t.push_back(b.Constant(p + "self_attn.q_norm.weight", hd, 1.0f));
      t.push_back(b.Constant(p + "self_attn.k_norm.weight", hd, 1.0f));
    }
    t.push_back(b.Constant(p + "post_attention_layernorm.weight", d, 1.0f));
    const std::string moe = p + (mixtral ? "block_sparse_moe." : "mlp.");
    RowFill direction = b.FullRankRow(tag + 8, nullptr);
    const uint64_t pop_stream = b.Stream(80000 + l);
    t.push_back({{moe + "gate.weight", DType::kF16, {E, d}}, [=](uint64_t e, float* out) {
                   direction(e, out);
                   Rng r(pop_stream * 2654435761ull + e);
                   const float popularity = kExpertPopularity * r.Unit() / along_u;
                   for (uint64_t c = 0; c < d; ++c) out[c] = kRouterSpread * out[c] + popularity * (*u)[c];
                 }});
    // Each expert adds what a dense FFN of its k * n neurons would.
    const float down = static_cast<float>(std::sqrt(Builder::kFfnShare * b.DepthScale() / (0.3 * s.used * n)));
    for (uint64_t e = 0; e < E; ++e) {
      const std::string x = moe + "experts." + std::to_string(e) + ".";
      const uint64_t et = 1000000 + (static_cast<uint64_t>(l) * E + e) * 4;
      t.push_back({{x + (mixtral ? "w1.weight" : "gate_proj.weight"), DType::kF16, {n, d}}, b.FullRankRow(et, nullptr)});
      t.push_back({{x + (mixtral ? "w3.weight" : "up_proj.weight"), DType::kF16, {n, d}}, b.FullRankRow(et + 1, nullptr)});
      t.push_back(b.Random(x + (mixtral ? "w2.weight" : "down_proj.weight"), {d, n}, down, et + 2));
    }
  }
  t.push_back(b.Constant("model.norm.weight", d, 1.0f));
  t.push_back(b.Random("lm_head.weight", {V, d}, wd, 9));
  return t;
}

nlohmann::ordered_json Config(const SynthOptions& o, const Shape& s, const std::string& act) {
  if (o.arch == "mixtral") {  // Mixtral-8x7B-v0.1's config.json
    return {{"architectures", {"MixtralForCausalLM"}}, {"model_type", "mixtral"}, {"hidden_size", s.d},
            {"intermediate_size", s.n}, {"num_hidden_layers", s.layers}, {"num_attention_heads", s.heads},
            {"num_key_value_heads", s.KvHeads()}, {"num_local_experts", s.experts},
            {"num_experts_per_tok", s.used}, {"vocab_size", s.vocab}, {"max_position_embeddings", s.positions},
            {"rms_norm_eps", 1e-5}, {"rope_theta", 1000000.0}, {"sliding_window", nullptr}, {"hidden_act", "silu"},
            {"bos_token_id", 1}, {"eos_token_id", 2}, {"router_aux_loss_coef", 0.02},
            {"tie_word_embeddings", false}, {"torch_dtype", "bfloat16"}};
  }
  if (o.arch == "qwen3-moe") {  // Qwen3-30B-A3B's config.json
    return {{"architectures", {"Qwen3MoeForCausalLM"}}, {"model_type", "qwen3_moe"}, {"hidden_size", s.d},
            {"intermediate_size", 6144}, {"moe_intermediate_size", s.n}, {"num_hidden_layers", s.layers},
            {"num_attention_heads", s.heads}, {"num_key_value_heads", s.KvHeads()}, {"head_dim", s.HeadDim()},
            {"num_experts", s.experts}, {"num_experts_per_tok", s.used}, {"norm_topk_prob", true},
            {"decoder_sparse_step", 1}, {"mlp_only_layers", nlohmann::ordered_json::array()},
            {"vocab_size", s.vocab}, {"max_position_embeddings", s.positions}, {"rms_norm_eps", 1e-6},
            {"rope_theta", 1000000.0}, {"rope_scaling", nullptr}, {"attention_bias", false},
            {"use_sliding_window", false}, {"sliding_window", nullptr}, {"hidden_act", "silu"},
            {"bos_token_id", s.vocab > 151643 ? 151643 : 1}, {"eos_token_id", s.vocab > 151645 ? 151645 : 2},
            {"tie_word_embeddings", false}, {"torch_dtype", "bfloat16"}};
  }
  if (o.arch == "opt") {
    return {{"architectures", {"OPTForCausalLM"}}, {"model_type", "opt"}, {"hidden_size", s.d},
            {"word_embed_proj_dim", s.d}, {"ffn_dim", s.n}, {"num_hidden_layers", s.layers},
            {"num_attention_heads", s.heads}, {"vocab_size", s.vocab},
            {"max_position_embeddings", s.positions}, {"do_layer_norm_before", true},
            {"enable_bias", true}, {"layer_norm_elementwise_affine", true},
            {"activation_function", "relu"}, {"bos_token_id", 2}, {"eos_token_id", 2},
            {"pad_token_id", 1}, {"tie_word_embeddings", true}, {"torch_dtype", "float16"}};
  }
  if (o.arch == "llama3") {  // Llama 3.1's config.json
    return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", s.d},
            {"intermediate_size", s.n}, {"num_hidden_layers", s.layers},
            {"num_attention_heads", s.heads}, {"num_key_value_heads", s.KvHeads()}, {"vocab_size", s.vocab},
            {"max_position_embeddings", s.positions}, {"rms_norm_eps", 1e-5}, {"rope_theta", 500000.0},
            {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}}},
            {"hidden_act", act}, {"bos_token_id", s.vocab > 128000 ? 128000 : 1},
            {"eos_token_id", s.vocab > 128009 ? nlohmann::ordered_json{128001, 128008, 128009}
                                              : nlohmann::ordered_json{2}},
            {"attention_bias", false}, {"mlp_bias", false}, {"tie_word_embeddings", false},
            {"torch_dtype", "float16"}};
  }
  if (o.arch == "qwen2") {  // Qwen2.5's config.json
    return {{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"hidden_size", s.d},
            {"intermediate_size", s.n}, {"num_hidden_layers", s.layers},
            {"num_attention_heads", s.heads}, {"num_key_value_heads", s.KvHeads()}, {"vocab_size", s.vocab},
            {"max_position_embeddings", s.positions}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
            {"hidden_act", act}, {"bos_token_id", s.vocab > 151643 ? 151643 : 1},
            {"eos_token_id", s.vocab > 151643 ? 151643 : 2}, {"use_sliding_window", false},
            {"sliding_window", s.positions}, {"max_window_layers", s.layers}, {"tie_word_embeddings", false},
            {"rope_scaling", nullptr}, {"torch_dtype", "float16"}};
  }
  return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", s.d},
          {"intermediate_size", s.n}, {"num_hidden_layers", s.layers},
          {"num_attention_heads", s.heads}, {"num_key_value_heads", s.heads}, {"vocab_size", s.vocab},
          {"max_position_embeddings", s.positions}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
          {"hidden_act", act}, {"bos_token_id", 1}, {"eos_token_id", 2}, {"tie_word_embeddings", false},
          {"rope_scaling", nullptr}, {"torch_dtype", "float16"}};
}

// A byte-level tokenizer.json: special tokens, the 256 byte symbols, no
// merges, filler up to the vocabulary size. Any text encodes byte by byte.
std::string TokenizerJson(const SynthOptions& o, int vocab) {
  nlohmann::ordered_json v;
  std::vector<std::string> specials = o.arch == "opt" ? std::vector<std::string>{"<s>", "<pad>", "</s>", "<unk>"}
                                                      : std::vector<std::string>{"<unk>", "<s>", "</s>"};
  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 0; i < specials.size(); ++i) {
    v[specials[i]] = i;
    added.push_back({{"id", i}, {"content", specials[i]}, {"special", true}});
  }
  int id = static_cast<int>(specials.size()), extra = 0;
  for (int b = 0; b < 256; ++b) {  // GPT-2's byte -> printable code point map
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    v[EncodeUtf8(printable ? b : 256 + extra++)] = id++;
  }
  while (id < vocab) v["<extra_" + std::to_string(id) + ">"] = id, ++id;
  nlohmann::ordered_json j = {{"version", "1.0"}, {"added_tokens", added},
                              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                              {"decoder", {{"type", "ByteLevel"}}},
                              {"model", {{"type", "BPE"}, {"vocab", v}, {"merges", nlohmann::json::array()}}}};
  return j.dump();
}

Status WriteText(const std::string& path, const std::string& text) {
  WritableFile f;
  RETURN_IF_ERROR(f.Open(path));
  RETURN_IF_ERROR(f.Append(text.data(), text.size()));
  return f.Close();
}

// dir/tokenizer.json: the one asked for, or a byte-level one.
Status WriteTokenizer(const SynthOptions& o, int vocab, const std::string& dir) {
  if (o.tokenizer.empty()) return WriteText(JoinPath(dir, "tokenizer.json"), TokenizerJson(o, vocab));
  ASSIGN_OR_RETURN(std::string tok, ReadFileToString(o.tokenizer, 64ull << 20));
  return WriteText(JoinPath(dir, "tokenizer.json"), tok);
}


Status SynthesizeConverted(const SynthOptions& o, const nlohmann::ordered_json& config,
                           const std::vector<Tensor>& tensors, int vocab);

// The synthesized tensors by name, generated when read (rounded through f16,
// as the Hugging Face files store them): what `--format llmflash` converts.
class SynthSource : public TensorSource {
 public:
  explicit SynthSource(const std::vector<Tensor>& tensors) : tensors_(tensors) {
    for (size_t i = 0; i < tensors.size(); ++i) index_[tensors[i].spec.name] = i;
  }
  StatusOr<std::vector<float>> Read(const std::string& name, const std::vector<uint64_t>& shape) const override {
    auto it = index_.find(name);
    if (it == index_.end()) return Status::NotFound("synth: no tensor \"" + name + "\"");
    const Tensor& t = tensors_[it->second];
    if (t.spec.shape != shape) return Status::Internal("synth: tensor \"" + name + "\" has another shape");
    const uint64_t cols = shape.back(), rows = t.spec.bytes() / 2 / cols;
    std::vector<float> v(rows * cols);
    for (uint64_t r = 0; r < rows; ++r) {
      float* row = v.data() + r * cols;
      t.fill(r, row);
      for (uint64_t c = 0; c < cols; ++c) row[c] = F16ToFloat(FloatToF16(row[c]));
    }
    return v;
  }
  std::vector<std::string> Names() const override {
    std::vector<std::string> names;
    for (const Tensor& t : tensors_) names.push_back(t.spec.name);
    return names;
  }

 private:
  const std::vector<Tensor>& tensors_;
  std::map<std::string, size_t> index_;
};

}  // namespace

Status Synthesize(const SynthOptions& o) {
  const bool moe = o.arch == "mixtral" || o.arch == "qwen3-moe";
  if (o.arch != "opt" && o.arch != "llama" && o.arch != "llama3" && o.arch != "qwen2" && !moe) {
    return Status::InvalidArgument("--arch must be opt, llama, llama3, qwen2, mixtral or qwen3-moe");
  }
  const auto& presets = Presets(o.arch);
  auto it = presets.find(o.preset);
  if (it == presets.end()) {
    std::string names;
    for (const auto& [name, shape] : presets) names += (names.empty() ? "" : ", ") + name;
    return Status::InvalidArgument("unknown preset \"" + o.preset + "\" for " + o.arch + " (" + names + ")");
  }
  if (!(o.activation_sparsity > 0 && o.activation_sparsity < 1)) {
    return Status::InvalidArgument("activation sparsity must be in (0, 1)");
  }
  std::string act = o.activation.empty() ? (o.arch == "opt" ? "relu" : "silu") : o.activation;
  if (act != "relu" && (o.arch == "opt" || act != "silu")) {
    return Status::InvalidArgument("activation must be relu (opt) or silu|relu (llama, llama3, qwen2)");
  }
  if (moe && act != "silu") return Status::InvalidArgument("mixtral and qwen3-moe experts are SwiGLU: silu only");
  if (o.format != "hf" && o.format != "llmflash") return Status::InvalidArgument("--format must be hf or llmflash");
  if (o.output.empty()) return Status::InvalidArgument("synth needs an output directory");
  if (mkdir(o.output.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::IOError(o.output + ": cannot create: " + std::strerror(errno));
  }
  const Shape& s = it->second;
  Builder b(o, s);
  std::vector<std::vector<float>> keep;
  keep.reserve(s.layers);
  std::vector<Tensor> tensors = moe ? MoeTensors(b, s, o.arch == "mixtral")
                                : o.arch == "opt" ? OptTensors(b, s, &keep)
                                                  : LlamaTensors(b, s, act == "relu", o.arch == "qwen2", &keep);
  if (o.format == "llmflash") return SynthesizeConverted(o, Config(o, s, act), tensors, s.vocab);

  // Shards of at most 2 GiB.
  constexpr uint64_t kShard = 2ull << 30;
  std::vector<std::vector<size_t>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    uint64_t bytes = tensors[i].spec.bytes();
    if (in_shard > 0 && in_shard + bytes > kShard) { shards.emplace_back(); in_shard = 0; }
    shards.back().push_back(i);
    in_shard += bytes;
    total += bytes;
  }
  nlohmann::ordered_json weight_map;
  uint64_t written = 0;
  std::vector<float> row;
  std::vector<uint16_t> half;
  for (size_t k = 0; k < shards.size(); ++k) {
    char name[64];
    if (shards.size() == 1) std::snprintf(name, sizeof(name), "model.safetensors");
    else std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    std::vector<TensorSpec> specs;
    for (size_t i : shards[k]) { specs.push_back(tensors[i].spec); weight_map[tensors[i].spec.name] = name; }
    SafetensorsWriter w;
    RETURN_IF_ERROR(w.Open(JoinPath(o.output, name), specs));
    for (size_t i : shards[k]) {
      const Tensor& t = tensors[i];
      const uint64_t cols = t.spec.shape.back(), rows = t.spec.bytes() / 2 / cols;
      row.resize(cols);
      half.resize(cols);
      for (uint64_t r = 0; r < rows; ++r) {
        t.fill(r, row.data());
        for (uint64_t c = 0; c < cols; ++c) half[c] = FloatToF16(row[c]);
        RETURN_IF_ERROR(w.Write(half.data(), cols * 2));
        written += cols * 2;
        if (o.progress && (r % 256 == 0 || r + 1 == rows)) o.progress(double(written) / total, t.spec.name);
      }
    }
    RETURN_IF_ERROR(w.Close());
  }
  if (shards.size() > 1) {
    nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    RETURN_IF_ERROR(WriteText(JoinPath(o.output, "model.safetensors.index.json"), index.dump(1)));
  }
  RETURN_IF_ERROR(WriteText(JoinPath(o.output, "config.json"), Config(o, s, act).dump(1)));
  return WriteTokenizer(o, s.vocab, o.output);
}

namespace {

// Straight to a model directory: config.json and tokenizer.json in a
// staging folder beside the tensors generated on demand, converted as
// `llmflash convert` would convert the Hugging Face files (a layer, or an
// expert, in memory at a time).
Status SynthesizeConverted(const SynthOptions& o, const nlohmann::ordered_json& config,
                           const std::vector<Tensor>& tensors, int vocab) {
  const std::string staging = JoinPath(o.output, ".synth-source");
  if (mkdir(staging.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::IOError(staging + ": cannot create: " + std::strerror(errno));
  }
  RETURN_IF_ERROR(WriteText(JoinPath(staging, "config.json"), config.dump(1)));
  RETURN_IF_ERROR(WriteTokenizer(o, vocab, staging));
  ConvertOptions c;
  c.input = staging;
  c.output = o.output;
  c.dtype = o.dtype;
  c.progress = o.progress;
  Status st = ConvertHuggingFaceFrom(c, SynthSource(tensors));
  for (const char* f : {"config.json", "tokenizer.json"}) std::remove(JoinPath(staging, f).c_str());
  rmdir(staging.c_str());
  return st;
}

}  // namespace

}  // namespace llmflash

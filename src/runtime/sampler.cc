// Repetition penalty, greedy, temperature, top-k, top-p and min-p sampling.
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>

namespace llmflash {

void Sampler::Reset(const GenerateOptions& o) {
  o_ = o;
  state_ = o.seed == 0 ? 0x9E3779B97F4A7C15ull : o.seed;  // xorshift needs a non-zero state
}

float Sampler::RandomFloat() {
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  uint32_t r = static_cast<uint32_t>((state_ * 0x2545F4914F6CDD1Dull) >> 32);
  return static_cast<float>(r >> 8) / 16777216.0f;
}

int Sampler::Argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) if (x[i] > x[best]) best = i;
  return best;
}

int Sampler::Sample(float* logits, int n, std::span<const int> recent) {
  if (o_.repetition_penalty != 1.0f && !recent.empty()) {
    penalized_.assign(n, 0);
    for (int t : recent) {
      if (t < 0 || t >= n || penalized_[t]) continue;
      penalized_[t] = 1;
      logits[t] = logits[t] > 0 ? logits[t] / o_.repetition_penalty : logits[t] * o_.repetition_penalty;
    }
  }
  if (o_.temperature == 0.0f) return Argmax(logits, n);
  float max = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    logits[i] = std::exp((logits[i] - max) / o_.temperature);
    sum += logits[i];
  }
  for (int i = 0; i < n; ++i) logits[i] = static_cast<float>(logits[i] / sum);
  float coin = RandomFloat();
  if (o_.top_k > 0 || o_.min_p > 0.0f) return SampleTruncated(logits, n, coin);
  if (o_.top_p < 1.0f) return SampleTopP(logits, n, coin);
  float cdf = 0;
  for (int i = 0; i < n; ++i) {
    cdf += logits[i];
    if (coin < cdf) return i;
  }
  return n - 1;  // rounding
}

int Sampler::SampleTopP(const float* probs, int n, float coin) {
  // Tokens below this probability cannot be in the nucleus (llama2.c's cut).
  const float cutoff = n > 1 ? (1.0f - o_.top_p) / (n - 1) : 0.0f;
  candidates_.clear();
  for (int i = 0; i < n; ++i) if (probs[i] >= cutoff) candidates_.push_back({probs[i], i});
  if (candidates_.empty()) return Argmax(probs, n);
  std::sort(candidates_.begin(), candidates_.end(),
            [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  float cumulative = 0;
  size_t last = candidates_.size() - 1;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += candidates_[i].first;
    if (cumulative > o_.top_p) { last = i; break; }
  }
  float r = coin * cumulative, cdf = 0;
  for (size_t i = 0; i <= last; ++i) {
    cdf += candidates_[i].first;
    if (r < cdf) return candidates_[i].second;
  }
  return candidates_[last].second;
}

// top-k, top-p and min-p over the sorted distribution; the draw is over
// what is left, renormalized.
int Sampler::SampleTruncated(const float* probs, int n, float coin) {
  candidates_.resize(n);
  for (int i = 0; i < n; ++i) candidates_[i] = {probs[i], i};
  auto by_prob = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  size_t keep = static_cast<size_t>(n);
  if (o_.top_k > 0 && o_.top_k < n) {
    keep = static_cast<size_t>(o_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), by_prob);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_prob);
  }
  if (o_.top_p < 1.0f) {
    float cumulative = 0;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += candidates_[i].first;
      if (cumulative > o_.top_p) { keep = i + 1; break; }
    }
  }
  if (o_.min_p > 0.0f) {
    const float floor = o_.min_p * candidates_[0].first;
    size_t i = 1;
    while (i < keep && candidates_[i].first >= floor) ++i;
    keep = i;
  }
  float total = 0;
  for (size_t i = 0; i < keep; ++i) total += candidates_[i].first;
  float r = coin * total, cdf = 0;
  for (size_t i = 0; i < keep; ++i) {
    cdf += candidates_[i].first;
    if (r < cdf) return candidates_[i].second;
  }
  return candidates_[keep - 1].second;
}

}  // namespace llmflash

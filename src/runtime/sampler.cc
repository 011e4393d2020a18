// Greedy, temperature and top-p sampling.
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>

namespace llmflash {

void Sampler::Reset(float temperature, float top_p, uint64_t seed) {
  temperature_ = temperature;
  top_p_ = top_p;
  state_ = seed == 0 ? 0x9E3779B97F4A7C15ull : seed;  // xorshift needs a non-zero state
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

int Sampler::Sample(float* logits, int n) {
  if (temperature_ == 0.0f) return Argmax(logits, n);
  float max = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    logits[i] = std::exp((logits[i] - max) / temperature_);
    sum += logits[i];
  }
  for (int i = 0; i < n; ++i) logits[i] = static_cast<float>(logits[i] / sum);
  float coin = RandomFloat();
  if (top_p_ < 1.0f) return SampleTopP(logits, n, coin);
  float cdf = 0;
  for (int i = 0; i < n; ++i) {
    cdf += logits[i];
    if (coin < cdf) return i;
  }
  return n - 1;  // rounding
}

int Sampler::SampleTopP(const float* probs, int n, float coin) {
  // Tokens below this probability cannot be in the nucleus (llama2.c's cut).
  const float cutoff = n > 1 ? (1.0f - top_p_) / (n - 1) : 0.0f;
  candidates_.clear();
  for (int i = 0; i < n; ++i) if (probs[i] >= cutoff) candidates_.push_back({probs[i], i});
  if (candidates_.empty()) return Argmax(probs, n);
  std::sort(candidates_.begin(), candidates_.end(),
            [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  float cumulative = 0;
  size_t last = candidates_.size() - 1;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += candidates_[i].first;
    if (cumulative > top_p_) { last = i; break; }
  }
  float r = coin * cumulative, cdf = 0;
  for (size_t i = 0; i <= last; ++i) {
    cdf += candidates_[i].first;
    if (r < cdf) return candidates_[i].second;
  }
  return candidates_[last].second;
}

}  // namespace llmflash

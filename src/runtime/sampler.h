// Sampler: picks the next token from logits. Greedy at temperature 0;
// otherwise softmax(logits / temperature) with optional nucleus (top-p)
// truncation, driven by a seeded xorshift generator so that equal seeds give
// equal text (the same scheme as llama2.c's sampler).
//
// Thread-safety: not thread-safe; one per Session.
#ifndef LLMFLASH_RUNTIME_SAMPLER_H_
#define LLMFLASH_RUNTIME_SAMPLER_H_

#include <cstdint>
#include <utility>
#include <vector>

namespace llmflash {

class Sampler {
 public:
  void Reset(float temperature, float top_p, uint64_t seed);
  // Samples from `logits` (modified in place).
  int Sample(float* logits, int n);

  static int Argmax(const float* x, int n);

 private:
  float RandomFloat();  // uniform in [0, 1)
  int SampleTopP(const float* probs, int n, float coin);

  float temperature_ = 0;
  float top_p_ = 1;
  uint64_t state_ = 1;
  std::vector<std::pair<float, int>> candidates_;
};

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_SAMPLER_H_

// Sampler: picks the next token from logits, in this order:
//   1. repetition penalty over the recent tokens (CTRL's rule, as Hugging
//      Face and llama.cpp apply it: a positive logit is divided by the
//      penalty, a negative one multiplied, once per distinct token);
//   2. greedy (argmax) at temperature 0;
//   3. softmax(logits / temperature);
//   4. top-k, then top-p (nucleus), then min-p (keep p >= min_p * p_max);
//   5. a draw from what is left, driven by a seeded xorshift generator so
//      that equal seeds give equal text (llama2.c's scheme). With only top-p
//      set, steps 4-5 are llama2.c's sampler exactly.
//
// Thread-safety: not thread-safe; one per Session.
#ifndef LLMFLASH_RUNTIME_SAMPLER_H_
#define LLMFLASH_RUNTIME_SAMPLER_H_

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "llmflash/options.h"

namespace llmflash {

class Sampler {
 public:
  // The sampling fields of `o`: temperature, top_p, top_k, min_p,
  // repetition_penalty and seed (validated by the session).
  void Reset(const GenerateOptions& o);
  // Samples from `logits` (modified in place); `recent` are the tokens the
  // repetition penalty applies to.
  int Sample(float* logits, int n, std::span<const int> recent = {});

  static int Argmax(const float* x, int n);

 private:
  float RandomFloat();  // uniform in [0, 1)
  int SampleTopP(const float* probs, int n, float coin);
  int SampleTruncated(const float* probs, int n, float coin);

  GenerateOptions o_;
  uint64_t state_ = 1;
  std::vector<std::pair<float, int>> candidates_;
  std::vector<char> penalized_;
};

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_SAMPLER_H_

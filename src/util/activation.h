// The FFN activations, parsed once from the manifest's name: the forward
// pass, the predictors and the trainers switch on the kind, never on a
// string.
//
//   silu       x * sigmoid(x)                      (Llama, Mistral, Qwen, Phi-3)
//   relu       max(x, 0)                           (OPT, ReluLLaMA)
//   fatrelu    x if x >= threshold else 0          (ProSparse: its modeling's
//                                                   FATReLU uses torch.ge)
//   gelu_tanh  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (Gemma)
//
// relu and fatrelu give exact zeros (the "ReLU family"): a neuron whose
// activation is zero contributes nothing, so sparsity there is exact.
#ifndef LLMFLASH_UTIL_ACTIVATION_H_
#define LLMFLASH_UTIL_ACTIVATION_H_

#include <cmath>
#include <string>

#include "llmflash/status.h"

namespace llmflash {

enum class ActivationKind { kSilu, kRelu, kFatRelu, kGeluTanh };

struct Activation {
  ActivationKind kind = ActivationKind::kSilu;
  float threshold = 0.0f;  // fatrelu

  float operator()(float x) const {
    switch (kind) {
      case ActivationKind::kSilu: return x / (1.0f + std::exp(-x));
      case ActivationKind::kRelu: return x > 0.0f ? x : 0.0f;
      case ActivationKind::kFatRelu: return x >= threshold ? x : 0.0f;
      case ActivationKind::kGeluTanh: {
        constexpr float kSqrt2OverPi = 0.7978845608028654f;
        return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
      }
    }
    return x;
  }
  // Zero for a whole range of inputs: sparsity is exact, not a threshold.
  bool exact_zeros() const { return kind == ActivationKind::kRelu || kind == ActivationKind::kFatRelu; }

  // "silu", "relu", "fatrelu" (with `threshold`), "gelu_tanh".
  static StatusOr<Activation> Parse(const std::string& name, float threshold) {
    if (name == "silu") return Activation{ActivationKind::kSilu, 0};
    if (name == "relu") return Activation{ActivationKind::kRelu, 0};
    if (name == "fatrelu") return Activation{ActivationKind::kFatRelu, threshold};
    if (name == "gelu_tanh") return Activation{ActivationKind::kGeluTanh, 0};
    return Status::Unsupported("activation \"" + name + "\" (silu, relu, fatrelu, gelu_tanh)");
  }
};

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_ACTIVATION_H_

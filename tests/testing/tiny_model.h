// A tiny model with deterministic random weights, written in the test, for
// checks that need a ReLU FFN or shapes stories260K does not have.
#ifndef LLMFLASH_TESTS_TESTING_TINY_MODEL_H_
#define LLMFLASH_TESTS_TESTING_TINY_MODEL_H_

#include <string>

#include "llmflash/convert.h"
#include "llmflash/status.h"

namespace llmflash::testing {

struct TinyModelSpec {
  int dim = 16;
  int ffn_dim = 96;
  int n_layers = 2;
  int n_heads = 2;
  int n_kv_heads = 1;
  int vocab = 40;
  int max_seq_len = 64;
  bool gated = false;
  std::string activation = "relu";
  uint64_t seed = 1;
};

// Writes the model into `dir` (which must not hold one).
Status WriteTinyModel(const std::string& dir, const TinyModelSpec& spec);

// `llmflash synth` into dir + "-hf", then `convert --dtype dtype` into dir.
Status WriteSyntheticModel(const std::string& dir, SynthOptions synth, const std::string& dtype);

}  // namespace llmflash::testing

#endif  // LLMFLASH_TESTS_TESTING_TINY_MODEL_H_

// Tiny Hugging Face checkpoints (config.json + model.safetensors, F32) of the
// Llama-family and mixture-of-experts architectures, with every weight
// derived from its tensor's name as tests/reference/families_reference.py
// (and moe_reference.py) derive it, so the NumPy reference's logits are
// those of the checkpoint written here.
#ifndef LLMFLASH_TESTS_TESTING_HF_FIXTURE_H_
#define LLMFLASH_TESTS_TESTING_HF_FIXTURE_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "llmflash/status.h"

namespace llmflash::testing {

// Writes dir/config.json (`config` as given) and dir/model.safetensors.
Status WriteHfFixture(const std::string& dir, const nlohmann::json& config, uint64_t seed);

}  // namespace llmflash::testing

#endif  // LLMFLASH_TESTS_TESTING_HF_FIXTURE_H_

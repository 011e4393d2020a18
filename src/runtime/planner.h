// Planner: turns a DRAM budget and a device profile into the loader's
// choices (window size k; the neuron-matrix capacity comes from MemoryPlan)
// and the cost model's expected latency per token (docs/cost-model.md).
//
// Thread-safety: plain values and pure functions.
#ifndef LLMFLASH_RUNTIME_PLANNER_H_
#define LLMFLASH_RUNTIME_PLANNER_H_

#include <map>
#include <string>

#include <string>

#include "format/manifest.h"
#include "llmflash/options.h"
#include "llmflash/profile.h"
#include "runtime/memory_plan.h"

namespace llmflash {

// Bundles smaller than this are not worth calibrating on at Open: the
// nominal profile is used instead.
inline constexpr uint64_t kMinQuickCalibrationBytes = 64ull << 20;

// The profile Open uses: ModelOptions::device_profile, else the default
// location, else a quick calibration on the model's FFN bundle (saved to the
// default location), else (small bundles) a nominal profile. `source` says
// which.
DeviceProfile ResolveDeviceProfile(const ModelOptions& options, const std::string& bundle_path,
                                   uint64_t bundle_bytes, std::string* source, Status* error);

struct LoaderPlan {
  int window = 1;
  // > 0: evictions keep the neurons used most lately, uses decaying with
  // this half-life in tokens (mixtures of experts); 0: least recently used.
  double frequency_half_life = 0;
  double active_fraction = 1;      // expected neurons per token, of ffn_dim
  double churn = 0;                // assumed share of a token's neurons not resident
  // Resident weights a token streams (attention, classifier), by type.
  std::map<std::string, double> weight_bytes_per_token;
  TokenWorkload expected;          // steady-state token, llmflash mode
  CostEstimate estimate;
  double floor_ms = 0;
};

// The fraction of a token's active neurons that the previous tokens did not
// use, when nothing better is known (measured: synthetic OPT-6.7B ~9%,
// stories260K with its predictor ~20%). docs/cost-model.md.
inline constexpr double kDefaultChurn = 0.15;

// The half-life of an expert's uses for a mixture of experts' evictions, in
// tokens (docs/cost-model.md, "Mixtures of experts").
inline constexpr double kExpertUseHalfLife = 16;

LoaderPlan PlanLoader(const Manifest& m, const MemoryPlan& memory, const DeviceProfile& profile,
                      const ModelOptions& options);

// How the predictor's matrices are held in DRAM: f16 for models stored in
// 16 bits or quantized (half the bytes and time; scores move by f16
// rounding), f32 for f32 models.
inline DType PredictorDType(const Manifest& m) {
  return m.dtype == DType::kF32 ? DType::kF32 : DType::kF16;
}

// Bytes of resident weights one token's forward pass reads, by storage type.
std::map<std::string, double> ResidentWeightBytesPerToken(const Manifest& m);

}  // namespace llmflash

#endif  // LLMFLASH_RUNTIME_PLANNER_H_

// LruMissCurve: how many neurons a layer must read per token when it holds
// a given number of rows and evicts the least recently used, for a trace of
// the sets of neurons successive tokens use — the miss-ratio curve of the
// trace, from every access's stack distance (the distinct neurons used
// since that neuron's last use), computed in O(accesses · log tokens).
// The planner uses the curve measured on calibration text to predict reads
// before the first token (docs/cost-model.md).
//
// Thread-safety: pure functions.
#ifndef LLMFLASH_CACHE_MISS_CURVE_H_
#define LLMFLASH_CACHE_MISS_CURVE_H_

#include <cstdint>
#include <vector>

#include "format/manifest.h"

namespace llmflash {

// The curve's points: the fraction of a layer's neurons held as rows,
// 2^(i/2 - 12) for i = 0 .. kMissCurvePoints - 1 (1/4096 .. 1).
inline constexpr int kMissCurvePoints = kLruMissPoints;
double MissCurveRowFraction(int i);

// sets[t]: the sorted ids token t uses (0 <= id < n). Returns, for each
// point, the neurons read per token ÷ n: a use is a read when its neuron was
// never used before or at least `rows` distinct neurons were used more
// recently: in the tokens since, or later in the set of its last token (ids
// in a token count as used in increasing order). The use's own token is not
// counted.
std::vector<float> LruMissCurve(const std::vector<std::vector<int32_t>>& sets, int n);

// Reads per token ÷ n at `row_fraction`, interpolated between the points in
// log space and clamped at the ends.
double MissesAt(const std::vector<float>& curve, double row_fraction);

}  // namespace llmflash

#endif  // LLMFLASH_CACHE_MISS_CURVE_H_

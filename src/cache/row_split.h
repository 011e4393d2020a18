// SplitRows: how a fixed number of neuron-matrix rows is shared between
// layers: in proportion to what each layer wants (its expected or observed
// active neurons), none above the layer's neuron count, none below one row.
//
// Thread-safety: a pure function.
#ifndef LLMFLASH_CACHE_ROW_SPLIT_H_
#define LLMFLASH_CACHE_ROW_SPLIT_H_

#include <cstdint>
#include <span>
#include <vector>

namespace llmflash {

// `want` has one entry per layer (any positive scale); `total_rows` is capped
// at max_rows x layers. The result sums to that total.
std::vector<int> SplitRows(uint64_t total_rows, std::span<const double> want, int max_rows);

}  // namespace llmflash

#endif  // LLMFLASH_CACHE_ROW_SPLIT_H_

// Water-filling of rows over layers.
#include "cache/row_split.h"

#include <algorithm>
#include <cmath>

namespace llmflash {

std::vector<int> SplitRows(uint64_t total_rows, std::span<const double> want, int max_rows) {
  const int layers = static_cast<int>(want.size());
  std::vector<int> cap(layers, 1);
  if (layers == 0 || max_rows < 1) return cap;
  total_rows = std::min<uint64_t>(total_rows, static_cast<uint64_t>(max_rows) * layers);
  int64_t left = static_cast<int64_t>(total_rows) - layers;  // one row each is the minimum
  std::vector<bool> full(layers, max_rows == 1);
  // Share what is left by `want` among layers not yet full; a layer that
  // would pass max_rows is filled and its excess shared again.
  while (left > 0) {
    double weight = 0;
    for (int l = 0; l < layers; ++l) weight += full[l] ? 0 : std::max(1e-9, want[l]);
    if (weight == 0) break;
    int64_t given = 0;
    for (int l = 0; l < layers; ++l) {
      if (full[l]) continue;
      int64_t add = static_cast<int64_t>(std::floor(left * std::max(1e-9, want[l]) / weight));
      add = std::min<int64_t>(add, max_rows - cap[l]);
      cap[l] += static_cast<int>(add);
      given += add;
      full[l] = cap[l] == max_rows;
    }
    if (given == 0) {  // rounding leftovers: a row each, in layer order
      for (int l = 0; l < layers && given < left; ++l) {
        if (!full[l]) {
          ++cap[l];
          ++given;
          full[l] = cap[l] == max_rows;
        }
      }
    }
    left -= given;
  }
  return cap;
}

}  // namespace llmflash

// Stack distances with a Fenwick tree over tokens.
#include "cache/miss_curve.h"

#include <algorithm>
#include <cmath>

namespace llmflash {

double MissCurveRowFraction(int i) { return std::pow(2.0, i / 2.0 - 12.0); }

std::vector<float> LruMissCurve(const std::vector<std::vector<int32_t>>& sets, int n) {
  const int T = static_cast<int>(sets.size());
  std::vector<float> curve(kMissCurvePoints, 0.0f);
  if (T == 0 || n <= 0) return curve;
  // Every use gets a time: tokens in order, and within a token its ids in
  // increasing order (the tie-break any LRU needs). tree counts, per time,
  // whether it is some neuron's latest use.
  size_t uses = 0;
  for (const auto& s : sets) uses += s.size();
  const int64_t N = static_cast<int64_t>(uses);
  std::vector<int64_t> tree(N + 1, 0);
  auto add = [&](int64_t i, int64_t v) { for (++i; i <= N; i += i & -i) tree[i] += v; };
  auto prefix = [&](int64_t i) {  // times [0, i)
    int64_t s = 0;
    for (; i > 0; i -= i & -i) s += tree[i];
    return s;
  };
  std::vector<int64_t> last(n, -1);
  // histogram[d]: uses at stack distance d (d = n: first use).
  std::vector<int64_t> histogram(static_cast<size_t>(n) + 1, 0);
  int64_t now = 0;
  for (int t = 0; t < T; ++t) {
    const int64_t start = now;  // the token's first time
    const int64_t before = prefix(start);
    for (int32_t id : sets[t]) {
      if (id < 0 || id >= n) continue;
      const int64_t l = last[id];
      // Distinct neurons whose latest use is after this neuron's, before the token.
      const int64_t d = l < 0 ? n : before - prefix(l + 1);
      ++histogram[std::min<int64_t>(d, n)];
    }
    for (int32_t id : sets[t]) {
      if (id < 0 || id >= n) continue;
      if (last[id] >= 0) add(last[id], -1);
      add(now, 1);
      last[id] = now++;
    }
  }
  // misses(rows) = uses with distance >= rows.
  std::vector<int64_t> at_least(static_cast<size_t>(n) + 2, 0);
  for (int d = n; d >= 0; --d) at_least[d] = at_least[d + 1] + histogram[d];
  for (int i = 0; i < kMissCurvePoints; ++i) {
    const int rows = static_cast<int>(std::lround(MissCurveRowFraction(i) * n));
    curve[i] = static_cast<float>(static_cast<double>(at_least[std::min(rows, n)]) / T / n);
  }
  return curve;
}

double MissesAt(const std::vector<float>& curve, double row_fraction) {
  if (curve.size() != static_cast<size_t>(kMissCurvePoints)) return 0;
  const double x = std::log2(std::max(row_fraction, 1e-12)) * 2 + 24;  // the point index
  if (x <= 0) return curve.front();
  if (x >= kMissCurvePoints - 1) return curve.back();
  const int i = static_cast<int>(std::floor(x));
  const double f = x - i;
  return curve[i] * (1 - f) + curve[i + 1] * f;
}

}  // namespace llmflash

#include "util/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "util/half.h"

namespace llmflash {
namespace {

void QuantizeQ8_0(const float* x, int64_t n, BlockQ8_0* out) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b, x += kQuantBlock) {
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = FloatToF16(d);
    for (int j = 0; j < kQuantBlock; ++j) out[b].q[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void QuantizeQ4_0(const float* x, int64_t n, BlockQ4_0* out) {
  constexpr int kHalf = kQuantBlock / 2;
  for (int64_t b = 0; b < n / kQuantBlock; ++b, x += kQuantBlock) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = FloatToF16(d);
    for (int j = 0; j < kHalf; ++j) {
      // x / d lies in [-8, 8], so x / d + 8.5 in [0.5, 16.5]: truncation is
      // rounding to nearest, and only -max's 16 needs the clamp.
      const int lo = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(x[j + kHalf] * id + 8.5f));
      out[b].q[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

}  // namespace

void QuantizeRow(DType t, const float* in, int64_t n, void* out) {
  switch (t) {
    case DType::kF32:
      std::memcpy(out, in, n * sizeof(float));
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(out)[i] = FloatToF16(in[i]);
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(out)[i] = FloatToBf16(in[i]);
      return;
    case DType::kQ8_0:
      QuantizeQ8_0(in, n, static_cast<BlockQ8_0*>(out));
      return;
    case DType::kQ4_0:
      QuantizeQ4_0(in, n, static_cast<BlockQ4_0*>(out));
      return;
  }
}

}  // namespace llmflash

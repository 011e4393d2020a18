// ggml type table and dequantizers.
#include "format/gguf_types.h"

#include <cstring>

#include "util/half.h"

namespace llmflash {
namespace {

uint16_t U16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t U32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
float F16(const uint8_t* p) { return F16ToFloat(U16(p)); }

// Q4_0, Q4_1, Q5_0, Q5_1: 32 elements; `has_min` adds m, `high` reads qh.
void Legacy(const uint8_t* b, bool has_min, bool high, float* y) {
  const float d = F16(b);
  const float m = has_min ? F16(b + 2) : 0.0f;
  const uint8_t* p = b + (has_min ? 4 : 2);
  uint32_t qh = 0;
  if (high) {
    qh = U32(p);
    p += 4;
  }
  const int offset = has_min ? 0 : (high ? 16 : 8);
  for (int j = 0; j < 16; ++j) {
    int lo = p[j] & 0x0f, hi = p[j] >> 4;
    if (high) {
      lo |= static_cast<int>((qh >> j) & 1u) << 4;
      hi |= static_cast<int>((qh >> (j + 16)) & 1u) << 4;
    }
    y[j] = d * static_cast<float>(lo - offset) + m;
    y[j + 16] = d * static_cast<float>(hi - offset) + m;
  }
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block.
void ScaleMinK4(int j, const uint8_t* q, int* sc, int* mn) {
  if (j < 4) {
    *sc = q[j] & 63;
    *mn = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Q4_K (qh null) and Q5_K: 256 elements in 8 sub-blocks of 32.
void K45(const uint8_t* b, bool five, float* y) {
  const float d = F16(b), dmin = F16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = five ? b + 16 : nullptr;
  const uint8_t* q = b + (five ? 48 : 16);
  for (int j = 0; j < 4; ++j) {  // 64 elements: sub-blocks 2j (low nibbles) and 2j+1 (high)
    int sc, mn;
    ScaleMinK4(2 * j, scales, &sc, &mn);
    const float d1 = d * sc, m1 = dmin * mn;
    ScaleMinK4(2 * j + 1, scales, &sc, &mn);
    const float d2 = d * sc, m2 = dmin * mn;
    for (int l = 0; l < 32; ++l) {
      int lo = q[l] & 0x0f, hi = q[l] >> 4;
      if (five) {
        lo += ((qh[l] >> (2 * j)) & 1) << 4;
        hi += ((qh[l] >> (2 * j + 1)) & 1) << 4;
      }
      y[l] = d1 * static_cast<float>(lo) - m1;
      y[l + 32] = d2 * static_cast<float>(hi) - m2;
    }
    y += 64;
    q += 32;
  }
}

// Q6_K: 256 elements; 4 low bits in ql, 2 high bits in qh, 16 int8 scales.
void K6(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = F16(b + 208);
  for (int n = 0; n < 2; ++n) {  // halves of 128
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * sc[is + 0] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace

GgmlTypeTraits GgmlTraits(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return {"F32", 1, 4, true};
    case GgmlType::kF16: return {"F16", 1, 2, true};
    case GgmlType::kBF16: return {"BF16", 1, 2, true};
    case GgmlType::kQ4_0: return {"Q4_0", 32, 18, true};
    case GgmlType::kQ4_1: return {"Q4_1", 32, 20, true};
    case GgmlType::kQ5_0: return {"Q5_0", 32, 22, true};
    case GgmlType::kQ5_1: return {"Q5_1", 32, 24, true};
    case GgmlType::kQ8_0: return {"Q8_0", 32, 34, true};
    case GgmlType::kQ8_1: return {"Q8_1", 32, 36, false};
    case GgmlType::kQ2_K: return {"Q2_K", 256, 84, false};
    case GgmlType::kQ3_K: return {"Q3_K", 256, 110, false};
    case GgmlType::kQ4_K: return {"Q4_K", 256, 144, true};
    case GgmlType::kQ5_K: return {"Q5_K", 256, 176, true};
    case GgmlType::kQ6_K: return {"Q6_K", 256, 210, true};
    case GgmlType::kQ8_K: return {"Q8_K", 256, 292, false};
    case GgmlType::kIQ4_NL: return {"IQ4_NL", 32, 18, false};
    case GgmlType::kIQ4_XS: return {"IQ4_XS", 256, 136, false};
    case GgmlType::kI8: return {"I8", 1, 1, false};
    case GgmlType::kI16: return {"I16", 1, 2, false};
    case GgmlType::kI32: return {"I32", 1, 4, false};
    case GgmlType::kI64: return {"I64", 1, 8, false};
    case GgmlType::kF64: return {"F64", 1, 8, false};
    case GgmlType::kUnknown: return {"unknown", 0, 0, false};
  }
  return {"unknown", 0, 0, false};  // unreachable: every enumerator is handled above
}

GgmlType GgmlTypeFromId(uint32_t id) {
  switch (id) {
    case 0: case 1: case 2: case 3: case 6: case 7: case 8: case 9: case 10: case 11: case 12: case 13:
    case 14: case 15: case 20: case 23: case 24: case 25: case 26: case 27: case 28: case 30:
      return static_cast<GgmlType>(id);
    default:
      return GgmlType::kUnknown;
  }
}

const char* GgmlTypeName(GgmlType t) { return GgmlTraits(t).name; }

std::optional<DType> SameBlocksAs(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return DType::kF32;
    case GgmlType::kF16: return DType::kF16;
    case GgmlType::kBF16: return DType::kBF16;
    case GgmlType::kQ8_0: return DType::kQ8_0;
    case GgmlType::kQ4_0: return DType::kQ4_0;
    default: return std::nullopt;
  }
}

GgmlType GgmlTypeOf(DType t) {
  switch (t) {
    case DType::kF32: return GgmlType::kF32;
    case DType::kF16: return GgmlType::kF16;
    case DType::kBF16: return GgmlType::kBF16;
    case DType::kQ8_0: return GgmlType::kQ8_0;
    case DType::kQ4_0: return GgmlType::kQ4_0;
  }
  return GgmlType::kF32;  // unreachable: every enumerator is handled above
}

DType ClosestDType(GgmlType t) {
  if (auto same = SameBlocksAs(t)) return *same;
  switch (t) {
    case GgmlType::kQ5_0: case GgmlType::kQ5_1: case GgmlType::kQ5_K: case GgmlType::kQ6_K: case GgmlType::kQ8_1:
    case GgmlType::kQ8_K:
      return DType::kQ8_0;
    case GgmlType::kI8: case GgmlType::kI16: case GgmlType::kI32: case GgmlType::kI64: case GgmlType::kF64:
      return DType::kF32;
    default: return DType::kQ4_0;
  }
}

void DequantizeGgmlRow(GgmlType t, const void* in, uint64_t n, float* out) {
  const uint8_t* b = static_cast<const uint8_t*>(in);
  const GgmlTypeTraits tr = GgmlTraits(t);
  const uint64_t blocks = tr.block_elements == 0 ? 0 : n / tr.block_elements;
  switch (t) {
    case GgmlType::kF32: std::memcpy(out, in, n * 4); return;
    case GgmlType::kF16: for (uint64_t i = 0; i < n; ++i) out[i] = F16(b + 2 * i); return;
    case GgmlType::kBF16: for (uint64_t i = 0; i < n; ++i) out[i] = Bf16ToFloat(U16(b + 2 * i)); return;
    case GgmlType::kQ8_0:
      for (uint64_t k = 0; k < blocks; ++k, b += 34) {
        const float d = F16(b);
        for (int j = 0; j < 32; ++j) out[k * 32 + j] = d * static_cast<int8_t>(b[2 + j]);
      }
      return;
    case GgmlType::kQ4_0: for (uint64_t k = 0; k < blocks; ++k) Legacy(b + k * 18, false, false, out + k * 32); return;
    case GgmlType::kQ4_1: for (uint64_t k = 0; k < blocks; ++k) Legacy(b + k * 20, true, false, out + k * 32); return;
    case GgmlType::kQ5_0: for (uint64_t k = 0; k < blocks; ++k) Legacy(b + k * 22, false, true, out + k * 32); return;
    case GgmlType::kQ5_1: for (uint64_t k = 0; k < blocks; ++k) Legacy(b + k * 24, true, true, out + k * 32); return;
    case GgmlType::kQ4_K: for (uint64_t k = 0; k < blocks; ++k) K45(b + k * 144, false, out + k * 256); return;
    case GgmlType::kQ5_K: for (uint64_t k = 0; k < blocks; ++k) K45(b + k * 176, true, out + k * 256); return;
    case GgmlType::kQ6_K: for (uint64_t k = 0; k < blocks; ++k) K6(b + k * 210, out + k * 256); return;
    case GgmlType::kQ8_1: case GgmlType::kQ2_K: case GgmlType::kQ3_K: case GgmlType::kQ8_K:
    case GgmlType::kIQ4_NL: case GgmlType::kIQ4_XS: case GgmlType::kI8: case GgmlType::kI16:
    case GgmlType::kI32: case GgmlType::kI64: case GgmlType::kF64: case GgmlType::kUnknown:
      break;  // not dequantizable: callers check GgmlTraits(t).dequantizable first
  }
  for (uint64_t i = 0; i < n; ++i) out[i] = 0.0f;
}

}  // namespace llmflash

// NEON row kernels (aarch64, where NEON and the f16 conversions are part of
// the base architecture) over f16, bf16, q8_0 and q4_0 weights. Like the x86
// paths: eight rows per pass, one 4-lane accumulator per row; quantized
// products are integer dot products per block against x's int8 blocks, and
// quantized axpy widens blocks to f32 lanes.
#include "kernels/typed_kernels_impl.h"

#include <cmath>

#include "util/dtype.h"
#include "util/half.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace llmflash::internal {

#if defined(__aarch64__)
namespace {

template <bool F16>
inline float32x4_t Load4(const uint16_t* p) {
  const uint16x4_t h = vld1_u16(p);
  if constexpr (F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
  return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

template <bool F16>
inline float LoadOne(const uint16_t* p) {
  return F16 ? F16ToFloat(*p) : Bf16ToFloat(*p);
}

template <int R, bool F16>
void DotHalf(const void* const r[], const void* xv, int n, float* out) {
  const auto* x = static_cast<const float*>(xv);
  float32x4_t acc[R];
  for (int k = 0; k < R; ++k) acc[k] = vdupq_n_f32(0);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t xv = vld1q_f32(x + i);
    for (int k = 0; k < R; ++k) acc[k] = vfmaq_f32(acc[k], Load4<F16>(static_cast<const uint16_t*>(r[k]) + i), xv);
  }
  for (int k = 0; k < R; ++k) {
    float s = vaddvq_f32(acc[k]);
    for (int j = i; j < n; ++j) s = std::fma(LoadOne<F16>(static_cast<const uint16_t*>(r[k]) + j), x[j], s);
    out[k] = s;
  }
}

template <int R, bool F16>
void AxpyHalf(const float a[], const void* const r[], int n, float* y) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    float32x4_t v = vld1q_f32(y + i);
    for (int k = 0; k < R; ++k) v = vfmaq_n_f32(v, Load4<F16>(static_cast<const uint16_t*>(r[k]) + i), a[k]);
    vst1q_f32(y + i, v);
  }
  for (; i < n; ++i) {
    for (int k = 0; k < R; ++k) y[i] = std::fma(a[k], LoadOne<F16>(static_cast<const uint16_t*>(r[k]) + i), y[i]);
  }
}

// Sixteen int8 as four 4-lane f32 vectors.
inline void Widen(int8x16_t q, float32x4_t* v) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_s8(vget_high_s8(q));
  v[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
  v[1] = vcvtq_f32_s32(vmovl_s16(vget_high_s16(lo)));
  v[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
  v[3] = vcvtq_f32_s32(vmovl_s16(vget_high_s16(hi)));
}

// A block's 32 elements as signed bytes, in element order.
inline void Bytes(const BlockQ8_0& b, int8x16_t* lo, int8x16_t* hi) {
  *lo = vld1q_s8(b.q);
  *hi = vld1q_s8(b.q + 16);
}

inline void Bytes(const BlockQ4_0& b, int8x16_t* lo, int8x16_t* hi) {
  const uint8x16_t raw = vld1q_u8(b.q);
  const int8x16_t eight = vdupq_n_s8(8);
  *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F))), eight);
  *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(raw, 4)), eight);
}

// A block's 32 elements as eight 4-lane vectors, in element order.
template <class Block>
inline void Lanes(const Block& b, float32x4_t v[8]) {
  int8x16_t lo, hi;
  Bytes(b, &lo, &hi);
  Widen(lo, v);
  Widen(hi, v + 4);
}

// Four int32 partial sums of w[j] * x[j] over a block (baseline ARMv8:
// widening multiplies; the dot-product extension's sdot is not assumed).
inline int32x4_t BlockDot(int8x16_t w0, int8x16_t w1, const int8_t* x) {
  const int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
  int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
  p0 = vmlal_s8(p0, vget_high_s8(w0), vget_high_s8(x0));
  int16x8_t p1 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
  p1 = vmlal_s8(p1, vget_high_s8(w1), vget_high_s8(x1));
  return vpadalq_s16(vpaddlq_s16(p0), p1);
}

template <int R, class Block>
void DotQuant(const void* const r[], const void* xv, int n, float* out) {
  const auto* x = static_cast<const InputBlock*>(xv);
  float32x4_t acc[R];
  for (int k = 0; k < R; ++k) acc[k] = vdupq_n_f32(0);
  for (int i = 0; i < n / kQuantBlock; ++i) {
    for (int k = 0; k < R; ++k) {
      const Block& b = static_cast<const Block*>(r[k])[i];
      int8x16_t w0, w1;
      Bytes(b, &w0, &w1);
      const float32x4_t s = vcvtq_f32_s32(BlockDot(w0, w1, x[i].q));
      acc[k] = vfmaq_n_f32(acc[k], s, F16ToFloat(b.d) * x[i].d);
    }
  }
  for (int k = 0; k < R; ++k) out[k] = vaddvq_f32(acc[k]);
}

template <int R, class Block>
void AxpyQuant(const float a[], const void* const r[], int n, float* y) {
  for (int i = 0; i < n / kQuantBlock; ++i, y += kQuantBlock) {
    float32x4_t yv[8];
    for (int j = 0; j < 8; ++j) yv[j] = vld1q_f32(y + 4 * j);
    for (int k = 0; k < R; ++k) {
      const Block& b = static_cast<const Block*>(r[k])[i];
      const float ad = a[k] * F16ToFloat(b.d);
      float32x4_t v[8];
      Lanes(b, v);
      for (int j = 0; j < 8; ++j) yv[j] = vfmaq_n_f32(yv[j], v[j], ad);
    }
    for (int j = 0; j < 8; ++j) vst1q_f32(y + 4 * j, yv[j]);
  }
}

#define LLMFLASH_TABLE(Dot, Axpy, ...)                                                       \
  RowKernels {                                                                               \
    DotOne<Dot<1, __VA_ARGS__>>, Dot<kRowGroup, __VA_ARGS__>, AxpyOne<Axpy<1, __VA_ARGS__>>, \
        Axpy<kRowGroup, __VA_ARGS__>, DotTileOfRows<DotOne<Dot<1, __VA_ARGS__>>>,            \
        AxpyTileOfRows<AxpyOne<Axpy<1, __VA_ARGS__>>>                                        \
  }
const PathKernels kNeon = {LLMFLASH_TABLE(DotHalf, AxpyHalf, true), LLMFLASH_TABLE(DotHalf, AxpyHalf, false),
                           LLMFLASH_TABLE(DotQuant, AxpyQuant, BlockQ8_0),
                           LLMFLASH_TABLE(DotQuant, AxpyQuant, BlockQ4_0)};
#undef LLMFLASH_TABLE

}  // namespace

const PathKernels* NeonKernels() { return &kNeon; }
#else
const PathKernels* NeonKernels() { return nullptr; }
#endif

}  // namespace llmflash::internal

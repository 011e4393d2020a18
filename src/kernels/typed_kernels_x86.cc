// AVX2+F16C+FMA and AVX-512 (F, BW, VL) row kernels over f16, bf16, q8_0 and
// q4_0 weights, chosen at run time by CPUID. Eight rows go through one pass
// so that eight weight streams are in flight per core; on this project's
// 2-core Zen 5 the eight-row AVX-512 product streams f16 weights ~20% faster
// than four rows of AVX2 did (docs/cost-model.md). Quantized products are
// integer dot products per block against x quantized to int8 (KernelInput);
// quantized axpy widens the block to f32 lanes.
#include "kernels/typed_kernels_impl.h"

#include "util/dtype.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "util/half.h"

#if defined(__x86_64__)
// GCC 12's avx512fintrin.h starts conversions from _mm512_undefined_*() and
// then warns that the undefined value may be used (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <cpuid.h>
#include <immintrin.h>

#include "kernels/avx2_lanes.h"
#endif

namespace llmflash::internal {

#if defined(__x86_64__)
namespace {

inline float Load(const uint16_t* p, int i, bool f16) { return f16 ? F16ToFloat(p[i]) : Bf16ToFloat(p[i]); }

template <int R>
inline void Cast(const void* const in[R], const uint16_t* out[R]) {
  for (int k = 0; k < R; ++k) out[k] = static_cast<const uint16_t*>(in[k]);
}

// CPUID leaf 7 EBX bits and the XCR0 register state the OS saves.
struct CpuFeatures {
  bool avx2 = false, avx512 = false;
};

CpuFeatures Detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12), f16c = c & (1u << 29), osxsave = c & (1u << 27);
  if (!fma || !f16c || !osxsave) return f;
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0x6) != 0x6 || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;  // XMM, YMM
  f.avx2 = (b & (1u << 5)) != 0;
  const unsigned want = (1u << 16) | (1u << 30) | (1u << 31);  // AVX512 F, BW, VL
  f.avx512 = f.avx2 && (b & want) == want && (lo & 0xE0) == 0xE0;  // opmask, ZMM state
  return f;
}

const CpuFeatures& Features() {
  static const CpuFeatures f = Detect();
  return f;
}

// ---- AVX2: one 8-lane accumulator per row, the tail in scalar FMAs. ----
template <int R, bool f16>
LLMFLASH_AVX2 void DotRowsAvx2(const void* const rows[], const void* xv, int n, float* out) {
  const uint16_t* r[R];
  Cast<R>(rows, r);
  const auto* x = static_cast<const float*>(xv);
  __m256 acc[R];
  for (int k = 0; k < R; ++k) acc[k] = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    for (int k = 0; k < R; ++k) acc[k] = _mm256_fmadd_ps(Widen8(r[k] + i, f16), xv, acc[k]);
  }
  for (int k = 0; k < R; ++k) {
    float sum = Sum8(acc[k]);
    for (int j = i; j < n; ++j) sum = std::fma(Load(r[k], j, f16), x[j], sum);
    out[k] = sum;
  }
}

template <int R, bool f16>
LLMFLASH_AVX2 void AxpyRowsAvx2(const float a[], const void* const rows[], int n, float* y) {
  const uint16_t* r[R];
  Cast<R>(rows, r);
  __m256 av[R];
  for (int k = 0; k < R; ++k) av[k] = _mm256_set1_ps(a[k]);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(y + i);
    for (int k = 0; k < R; ++k) v = _mm256_fmadd_ps(av[k], Widen8(r[k] + i, f16), v);
    _mm256_storeu_ps(y + i, v);
  }
  for (; i < n; ++i) {
    for (int k = 0; k < R; ++k) y[i] = std::fma(a[k], Load(r[k], i, f16), y[i]);
  }
}

// ---- AVX-512: one 16-lane accumulator per row, the tail under a mask. ----
#define LLMFLASH_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))

// How far ahead of the current element a row is prefetched (512 bytes of
// f16/bf16). A prefetch past the row's end is harmless: it never faults.
constexpr int kPrefetchElements = 256;

LLMFLASH_AVX512 inline __m512 Convert16(__m256i h, bool f16) {
  if (f16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

LLMFLASH_AVX512 inline __m512 Load16(const uint16_t* p, bool f16) {
  return Convert16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), f16);
}

LLMFLASH_AVX512 inline __m512 Load16(const uint16_t* p, __mmask16 m, bool f16) {
  return Convert16(_mm256_maskz_loadu_epi16(m, p), f16);
}

template <int R, bool f16>
LLMFLASH_AVX512 void DotRowsAvx512(const void* const rows[], const void* xv, int n, float* out) {
  const uint16_t* r[R];
  Cast<R>(rows, r);
  const auto* x = static_cast<const float*>(xv);
  __m512 acc[R];
  for (int k = 0; k < R; ++k) acc[k] = _mm512_setzero_ps();
  int i = 0;
  // Two steps per pass, in the same order as one step at a time (so the sums
  // are those of the loop below), with each row prefetched 512 bytes ahead:
  // ~10% more bytes per second than one step without prefetch.
  for (; i + 32 <= n; i += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
    for (int k = 0; k < R; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(r[k] + i + kPrefetchElements), _MM_HINT_T0);
      acc[k] = _mm512_fmadd_ps(Load16(r[k] + i, f16), x0, acc[k]);
      acc[k] = _mm512_fmadd_ps(Load16(r[k] + i + 16, f16), x1, acc[k]);
    }
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 xv = _mm512_loadu_ps(x + i);
    for (int k = 0; k < R; ++k) acc[k] = _mm512_fmadd_ps(Load16(r[k] + i, f16), xv, acc[k]);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
    for (int k = 0; k < R; ++k) acc[k] = _mm512_mask3_fmadd_ps(Load16(r[k] + i, m, f16), xv, acc[k], m);
  }
  for (int k = 0; k < R; ++k) out[k] = _mm512_reduce_add_ps(acc[k]);
}

template <int R, bool f16>
LLMFLASH_AVX512 void AxpyRowsAvx512(const float a[], const void* const rows[], int n, float* y) {
  const uint16_t* r[R];
  Cast<R>(rows, r);
  __m512 av[R];
  for (int k = 0; k < R; ++k) av[k] = _mm512_set1_ps(a[k]);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_loadu_ps(y + i);
    for (int k = 0; k < R; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(r[k] + i + kPrefetchElements), _MM_HINT_T0);
      v = _mm512_fmadd_ps(av[k], Load16(r[k] + i, f16), v);
    }
    _mm512_storeu_ps(y + i, v);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 v = _mm512_maskz_loadu_ps(m, y + i);
    for (int k = 0; k < R; ++k) v = _mm512_fmadd_ps(av[k], Load16(r[k] + i, m, f16), v);
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

// ---- Quantized blocks (q8_0, q4_0): widened to f32 lanes in registers. ----

// A block's 32 elements as four 8-lane vectors (elements 0-7, ..., 24-31).
LLMFLASH_AVX2 inline void Lanes8(const BlockQ8_0& b, __m256 v[4]) {
  const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.q));
  const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.q + 16));
  v[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q0));
  v[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q0, 8)));
  v[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q1));
  v[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q1, 8)));
}

// Low nibbles are elements 0-15, high nibbles 16-31; both minus 8.
LLMFLASH_AVX2 inline void Nibbles(const BlockQ4_0& b, __m128i* lo, __m128i* hi) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.q));
  const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  *lo = _mm_sub_epi8(_mm_and_si128(raw, mask), eight);
  *hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), eight);
}

LLMFLASH_AVX2 inline void Lanes8(const BlockQ4_0& b, __m256 v[4]) {
  __m128i lo, hi;
  Nibbles(b, &lo, &hi);
  v[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
  v[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
  v[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
  v[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
}

// A q4_0 block's 32 elements as signed bytes, in element order.
LLMFLASH_AVX2 inline __m256i Bytes(const BlockQ4_0& b) {
  __m128i lo, hi;
  Nibbles(b, &lo, &hi);
  return _mm256_set_m128i(hi, lo);
}

LLMFLASH_AVX2 inline __m256i Bytes(const BlockQ8_0& b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.q));
}

// Eight int32 partial sums of w[j] * x[j] over a block: |w| times x with w's
// sign (maddubs multiplies unsigned by signed bytes), pairs summed to int16
// (at most 2 * 128 * 127, no saturation), then to int32.
LLMFLASH_AVX2 inline __m256i BlockDot(__m256i w, __m256i x) {
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

template <int R, class Block>
LLMFLASH_AVX2 void DotQuantAvx2(const void* const r[], const void* xv, int n, float* out) {
  const auto* x = static_cast<const InputBlock*>(xv);
  __m256 acc[R];
  for (int k = 0; k < R; ++k) acc[k] = _mm256_setzero_ps();
  for (int i = 0; i < n / kQuantBlock; ++i) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].q));
    for (int k = 0; k < R; ++k) {
      const Block& b = static_cast<const Block*>(r[k])[i];
      const __m256 s = _mm256_cvtepi32_ps(BlockDot(Bytes(b), xq));
      acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b.d) * x[i].d), s, acc[k]);
    }
  }
  for (int k = 0; k < R; ++k) out[k] = Sum8(acc[k]);
}

template <int R, class Block>
LLMFLASH_AVX2 void AxpyQuantAvx2(const float a[], const void* const r[], int n, float* y) {
  for (int i = 0; i < n / kQuantBlock; ++i, y += kQuantBlock) {
    __m256 y0 = _mm256_loadu_ps(y), y1 = _mm256_loadu_ps(y + 8), y2 = _mm256_loadu_ps(y + 16),
           y3 = _mm256_loadu_ps(y + 24);
    for (int k = 0; k < R; ++k) {
      const Block& b = static_cast<const Block*>(r[k])[i];
      const __m256 ad = _mm256_set1_ps(a[k] * _cvtsh_ss(b.d));
      __m256 v[4];
      Lanes8(b, v);
      y0 = _mm256_fmadd_ps(ad, v[0], y0);
      y1 = _mm256_fmadd_ps(ad, v[1], y1);
      y2 = _mm256_fmadd_ps(ad, v[2], y2);
      y3 = _mm256_fmadd_ps(ad, v[3], y3);
    }
    _mm256_storeu_ps(y, y0);
    _mm256_storeu_ps(y + 8, y1);
    _mm256_storeu_ps(y + 16, y2);
    _mm256_storeu_ps(y + 24, y3);
  }
}

// A tile of R rows x I inputs of quantized products (a prompt's batch): each
// weight block is decoded (nibbles, |w| and sign) once for the I inputs.
// Every (row, input) pair keeps its own accumulator and takes exactly
// DotQuantAvx2's steps, so the tile gives the row kernel's bits.
template <int R, int I, class Block>
LLMFLASH_AVX2 void DotTileQuantAvx2(const void* const r[], const void* const xv[], int n, float* out, int stride) {
  const InputBlock* x[I];
  for (int b = 0; b < I; ++b) x[b] = static_cast<const InputBlock*>(xv[b]);
  __m256 acc[R][I];
  for (int k = 0; k < R; ++k) {
    for (int b = 0; b < I; ++b) acc[k][b] = _mm256_setzero_ps();
  }
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (std::is_same_v<Block, BlockQ4_0>) {
    // q4_0: the nibbles' unsigned levels u go to maddubs as they are, and
    // 8 * (x0 + x1) comes off each int16 pair sum: (u0 - 8) x0 + (u1 - 8) x1,
    // the same int16 (and so int32) lanes as |w| times x with w's sign, with
    // one register per row instead of two (no spills at 2 x 4).
    const __m256i eight = _mm256_set1_epi8(8), low = _mm256_set1_epi8(0x0F);
    for (int i = 0; i < n / kQuantBlock; ++i) {
      __m256i u[R];
      alignas(32) float dw[R];
      for (int k = 0; k < R; ++k) {
        const BlockQ4_0& blk = static_cast<const BlockQ4_0*>(r[k])[i];
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.q));
        u[k] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low);
        dw[k] = _cvtsh_ss(blk.d);
      }
      for (int b = 0; b < I; ++b) {
        const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b][i].q));
        const __m256i offset = _mm256_maddubs_epi16(eight, xq);
        const __m256 dx = _mm256_broadcast_ss(&x[b][i].d);
        for (int k = 0; k < R; ++k) {
          const __m256i p = _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(u[k], xq), offset), ones);
          const __m256 d = _mm256_mul_ps(_mm256_broadcast_ss(&dw[k]), dx);
          acc[k][b] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[k][b]);
        }
      }
    }
  } else {
  for (int i = 0; i < n / kQuantBlock; ++i) {
    __m256i w[R], wabs[R];
    alignas(32) float dw[R];
    for (int k = 0; k < R; ++k) {
      const Block& blk = static_cast<const Block*>(r[k])[i];
      w[k] = Bytes(blk);
      wabs[k] = _mm256_sign_epi8(w[k], w[k]);
      dw[k] = _cvtsh_ss(blk.d);
    }
    for (int b = 0; b < I; ++b) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b][i].q));
      // d_row * d_x in every lane: one vector product per pair (the scalar
      // product's bits), the row's scale broadcast from memory.
      const __m256 dx = _mm256_broadcast_ss(&x[b][i].d);
      for (int k = 0; k < R; ++k) {
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[k], _mm256_sign_epi8(xq, w[k])), ones);
        const __m256 d = _mm256_mul_ps(_mm256_broadcast_ss(&dw[k]), dx);
        acc[k][b] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[k][b]);
      }
    }
  }
  }
  for (int b = 0; b < I; ++b) {
    for (int k = 0; k < R; ++k) out[b * stride + k] = Sum8(acc[k][b]);
  }
}

template <int R, class Block>
void DotTileQuantAvx2R(const void* const r[], const void* const xs[], int ni, int n, float* out, int stride) {
  switch (ni) {
    case 1: return DotTileQuantAvx2<R, 1, Block>(r, xs, n, out, stride);
    case 2: return DotTileQuantAvx2<R, 2, Block>(r, xs, n, out, stride);
    case 3: return DotTileQuantAvx2<R, 3, Block>(r, xs, n, out, stride);
    default: return DotTileQuantAvx2<R, 4, Block>(r, xs, n, out, stride);
  }
}

// Rows two at a time: 2 x 4 accumulators, the two rows' bytes and |bytes|
// and an input block fill the sixteen ymm registers.
template <class Block>
void DotTileQuantAvx2Any(const void* const r[], int nr, const void* const xs[], int ni, int n, float* out,
                         int stride) {
  for (int k = 0; k < nr; k += 2) {
    if (nr - k >= 2) {
      DotTileQuantAvx2R<2, Block>(r + k, xs, ni, n, out + k, stride);
    } else {
      DotTileQuantAvx2R<1, Block>(r + k, xs, ni, n, out + k, stride);
    }
  }
}

// out += sum_k a[b, k] * row k for up to kTileInputs outputs, a block at a
// time: each row's block is widened once (its levels as f32, exactly) for
// every output, and each element takes fma(a * d, level, y) row after row,
// AxpyQuantAvx2's steps, so every output gets the row kernel's bits.
template <class Block, int I>
LLMFLASH_AVX2 void AxpyBlockOutputs(const float* a, int a_stride, const __m256* wq, const float* dk, int count,
                                    float* const ys[], int i) {
  __m256 y[I][4];
  for (int b = 0; b < I; ++b) {
    for (int v = 0; v < 4; ++v) y[b][v] = _mm256_loadu_ps(ys[b] + i + 8 * v);
  }
  for (int k = 0; k < count; ++k) {
    for (int b = 0; b < I; ++b) {
      const __m256 ad = _mm256_set1_ps(a[b * a_stride + k] * dk[k]);
      for (int v = 0; v < 4; ++v) y[b][v] = _mm256_fmadd_ps(ad, wq[4 * k + v], y[b][v]);
    }
  }
  for (int b = 0; b < I; ++b) {
    for (int v = 0; v < 4; ++v) _mm256_storeu_ps(ys[b] + i + 8 * v, y[b][v]);
  }
}

template <class Block>
LLMFLASH_AVX2 void AxpyTileQuantAvx2(const float* a, int a_stride, const void* const r[], int count, int n,
                                     float* const ys[], int ni) {
  constexpr int kMaxRows = 64;
  alignas(32) __m256 wq[4 * kMaxRows];
  float dk[kMaxRows];
  for (int k0 = 0; k0 < count; k0 += kMaxRows) {
    const int c = std::min(kMaxRows, count - k0);
    for (int i = 0; i < n / kQuantBlock; ++i) {
      for (int k = 0; k < c; ++k) {
        const Block& blk = static_cast<const Block*>(r[k0 + k])[i];
        Lanes8(blk, wq + 4 * k);
        dk[k] = _cvtsh_ss(blk.d);
      }
      // Two outputs per pass: 8 sums in registers beside the row's lanes.
      for (int b = 0; b < ni; b += 2) {
        if (ni - b >= 2) {
          AxpyBlockOutputs<Block, 2>(a + b * a_stride + k0, a_stride, wq, dk, c, ys + b, i * kQuantBlock);
        } else {
          AxpyBlockOutputs<Block, 1>(a + b * a_stride + k0, a_stride, wq, dk, c, ys + b, i * kQuantBlock);
        }
      }
    }
  }
}

// ---- The tables. ----

// One path's kernels for a type from its grouped code: the one-row entry
// points are the grouped code with one row.
// Float rows have tiles of their own (kernels/tile_kernels.h); their
// table's tiles are the one-row kernels in a loop.
#define LLMFLASH_ROWS(Dot, Axpy, ...)                                                          \
  RowKernels {                                                                               \
    DotOne<Dot<1, __VA_ARGS__>>, Dot<kRowGroup, __VA_ARGS__>, AxpyOne<Axpy<1, __VA_ARGS__>>, \
        Axpy<kRowGroup, __VA_ARGS__>, DotTileOfRows<DotOne<Dot<1, __VA_ARGS__>>>,            \
        AxpyTileOfRows<AxpyOne<Axpy<1, __VA_ARGS__>>>                                        \
  }
#define LLMFLASH_QUANT(Block)                                                                       \
  RowKernels {                                                                                    \
    DotOne<DotQuantAvx2<1, Block>>, DotQuantAvx2<kRowGroup, Block>, AxpyOne<AxpyQuantAvx2<1, Block>>, \
        AxpyQuantAvx2<kRowGroup, Block>, DotTileQuantAvx2Any<Block>, AxpyTileQuantAvx2<Block>     \
  }
const PathKernels kAvx2 = {LLMFLASH_ROWS(DotRowsAvx2, AxpyRowsAvx2, true),
                           LLMFLASH_ROWS(DotRowsAvx2, AxpyRowsAvx2, false), LLMFLASH_QUANT(BlockQ8_0),
                           LLMFLASH_QUANT(BlockQ4_0)};
// Quantized rows on AVX-512 machines use the 256-bit integer kernels: a
// 512-bit (AVX512BW/VNNI) version is worth having but needs a machine with
// AVX-512 to be measured and tested on, which this session's was not.
const PathKernels kAvx512 = {LLMFLASH_ROWS(DotRowsAvx512, AxpyRowsAvx512, true),
                             LLMFLASH_ROWS(DotRowsAvx512, AxpyRowsAvx512, false), LLMFLASH_QUANT(BlockQ8_0),
                             LLMFLASH_QUANT(BlockQ4_0)};
#undef LLMFLASH_QUANT
#undef LLMFLASH_ROWS

}  // namespace

const PathKernels* Avx2Kernels() { return Features().avx2 ? &kAvx2 : nullptr; }
const PathKernels* Avx512Kernels() { return Features().avx512 ? &kAvx512 : nullptr; }

namespace {
LLMFLASH_AVX512 void WidenHalf(const uint16_t* p, int n, float* out, bool f16) {
  int i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, Load16(p + i, f16));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(out + i, m, Load16(p + i, m, f16));
  }
}
}  // namespace

bool WidenHalfAvx512(const uint16_t* p, int n, float* out, bool f16) {
  if (!Features().avx512) return false;
  WidenHalf(p, n, out, f16);
  return true;
}

namespace {
// x to int8 blocks as KernelInput::Prepare's scalar loop does it: amax by
// exact comparisons, the same division and reciprocal, and the products
// rounded half to even (cvtps under the default MXCSR mode, as lrintf).
LLMFLASH_AVX2 void QuantizeInput(const float* x, int n, InputBlock* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int k = 0; k < n / kQuantBlock; ++k, x += kQuantBlock) {
    __m256 v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(x + 8 * j);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float amax = _mm_cvtss_f32(h);
    const float d = amax / 127.0f, id = InputScaleInverse(d);
    out[k].d = d;
    const __m256 s = _mm256_set1_ps(id);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], s));
    const __m256i q16 = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[k].q), _mm256_permutevar8x32_epi32(q16, order));
  }
}

template <class Block>
LLMFLASH_AVX2 void WidenBlocks(const void* row, int n, float* out) {
  const auto* b = static_cast<const Block*>(row);
  for (int k = 0; k < n / kQuantBlock; ++k, out += kQuantBlock) {
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(b[k].d));
    __m256 v[4];
    Lanes8(b[k], v);
    for (int j = 0; j < 4; ++j) _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(d, v[j]));
  }
}

LLMFLASH_AVX2 void WidenHalfAvx2(const uint16_t* p, int n, float* out, bool f16) {
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, Widen8(p + i, f16));
  for (; i < n; ++i) out[i] = Load(p, i, f16);
}
}  // namespace

bool QuantizeInputAvx2(const float* x, int n, InputBlock* out) {
  if (!Features().avx2) return false;
  QuantizeInput(x, n, out);
  return true;
}

bool WidenAvx2(const void* row, DType t, int n, float* out) {
  if (!Features().avx2) return false;
  switch (t) {
    case DType::kF32: return false;
    case DType::kF16: WidenHalfAvx2(static_cast<const uint16_t*>(row), n, out, true); return true;
    case DType::kBF16: WidenHalfAvx2(static_cast<const uint16_t*>(row), n, out, false); return true;
    case DType::kQ8_0: WidenBlocks<BlockQ8_0>(row, n, out); return true;
    case DType::kQ4_0: WidenBlocks<BlockQ4_0>(row, n, out); return true;
  }
  return false;
}

#pragma GCC diagnostic pop
#else
const PathKernels* Avx2Kernels() { return nullptr; }
const PathKernels* Avx512Kernels() { return nullptr; }
bool WidenHalfAvx512(const uint16_t*, int, float*, bool) { return false; }
bool WidenAvx2(const void*, DType, int, float*) { return false; }
bool QuantizeInputAvx2(const float*, int, InputBlock*) { return false; }
#endif

}  // namespace llmflash::internal

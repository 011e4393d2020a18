// AVX2+F16C+FMA and AVX-512 (F, BW, VL) row kernels over f16/bf16 weights,
// chosen at run time by CPUID. Eight rows go through one pass so that eight
// weight streams are in flight per core; on this project's 2-core Zen 5 the
// eight-row AVX-512 product streams f16 weights ~20% faster than four rows of
// AVX2 did (docs/cost-model.md).
#include "kernels/typed_kernels_impl.h"

#include <cmath>

#include "util/half.h"

#if defined(__x86_64__)
// GCC 12's avx512fintrin.h starts conversions from _mm512_undefined_*() and
// then warns that the undefined value may be used (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace llmflash::internal {

#if defined(__x86_64__)
namespace {

inline float Load(const uint16_t* p, int i, bool f16) { return f16 ? F16ToFloat(p[i]) : Bf16ToFloat(p[i]); }

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
#define LLMFLASH_AVX2 __attribute__((target("avx2,f16c,fma")))

LLMFLASH_AVX2 inline __m256 Load8(const uint16_t* p, bool f16) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (f16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

LLMFLASH_AVX2 inline float Sum8(__m256 acc) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

template <int R>
LLMFLASH_AVX2 void DotRowsAvx2(const uint16_t* const r[R], const float* x, int n, bool f16, float* out) {
  __m256 acc[R];
  for (int k = 0; k < R; ++k) acc[k] = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    for (int k = 0; k < R; ++k) acc[k] = _mm256_fmadd_ps(Load8(r[k] + i, f16), xv, acc[k]);
  }
  for (int k = 0; k < R; ++k) {
    float sum = Sum8(acc[k]);
    for (int j = i; j < n; ++j) sum = std::fma(Load(r[k], j, f16), x[j], sum);
    out[k] = sum;
  }
}

template <int R>
LLMFLASH_AVX2 void AxpyRowsAvx2(const float a[R], const uint16_t* const r[R], int n, float* y, bool f16) {
  __m256 av[R];
  for (int k = 0; k < R; ++k) av[k] = _mm256_set1_ps(a[k]);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(y + i);
    for (int k = 0; k < R; ++k) v = _mm256_fmadd_ps(av[k], Load8(r[k] + i, f16), v);
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

template <int R>
LLMFLASH_AVX512 void DotRowsAvx512(const uint16_t* const r[R], const float* x, int n, bool f16, float* out) {
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

template <int R>
LLMFLASH_AVX512 void AxpyRowsAvx512(const float a[R], const uint16_t* const r[R], int n, float* y, bool f16) {
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

// One-row entry points share the grouped code, so a row is summed the same
// way alone or in a group.
using DotRowsFn = void (*)(const uint16_t* const*, const float*, int, bool, float*);
using AxpyRowsFn = void (*)(const float*, const uint16_t* const*, int, float*, bool);

template <DotRowsFn Rows>
float DotOne(const uint16_t* row, const float* x, int n, bool f16) {
  const uint16_t* r[1] = {row};
  float out;
  Rows(r, x, n, f16, &out);
  return out;
}

template <AxpyRowsFn Rows>
void AxpyOne(float a, const uint16_t* row, int n, float* y, bool f16) {
  const uint16_t* r[1] = {row};
  Rows(&a, r, n, y, f16);
}

const HalfKernels kAvx2 = {DotOne<DotRowsAvx2<1>>, DotRowsAvx2<kRowGroup>, AxpyOne<AxpyRowsAvx2<1>>,
                           AxpyRowsAvx2<kRowGroup>};
const HalfKernels kAvx512 = {DotOne<DotRowsAvx512<1>>, DotRowsAvx512<kRowGroup>, AxpyOne<AxpyRowsAvx512<1>>,
                             AxpyRowsAvx512<kRowGroup>};

}  // namespace

const HalfKernels* Avx2Kernels() { return Features().avx2 ? &kAvx2 : nullptr; }
const HalfKernels* Avx512Kernels() { return Features().avx512 ? &kAvx512 : nullptr; }

#pragma GCC diagnostic pop
#else
const HalfKernels* Avx2Kernels() { return nullptr; }
const HalfKernels* Avx512Kernels() { return nullptr; }
#endif

}  // namespace llmflash::internal

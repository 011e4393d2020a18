// AVX2 helpers the x86 kernel files share (typed_kernels_x86.cc,
// tile_kernels.cc). Internal to src/kernels; x86-64 only, each function
// compiled for AVX2+F16C+FMA and called only once CPUID has said so.
#ifndef LLMFLASH_KERNELS_AVX2_LANES_H_
#define LLMFLASH_KERNELS_AVX2_LANES_H_

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#define LLMFLASH_AVX2 __attribute__((target("avx2,f16c,fma")))

namespace llmflash::internal {

// Eight f16 (or bf16) values at p as f32 lanes; exact.
LLMFLASH_AVX2 inline __m256 Widen8(const uint16_t* p, bool f16) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (f16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// The eight lanes' sum, always in the same order.
LLMFLASH_AVX2 inline float Sum8(__m256 acc) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

}  // namespace llmflash::internal

#endif  // __x86_64__
#endif  // LLMFLASH_KERNELS_AVX2_LANES_H_

// f16/bf16 kernels: portable loops and an AVX2+F16C+FMA path.
#include "kernels/typed_kernels.h"

#include <Eigen/Core>
#include <cstring>

#include "util/half.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace llmflash {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline float Load(const uint16_t* p, int i, bool f16) { return f16 ? F16ToFloat(p[i]) : Bf16ToFloat(p[i]); }

float DotPortable(const uint16_t* a, const float* x, int n, bool f16) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += Load(a, i, f16) * x[i];
  return s;
}

void AxpyPortable(float a, const uint16_t* r, int n, float* y, bool f16) {
  for (int i = 0; i < n; ++i) y[i] += a * Load(r, i, f16);
}

#if defined(__x86_64__)
#define LLMFLASH_AVX2 __attribute__((target("avx2,f16c,fma")))

LLMFLASH_AVX2 inline __m256 Load8(const uint16_t* p, bool f16) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (f16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

LLMFLASH_AVX2 inline float Sum8(__m256 acc) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

LLMFLASH_AVX2 float DotAvx2(const uint16_t* a, const float* x, int n, bool f16) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(Load8(a + i, f16), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(Load8(a + i + 8, f16), _mm256_loadu_ps(x + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(Load8(a + i, f16), _mm256_loadu_ps(x + i), acc0);
  float sum = Sum8(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += Load(a, i, f16) * x[i];
  return sum;
}

// Four rows at once, sharing each load of x. Every row is summed exactly as
// DotAvx2 sums it (same accumulators, same order), so results do not depend
// on how rows are grouped.
LLMFLASH_AVX2 void Dot4RowsAvx2(const uint16_t* const r[4], const float* x, int n, bool f16,
                                float* out) {
  __m256 e[4], o[4];
  for (int k = 0; k < 4; ++k) e[k] = o[k] = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
    for (int k = 0; k < 4; ++k) {
      e[k] = _mm256_fmadd_ps(Load8(r[k] + i, f16), x0, e[k]);
      o[k] = _mm256_fmadd_ps(Load8(r[k] + i + 8, f16), x1, o[k]);
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 x0 = _mm256_loadu_ps(x + i);
    for (int k = 0; k < 4; ++k) e[k] = _mm256_fmadd_ps(Load8(r[k] + i, f16), x0, e[k]);
  }
  for (int k = 0; k < 4; ++k) {
    float sum = Sum8(_mm256_add_ps(e[k], o[k]));
    for (int j = i; j < n; ++j) sum += Load(r[k], j, f16) * x[j];
    out[k] = sum;
  }
}

LLMFLASH_AVX2 void Dot4Avx2(const uint16_t* a, size_t stride, const float* x, int n, bool f16,
                            float* out) {
  const uint16_t* r[4] = {a, a + stride, a + 2 * stride, a + 3 * stride};
  Dot4RowsAvx2(r, x, n, f16, out);
}

// y += a[0] r[0]; y += a[1] r[1]; ... in one pass over y: each element sees
// the same fused multiply-adds in the same order as four AxpyAvx2 calls.
LLMFLASH_AVX2 void Axpy4Avx2(const float a[4], const uint16_t* const r[4], int n, float* y,
                             bool f16) {
  const __m256 a0 = _mm256_set1_ps(a[0]), a1 = _mm256_set1_ps(a[1]);
  const __m256 a2 = _mm256_set1_ps(a[2]), a3 = _mm256_set1_ps(a[3]);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(y + i);
    v = _mm256_fmadd_ps(a0, Load8(r[0] + i, f16), v);
    v = _mm256_fmadd_ps(a1, Load8(r[1] + i, f16), v);
    v = _mm256_fmadd_ps(a2, Load8(r[2] + i, f16), v);
    v = _mm256_fmadd_ps(a3, Load8(r[3] + i, f16), v);
    _mm256_storeu_ps(y + i, v);
  }
  for (int k = 0; k < 4; ++k) {
    for (int j = i; j < n; ++j) y[j] += a[k] * Load(r[k], j, f16);
  }
}

LLMFLASH_AVX2 void AxpyAvx2(float a, const uint16_t* r, int n, float* y, bool f16) {
  __m256 va = _mm256_set1_ps(a);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, Load8(r + i, f16), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * Load(r, i, f16);
}

// CPUID: AVX2 (leaf 7 EBX bit 5), FMA and F16C (leaf 1 ECX bits 12, 29), and
// the OS saving YMM state (OSXSAVE, XCR0 bits 1-2). Read directly because
// not every compiler's __builtin_cpu_supports knows "f16c".
bool HasAvx2() {
  static const bool has = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool fma = c & (1u << 12), f16c = c & (1u << 29), osxsave = c & (1u << 27);
    if (!fma || !f16c || !osxsave) return false;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (b & (1u << 5)) != 0;
  }();
  return has;
}
#else
bool HasAvx2() { return false; }
float DotAvx2(const uint16_t* a, const float* x, int n, bool f16) { return DotPortable(a, x, n, f16); }
void Dot4Avx2(const uint16_t* a, size_t stride, const float* x, int n, bool f16, float* out) {
  for (int k = 0; k < 4; ++k) out[k] = DotPortable(a + k * stride, x, n, f16);
}
void AxpyAvx2(float a, const uint16_t* r, int n, float* y, bool f16) { AxpyPortable(a, r, n, y, f16); }
void Dot4RowsAvx2(const uint16_t* const r[4], const float* x, int n, bool f16, float* out) {
  for (int k = 0; k < 4; ++k) out[k] = DotPortable(r[k], x, n, f16);
}
void Axpy4Avx2(const float a[4], const uint16_t* const r[4], int n, float* y, bool f16) {
  for (int k = 0; k < 4; ++k) AxpyPortable(a[k], r[k], n, y, f16);
}
#endif

}  // namespace

const char* TypedKernelPath() { return HasAvx2() ? "avx2+f16c" : "portable"; }

void Dot4Typed(const void* const rows[4], DType t, const float* x, int n, float* out) {
  if (t == DType::kF32 || !HasAvx2()) {
    for (int k = 0; k < 4; ++k) out[k] = DotTyped(rows[k], t, x, n);
    return;
  }
  const uint16_t* r[4];
  for (int k = 0; k < 4; ++k) r[k] = static_cast<const uint16_t*>(rows[k]);
  Dot4RowsAvx2(r, x, n, t == DType::kF16, out);
}

void Axpy4Typed(const float a[4], const void* const rows[4], DType t, int n, float* y) {
  if (t == DType::kF32 || !HasAvx2()) {
    for (int k = 0; k < 4; ++k) AxpyTyped(a[k], rows[k], t, n, y);
    return;
  }
  const uint16_t* r[4];
  for (int k = 0; k < 4; ++k) r[k] = static_cast<const uint16_t*>(rows[k]);
  Axpy4Avx2(a, r, n, y, t == DType::kF16);
}

float DotTyped(const void* row, DType t, const float* x, int n) {
  if (t == DType::kF32) {
    return Eigen::Map<const Eigen::VectorXf>(static_cast<const float*>(row), n)
        .dot(Eigen::Map<const Eigen::VectorXf>(x, n));
  }
  const auto* p = static_cast<const uint16_t*>(row);
  return HasAvx2() ? DotAvx2(p, x, n, t == DType::kF16) : DotPortable(p, x, n, t == DType::kF16);
}

void AxpyTyped(float a, const void* row, DType t, int n, float* y) {
  if (t == DType::kF32) {
    Eigen::Map<Eigen::VectorXf>(y, n) += a * Eigen::Map<const Eigen::VectorXf>(static_cast<const float*>(row), n);
    return;
  }
  const auto* p = static_cast<const uint16_t*>(row);
  if (HasAvx2()) AxpyAvx2(a, p, n, y, t == DType::kF16); else AxpyPortable(a, p, n, y, t == DType::kF16);
}

void ToFloat(const void* row, DType t, int n, float* out) {
  if (t == DType::kF32) {
    std::memcpy(out, row, n * sizeof(float));
    return;
  }
  const auto* p = static_cast<const uint16_t*>(row);
  for (int i = 0; i < n; ++i) out[i] = Load(p, i, t == DType::kF16);
}

void MatVec(WeightRef w, const float* x, int rows, int cols, float* out) {
  if (w.dtype == DType::kF32) {
    Eigen::Map<Eigen::VectorXf>(out, rows).noalias() =
        Eigen::Map<const RowMat>(static_cast<const float*>(w.data), rows, cols) *
        Eigen::Map<const Eigen::VectorXf>(x, cols);
    return;
  }
  int r = 0;
  if (HasAvx2()) {
    const auto* p = static_cast<const uint16_t*>(w.data);
    for (; r + 4 <= rows; r += 4) {
      Dot4Avx2(p + static_cast<size_t>(r) * cols, cols, x, cols, w.dtype == DType::kF16, out + r);
    }
  }
  for (; r < rows; ++r) out[r] = DotTyped(w.At(static_cast<size_t>(r) * cols), w.dtype, x, cols);
}

}  // namespace llmflash

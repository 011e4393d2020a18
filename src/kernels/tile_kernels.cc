// Tile kernels: AVX-512, AVX2 and portable.
#include "kernels/tile_kernels.h"

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/typed_kernels.h"
#include "util/half.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels/avx2_lanes.h"
#endif

namespace llmflash {
namespace {

// ---- Portable: 8-lane accumulators per (row, input). ----

template <DType T>
inline float Element(const void* row, int i) {
  if constexpr (T == DType::kF32) return static_cast<const float*>(row)[i];
  if constexpr (T == DType::kF16) return F16ToFloat(static_cast<const uint16_t*>(row)[i]);
  return Bf16ToFloat(static_cast<const uint16_t*>(row)[i]);
}

template <DType T>
void DotTilePortable(const void* const rows[], int nr, const float* const xs[], int ni, int n, float* out,
                     int stride) {
  constexpr int kLanes = 8;
  float acc[kTileRows][kTileInputs][kLanes] = {};
  float w[kTileRows][kLanes];
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int r = 0; r < nr; ++r) {
      for (int j = 0; j < kLanes; ++j) w[r][j] = Element<T>(rows[r], i + j);
    }
    for (int b = 0; b < ni; ++b) {
      for (int r = 0; r < nr; ++r) {
        for (int j = 0; j < kLanes; ++j) acc[r][b][j] += w[r][j] * xs[b][i + j];
      }
    }
  }
  for (int r = 0; r < nr; ++r) {
    for (int b = 0; b < ni; ++b) {
      float s = 0;
      for (int j = 0; j < kLanes; ++j) s += acc[r][b][j];
      for (int k = i; k < n; ++k) s += Element<T>(rows[r], k) * xs[b][k];
      out[b * stride + r] += s;
    }
  }
}

template <DType T>
void AxpyTilePortable(const float* a, int a_stride, const void* const rows[], int count, int n, float* const ys[],
                      int no) {
  constexpr int kChunk = 64;
  float w[kChunk];
  for (int i = 0; i < n; i += kChunk) {
    const int m = n - i < kChunk ? n - i : kChunk;
    for (int k = 0; k < count; ++k) {
      for (int j = 0; j < m; ++j) w[j] = Element<T>(rows[k], i + j);
      for (int b = 0; b < no; ++b) {
        const float h = a[b * a_stride + k];
        if (h == 0.0f) continue;
        float* y = ys[b] + i;
        for (int j = 0; j < m; ++j) y[j] += h * w[j];
      }
    }
  }
}

#if defined(__x86_64__)
#define LLMFLASH_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))

template <DType T>
LLMFLASH_AVX512 inline __m512 Load(const void* row, int i) {
  if constexpr (T == DType::kF32) return _mm512_loadu_ps(static_cast<const float*>(row) + i);
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i));
  if constexpr (T == DType::kF16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <DType T>
LLMFLASH_AVX512 inline __m512 Load(const void* row, int i, __mmask16 m) {
  if constexpr (T == DType::kF32) return _mm512_maskz_loadu_ps(m, static_cast<const float*>(row) + i);
  const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + i);
  if constexpr (T == DType::kF16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// R rows x I inputs: R*I accumulators, each loaded row stretch used I times.
template <DType T, int R, int I>
LLMFLASH_AVX512 void DotTileAvx512(const void* const rows[], const float* const xs[], int n, float* out, int stride) {
  __m512 acc[R][I];
  for (int r = 0; r < R; ++r) {
    for (int b = 0; b < I; ++b) acc[r][b] = _mm512_setzero_ps();
  }
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 w[R];
    for (int r = 0; r < R; ++r) w[r] = Load<T>(rows[r], i);
    for (int b = 0; b < I; ++b) {
      const __m512 x = _mm512_loadu_ps(xs[b] + i);
      for (int r = 0; r < R; ++r) acc[r][b] = _mm512_fmadd_ps(w[r], x, acc[r][b]);
    }
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 w[R];
    for (int r = 0; r < R; ++r) w[r] = Load<T>(rows[r], i, m);
    for (int b = 0; b < I; ++b) {
      const __m512 x = _mm512_maskz_loadu_ps(m, xs[b] + i);
      for (int r = 0; r < R; ++r) acc[r][b] = _mm512_fmadd_ps(w[r], x, acc[r][b]);
    }
  }
  for (int b = 0; b < I; ++b) {
    for (int r = 0; r < R; ++r) out[b * stride + r] += _mm512_reduce_add_ps(acc[r][b]);
  }
}

// I outputs, `count` rows: each output stretch stays in a register while
// every row adds to it; each loaded row stretch is used I times.
template <DType T, int I>
LLMFLASH_AVX512 void AxpyTileAvx512(const float* a, int a_stride, const void* const rows[], int count, int n,
                                    float* const ys[]) {
  int i = 0;
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 y[I];
    for (int b = 0; b < I; ++b) y[b] = _mm512_maskz_loadu_ps(m, ys[b] + i);
    for (int k = 0; k < count; ++k) {
      const __m512 w = m == 0xFFFF ? Load<T>(rows[k], i) : Load<T>(rows[k], i, m);
      for (int b = 0; b < I; ++b) y[b] = _mm512_fmadd_ps(_mm512_set1_ps(a[b * a_stride + k]), w, y[b]);
    }
    for (int b = 0; b < I; ++b) _mm512_mask_storeu_ps(ys[b] + i, m, y[b]);
  }
}

template <DType T, int R>
void DotTileAvx512R(const void* const rows[], const float* const xs[], int ni, int n, float* out, int stride) {
  switch (ni) {
    case 1: return DotTileAvx512<T, R, 1>(rows, xs, n, out, stride);
    case 2: return DotTileAvx512<T, R, 2>(rows, xs, n, out, stride);
    case 3: return DotTileAvx512<T, R, 3>(rows, xs, n, out, stride);
    default: return DotTileAvx512<T, R, 4>(rows, xs, n, out, stride);
  }
}

// Four rows per pass (the shape measured on Zen 5), then the rest.
template <DType T>
void DotTileAvx512Any(const void* const rows[], int nr, const float* const xs[], int ni, int n, float* out,
                      int stride) {
  for (int r = 0; r < nr; r += 4) {
    switch (std::min(4, nr - r)) {
      case 1: DotTileAvx512R<T, 1>(rows + r, xs, ni, n, out + r, stride); break;
      case 2: DotTileAvx512R<T, 2>(rows + r, xs, ni, n, out + r, stride); break;
      case 3: DotTileAvx512R<T, 3>(rows + r, xs, ni, n, out + r, stride); break;
      default: DotTileAvx512R<T, 4>(rows + r, xs, ni, n, out + r, stride); break;
    }
  }
}

template <DType T>
void AxpyTileAvx512Any(const float* a, int a_stride, const void* const rows[], int count, int n, float* const ys[],
                       int no) {
  switch (no) {
    case 1: return AxpyTileAvx512<T, 1>(a, a_stride, rows, count, n, ys);
    case 2: return AxpyTileAvx512<T, 2>(a, a_stride, rows, count, n, ys);
    case 3: return AxpyTileAvx512<T, 3>(a, a_stride, rows, count, n, ys);
    default: return AxpyTileAvx512<T, 4>(a, a_stride, rows, count, n, ys);
  }
}
#undef LLMFLASH_AVX512

// ---- AVX2+F16C+FMA: 8-lane accumulators, three rows at a time. ----
// Sixteen ymm registers hold 3 rows x 4 inputs of accumulators and the three
// loaded row stretches (inputs are FMA memory operands); a 6 x 4 tile is two
// such passes over the same (L1-resident) input stretches. Twelve
// independent sums hide the FMA latency that eight (2 x 4) left exposed:
// ~36 against ~32 G multiply-adds/s on one Zen 3 core with hot caches.
template <DType T>
LLMFLASH_AVX2 inline __m256 Load8(const void* row, int i) {
  if constexpr (T == DType::kF32) return _mm256_loadu_ps(static_cast<const float*>(row) + i);
  return internal::Widen8(static_cast<const uint16_t*>(row) + i, T == DType::kF16);
}

using internal::Sum8;

template <DType T, int R, int I>
LLMFLASH_AVX2 void DotTileAvx2(const void* const rows[], const float* const xs[], int n, float* out, int stride) {
  __m256 acc[R][I];
  for (int r = 0; r < R; ++r) {
    for (int b = 0; b < I; ++b) acc[r][b] = _mm256_setzero_ps();
  }
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 w[R];
    for (int r = 0; r < R; ++r) w[r] = Load8<T>(rows[r], i);
    for (int b = 0; b < I; ++b) {
      const __m256 x = _mm256_loadu_ps(xs[b] + i);
      for (int r = 0; r < R; ++r) acc[r][b] = _mm256_fmadd_ps(w[r], x, acc[r][b]);
    }
  }
  for (int b = 0; b < I; ++b) {
    for (int r = 0; r < R; ++r) {
      float s = Sum8(acc[r][b]);
      for (int k = i; k < n; ++k) s += Element<T>(rows[r], k) * xs[b][k];
      out[b * stride + r] += s;
    }
  }
}

// I outputs, `count` rows, 16 elements of each output in registers while
// every row adds to them: 8 independent sums for 4 outputs. (24 elements,
// 12 sums, spilled and ran at half the speed.)
template <DType T, int I>
LLMFLASH_AVX2 void AxpyTileAvx2(const float* a, int a_stride, const void* const rows[], int count, int n,
                                float* const ys[]) {
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 y0[I], y1[I];
    for (int b = 0; b < I; ++b) {
      y0[b] = _mm256_loadu_ps(ys[b] + i);
      y1[b] = _mm256_loadu_ps(ys[b] + i + 8);
    }
    for (int k = 0; k < count; ++k) {
      const __m256 w0 = Load8<T>(rows[k], i), w1 = Load8<T>(rows[k], i + 8);
      for (int b = 0; b < I; ++b) {
        const __m256 h = _mm256_broadcast_ss(a + b * a_stride + k);
        y0[b] = _mm256_fmadd_ps(h, w0, y0[b]);
        y1[b] = _mm256_fmadd_ps(h, w1, y1[b]);
      }
    }
    for (int b = 0; b < I; ++b) {
      _mm256_storeu_ps(ys[b] + i, y0[b]);
      _mm256_storeu_ps(ys[b] + i + 8, y1[b]);
    }
  }
  for (; i < n; ++i) {
    for (int b = 0; b < I; ++b) {
      float y = ys[b][i];
      for (int k = 0; k < count; ++k) y = std::fma(a[b * a_stride + k], Element<T>(rows[k], i), y);
      ys[b][i] = y;
    }
  }
}

template <DType T, int R>
void DotTileAvx2R(const void* const rows[], const float* const xs[], int ni, int n, float* out, int stride) {
  switch (ni) {
    case 1: return DotTileAvx2<T, R, 1>(rows, xs, n, out, stride);
    case 2: return DotTileAvx2<T, R, 2>(rows, xs, n, out, stride);
    case 3: return DotTileAvx2<T, R, 3>(rows, xs, n, out, stride);
    default: return DotTileAvx2<T, R, 4>(rows, xs, n, out, stride);
  }
}

template <DType T>
void DotTileAvx2Any(const void* const rows[], int nr, const float* const xs[], int ni, int n, float* out,
                    int stride) {
  int r = 0;
  for (; nr - r >= 3; r += 3) DotTileAvx2R<T, 3>(rows + r, xs, ni, n, out + r, stride);
  if (nr - r == 2) DotTileAvx2R<T, 2>(rows + r, xs, ni, n, out + r, stride);
  if (nr - r == 1) DotTileAvx2R<T, 1>(rows + r, xs, ni, n, out + r, stride);
}

template <DType T>
void AxpyTileAvx2Any(const float* a, int a_stride, const void* const rows[], int count, int n, float* const ys[],
                     int no) {
  switch (no) {
    case 1: return AxpyTileAvx2<T, 1>(a, a_stride, rows, count, n, ys);
    case 2: return AxpyTileAvx2<T, 2>(a, a_stride, rows, count, n, ys);
    case 3: return AxpyTileAvx2<T, 3>(a, a_stride, rows, count, n, ys);
    default: return AxpyTileAvx2<T, 4>(a, a_stride, rows, count, n, ys);
  }
}
#endif

template <DType T>
void DotTileFor(const void* const rows[], int nr, const float* const xs[], int ni, int n, float* out, int stride) {
#if defined(__x86_64__)
  switch (CurrentKernelPath()) {
    case KernelPath::kAvx512: return DotTileAvx512Any<T>(rows, nr, xs, ni, n, out, stride);
    case KernelPath::kAvx2: return DotTileAvx2Any<T>(rows, nr, xs, ni, n, out, stride);
    case KernelPath::kPortable:
    case KernelPath::kNeon: break;
  }
#endif
  DotTilePortable<T>(rows, nr, xs, ni, n, out, stride);
}

template <DType T>
void AxpyTileFor(const float* a, int a_stride, const void* const rows[], int count, int n, float* const ys[], int no) {
#if defined(__x86_64__)
  switch (CurrentKernelPath()) {
    case KernelPath::kAvx512: return AxpyTileAvx512Any<T>(a, a_stride, rows, count, n, ys, no);
    case KernelPath::kAvx2: return AxpyTileAvx2Any<T>(a, a_stride, rows, count, n, ys, no);
    case KernelPath::kPortable:
    case KernelPath::kNeon: break;
  }
#endif
  AxpyTilePortable<T>(a, a_stride, rows, count, n, ys, no);
}

}  // namespace

void DotTile(DType t, const void* const rows[], int n_rows, const float* const xs[], int n_inputs, int n, float* out,
             int out_stride) {
  switch (t) {
    case DType::kF32: return DotTileFor<DType::kF32>(rows, n_rows, xs, n_inputs, n, out, out_stride);
    case DType::kF16: return DotTileFor<DType::kF16>(rows, n_rows, xs, n_inputs, n, out, out_stride);
    case DType::kBF16: return DotTileFor<DType::kBF16>(rows, n_rows, xs, n_inputs, n, out, out_stride);
    case DType::kQ8_0:
    case DType::kQ4_0:
      return;  // no tiles: HasTiles() is false, callers use the row kernels
  }
}

// Tiles of rows x inputs over stretches of depth: each input's stretch
// stays in L2 while every row tile passes over it, and each row tile's
// stretch in L1 while every input passes over it. (A GEMM micro-kernel
// with the inputs in the vector lanes, 8 rows x 32 inputs in registers,
// measured slower here: 22 against 26 G multiply-adds/s on one thread.)
template <DType T>
void GemmRowsFor(const void* const rows[], int nrows, const float* x, int n, int cols, float* out, int out_stride) {
  for (int b = 0; b < n; ++b) std::fill_n(out + static_cast<size_t>(b) * out_stride, nrows, 0.0f);
  const size_t elem = RowBytes(T, 1);
  for (int k = 0; k < cols; k += kTileDepth) {
    const int depth = std::min(kTileDepth, cols - k);
    for (int b = 0; b < n; b += kTileInputs) {
      const int ni = std::min(kTileInputs, n - b);
      const float* xp[kTileInputs];
      for (int j = 0; j < ni; ++j) xp[j] = x + static_cast<size_t>(b + j) * cols + k;
      for (int r = 0; r < nrows; r += kTileRows) {
        const int nr = std::min(kTileRows, nrows - r);
        const void* rp[kTileRows];
        for (int j = 0; j < nr; ++j) rp[j] = static_cast<const char*>(rows[r + j]) + k * elem;
        DotTileFor<T>(rp, nr, xp, ni, depth, out + static_cast<size_t>(b) * out_stride + r, out_stride);
      }
    }
  }
}

void GemmRows(DType t, const void* const rows[], int nrows, const float* x, int n, int cols, float* out,
              int out_stride) {
  switch (t) {
    case DType::kF32: return GemmRowsFor<DType::kF32>(rows, nrows, x, n, cols, out, out_stride);
    case DType::kF16: return GemmRowsFor<DType::kF16>(rows, nrows, x, n, cols, out, out_stride);
    case DType::kBF16: return GemmRowsFor<DType::kBF16>(rows, nrows, x, n, cols, out, out_stride);
    case DType::kQ8_0:
    case DType::kQ4_0:
      return;  // no tiles: HasTiles() is false
  }
}

void AxpyTile(DType t, const float* a, int a_stride, const void* const rows[], int count, int n, float* const ys[],
              int n_outputs) {
  switch (t) {
    case DType::kF32: return AxpyTileFor<DType::kF32>(a, a_stride, rows, count, n, ys, n_outputs);
    case DType::kF16: return AxpyTileFor<DType::kF16>(a, a_stride, rows, count, n, ys, n_outputs);
    case DType::kBF16: return AxpyTileFor<DType::kBF16>(a, a_stride, rows, count, n, ys, n_outputs);
    case DType::kQ8_0:
    case DType::kQ4_0:
      return;
  }
}

}  // namespace llmflash

#pragma GCC diagnostic pop

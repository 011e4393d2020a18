// The portable row kernels, the choice of code path, and the public entry
// points (typed_kernels.h). The SIMD paths are in typed_kernels_x86.cc and
// typed_kernels_neon.cc.
#include "kernels/typed_kernels.h"

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "kernels/tile_kernels.h"
#include "kernels/typed_kernels_impl.h"
#include "util/half.h"

namespace llmflash {
namespace {

using internal::PathKernels;
using internal::RowKernels;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ---- Portable loops. Quantized rows: per block, the integer dot product
// of q with x's int8 block, times d_row * d_x (q - 8 for q4_0). ----

// Element j of a q4_0 block as its level in [-8, 7] (the block's layout:
// util/dtype.h).
inline int Q4Level(const BlockQ4_0& b, int j) {
  return (j < kQuantBlock / 2 ? b.q[j] & 0xF : b.q[j - kQuantBlock / 2] >> 4) - 8;
}

template <DType T>
float DotPortable(const void* row, const void* xv, int n) {
  float s = 0;
  if constexpr (T == DType::kF16 || T == DType::kBF16) {
    const auto* p = static_cast<const uint16_t*>(row);
    const auto* x = static_cast<const float*>(xv);
    for (int i = 0; i < n; ++i) s += (T == DType::kF16 ? F16ToFloat(p[i]) : Bf16ToFloat(p[i])) * x[i];
  } else if constexpr (T == DType::kQ8_0) {
    const auto* b = static_cast<const BlockQ8_0*>(row);
    const auto* x = static_cast<const InputBlock*>(xv);
    for (int k = 0; k < n / kQuantBlock; ++k) {
      int32_t bs = 0;
      for (int j = 0; j < kQuantBlock; ++j) bs += b[k].q[j] * x[k].q[j];
      s += F16ToFloat(b[k].d) * x[k].d * static_cast<float>(bs);
    }
  } else {
    static_assert(T == DType::kQ4_0);
    const auto* b = static_cast<const BlockQ4_0*>(row);
    const auto* x = static_cast<const InputBlock*>(xv);
    for (int k = 0; k < n / kQuantBlock; ++k) {
      int32_t bs = 0;
      for (int j = 0; j < kQuantBlock; ++j) bs += Q4Level(b[k], j) * x[k].q[j];
      s += F16ToFloat(b[k].d) * x[k].d * static_cast<float>(bs);
    }
  }
  return s;
}

template <DType T>
void AxpyPortable(float a, const void* row, int n, float* y) {
  if constexpr (T == DType::kF16 || T == DType::kBF16) {
    const auto* p = static_cast<const uint16_t*>(row);
    for (int i = 0; i < n; ++i) y[i] += a * (T == DType::kF16 ? F16ToFloat(p[i]) : Bf16ToFloat(p[i]));
  } else if constexpr (T == DType::kQ8_0) {
    const auto* b = static_cast<const BlockQ8_0*>(row);
    for (int k = 0; k < n / kQuantBlock; ++k, y += kQuantBlock) {
      const float ad = a * F16ToFloat(b[k].d);
      for (int j = 0; j < kQuantBlock; ++j) y[j] += ad * b[k].q[j];
    }
  } else {
    static_assert(T == DType::kQ4_0);
    const auto* b = static_cast<const BlockQ4_0*>(row);
    for (int k = 0; k < n / kQuantBlock; ++k, y += kQuantBlock) {
      const float ad = a * F16ToFloat(b[k].d);
      for (int j = 0; j < kQuantBlock; ++j) y[j] += ad * Q4Level(b[k], j);
    }
  }
}

template <DType T>
void DotRowsPortable(const void* const r[kRowGroup], const void* x, int n, float* out) {
  for (int k = 0; k < kRowGroup; ++k) out[k] = DotPortable<T>(r[k], x, n);
}

template <DType T>
void AxpyRowsPortable(const float a[kRowGroup], const void* const r[kRowGroup], int n, float* y) {
  for (int k = 0; k < kRowGroup; ++k) AxpyPortable<T>(a[k], r[k], n, y);
}

template <DType T>
constexpr RowKernels Portable() {
  return {DotPortable<T>, DotRowsPortable<T>, AxpyPortable<T>, AxpyRowsPortable<T>,
          internal::DotTileOfRows<DotPortable<T>>, internal::AxpyTileOfRows<AxpyPortable<T>>};
}

const PathKernels kPortable = {Portable<DType::kF16>(), Portable<DType::kBF16>(), Portable<DType::kQ8_0>(),
                               Portable<DType::kQ4_0>()};

// ---- f32: Eigen on every path. ----

float DotF32(const void* row, const void* x, int n) {
  return Eigen::Map<const Eigen::VectorXf>(static_cast<const float*>(row), n)
      .dot(Eigen::Map<const Eigen::VectorXf>(static_cast<const float*>(x), n));
}
void DotRowsF32(const void* const r[kRowGroup], const void* x, int n, float* out) {
  for (int k = 0; k < kRowGroup; ++k) out[k] = DotF32(r[k], x, n);
}
void AxpyF32(float a, const void* row, int n, float* y) {
  Eigen::Map<Eigen::VectorXf>(y, n) += a * Eigen::Map<const Eigen::VectorXf>(static_cast<const float*>(row), n);
}
void AxpyRowsF32(const float a[kRowGroup], const void* const r[kRowGroup], int n, float* y) {
  for (int k = 0; k < kRowGroup; ++k) AxpyF32(a[k], r[k], n, y);
}
const RowKernels kF32 = {DotF32, DotRowsF32, AxpyF32, AxpyRowsF32, internal::DotTileOfRows<DotF32>,
                         internal::AxpyTileOfRows<AxpyF32>};

// ---- The path in use. ----

const PathKernels* TableFor(KernelPath p) {
  switch (p) {
    case KernelPath::kAvx512: return internal::Avx512Kernels();
    case KernelPath::kAvx2: return internal::Avx2Kernels();
    case KernelPath::kNeon: return internal::NeonKernels();
    case KernelPath::kPortable: return &kPortable;
  }
  return &kPortable;  // unreachable: every enumerator is handled above
}

std::atomic<const PathKernels*> g_kernels{nullptr};

const PathKernels& Kernels() {
  const PathKernels* k = g_kernels.load(std::memory_order_acquire);
  if (k == nullptr) {
    k = TableFor(BestKernelPath());
    g_kernels.store(k, std::memory_order_release);
  }
  return *k;
}

const RowKernels& For(DType t) {
  switch (t) {
    case DType::kF32: return kF32;
    case DType::kF16: return Kernels().f16;
    case DType::kBF16: return Kernels().bf16;
    case DType::kQ8_0: return Kernels().q8_0;
    case DType::kQ4_0: return Kernels().q4_0;
  }
  return kF32;  // unreachable: every enumerator is handled above
}

// Each thread's own prepared input for the one-off products (DotTyped).
KernelInput& ScratchInput() {
  thread_local KernelInput in;
  return in;
}

}  // namespace

namespace internal {
const PathKernels& PortableKernels() { return kPortable; }
}  // namespace internal

void KernelInput::Prepare(DType t, const float* x, int n) {
  x_ = x;
  quantized_ = Traits(t).quantized;
  if (!quantized_) return;
  blocks_.resize(static_cast<size_t>(n) / kQuantBlock);
  const KernelPath path = CurrentKernelPath();
  if ((path == KernelPath::kAvx2 || path == KernelPath::kAvx512) && internal::QuantizeInputAvx2(x, n, blocks_.data())) {
    return;
  }
  for (size_t k = 0; k < blocks_.size(); ++k, x += kQuantBlock) {
    float amax = 0;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = internal::InputScaleInverse(d);
    blocks_[k].d = d;
    for (int j = 0; j < kQuantBlock; ++j) blocks_[k].q[j] = static_cast<int8_t>(std::lrintf(x[j] * id));
  }
}

float DotPrepared(const void* row, DType t, const KernelInput& in, int n) { return For(t).dot(row, in.data(), n); }

void DotRowsPrepared(const void* const rows[kRowGroup], DType t, const KernelInput& in, int n, float* out) {
  For(t).dot_rows(rows, in.data(), n, out);
}

void AxpyTileTyped(const float* a, int a_stride, const void* const rows[], int count, DType t, int n,
                   float* const ys[], int n_outputs) {
  For(t).axpy_tile(a, a_stride, rows, count, n, ys, n_outputs);
}

void DotTilePrepared(const void* const rows[], int nr, DType t, const KernelInput* const inputs[], int ni, int n,
                     float* out, int out_stride) {
  const void* xs[kTileInputs];
  for (int b = 0; b < ni; ++b) xs[b] = inputs[b]->data();
  For(t).dot_tile(rows, nr, xs, ni, n, out, out_stride);
}

KernelPath BestKernelPath() {
  if (internal::Avx512Kernels() != nullptr) return KernelPath::kAvx512;
  if (internal::Avx2Kernels() != nullptr) return KernelPath::kAvx2;
  if (internal::NeonKernels() != nullptr) return KernelPath::kNeon;
  return KernelPath::kPortable;
}

bool KernelPathAvailable(KernelPath p) { return TableFor(p) != nullptr; }

bool UseKernelPath(KernelPath p) {
  const PathKernels* k = TableFor(p);
  if (k == nullptr) return false;
  g_kernels.store(k, std::memory_order_release);
  return true;
}

KernelPath CurrentKernelPath() {
  const PathKernels* k = &Kernels();
  for (KernelPath p : {KernelPath::kAvx512, KernelPath::kAvx2, KernelPath::kNeon}) {
    if (k == TableFor(p)) return p;
  }
  return KernelPath::kPortable;
}

const char* KernelPathName(KernelPath p) {
  switch (p) {
    case KernelPath::kAvx512: return "avx512";
    case KernelPath::kAvx2: return "avx2+f16c";
    case KernelPath::kNeon: return "neon";
    case KernelPath::kPortable: return "portable";
  }
  return "portable";  // unreachable: every enumerator is handled above
}

const char* TypedKernelPath() { return KernelPathName(CurrentKernelPath()); }

void DotRowsTyped(const void* const rows[kRowGroup], DType t, const float* x, int n, float* out) {
  KernelInput& in = ScratchInput();
  in.Prepare(t, x, n);
  For(t).dot_rows(rows, in.data(), n, out);
}

void AxpyRowsTyped(const float a[kRowGroup], const void* const rows[kRowGroup], DType t, int n, float* y) {
  For(t).axpy_rows(a, rows, n, y);
}

float DotTyped(const void* row, DType t, const float* x, int n) {
  KernelInput& in = ScratchInput();
  in.Prepare(t, x, n);
  return For(t).dot(row, in.data(), n);
}

void AxpyTyped(float a, const void* row, DType t, int n, float* y) { For(t).axpy(a, row, n, y); }

void ToFloat(const void* row, DType t, int n, float* out) {
  const bool half = t == DType::kF16 || t == DType::kBF16;
  switch (CurrentKernelPath()) {
    case KernelPath::kAvx512:
      if (half && internal::WidenHalfAvx512(static_cast<const uint16_t*>(row), n, out, t == DType::kF16)) return;
      [[fallthrough]];
    case KernelPath::kAvx2:
      if (internal::WidenAvx2(row, t, n, out)) return;
      break;
    case KernelPath::kPortable:
    case KernelPath::kNeon: break;
  }
  switch (t) {
    case DType::kF32:
      std::memcpy(out, row, n * sizeof(float));
      return;
    case DType::kF16:
    case DType::kBF16: {
      const auto* p = static_cast<const uint16_t*>(row);
      for (int i = 0; i < n; ++i) out[i] = t == DType::kF16 ? F16ToFloat(p[i]) : Bf16ToFloat(p[i]);
      return;
    }
    case DType::kQ8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(row);
      for (int k = 0; k < n / kQuantBlock; ++k, out += kQuantBlock) {
        const float d = F16ToFloat(b[k].d);
        for (int j = 0; j < kQuantBlock; ++j) out[j] = d * b[k].q[j];
      }
      return;
    }
    case DType::kQ4_0: {
      const auto* b = static_cast<const BlockQ4_0*>(row);
      for (int k = 0; k < n / kQuantBlock; ++k, out += kQuantBlock) {
        const float d = F16ToFloat(b[k].d);
        for (int j = 0; j < kQuantBlock; ++j) out[j] = d * Q4Level(b[k], j);
      }
      return;
    }
  }
}

namespace {

// out[b * out_stride + r] = W[r] . inputs[b] with the row kernels, a group of
// rows staying in cache while every input passes over it: each product is
// what one row and one input give alone.
void RowsTimesInputs(WeightRef w, const KernelInput* inputs, int n, int rows, int cols, float* out, int out_stride) {
  const RowKernels& k = For(w.dtype);
  const uint64_t row_bytes = RowBytes(w.dtype, cols);
  const char* p = static_cast<const char*>(w.data);
  int r = 0;
  for (; r + kRowGroup <= rows; r += kRowGroup) {
    const void* group[kRowGroup];
    for (int j = 0; j < kRowGroup; ++j) group[j] = p + static_cast<uint64_t>(r + j) * row_bytes;
    for (int b = 0; b < n; ++b) k.dot_rows(group, inputs[b].data(), cols, out + static_cast<size_t>(b) * out_stride + r);
  }
  for (; r < rows; ++r) {
    const void* row = p + static_cast<uint64_t>(r) * row_bytes;
    for (int b = 0; b < n; ++b) out[static_cast<size_t>(b) * out_stride + r] = k.dot(row, inputs[b].data(), cols);
  }
}

}  // namespace

void MatVec(WeightRef w, const float* x, int rows, int cols, float* out) {
  if (w.dtype == DType::kF32) {  // Eigen's blocked product beats row groups for f32
    Eigen::Map<Eigen::VectorXf>(out, rows).noalias() =
        Eigen::Map<const RowMat>(static_cast<const float*>(w.data), rows, cols) *
        Eigen::Map<const Eigen::VectorXf>(x, cols);
    return;
  }
  KernelInput& in = ScratchInput();
  in.Prepare(w.dtype, x, cols);
  RowsTimesInputs(w, &in, 1, rows, cols, out, rows);
}

}  // namespace llmflash

namespace llmflash {

void MatMul(WeightRef w, const float* x, int n, int rows, int cols, float* out, int out_stride) {
  if (n == 1 && out_stride >= rows) {
    MatVec(w, x, rows, cols, out);
    return;
  }
  if (HasTiles(w.dtype) && n >= kPanelMinBatch) {
    // A matrix product whose loaded row elements serve many inputs (the FMA
    // units' rate, not the rows' streaming rate), in blocks of rows.
    const uint64_t row_bytes = RowBytes(w.dtype, cols);
    const char* p = static_cast<const char*>(w.data);
    constexpr int kBlock = 64;  // rows whose stretches stay in L2
    const void* rp[kBlock];
    for (int r = 0; r < rows; r += kBlock) {
      const int m = std::min(kBlock, rows - r);
      for (int j = 0; j < m; ++j) rp[j] = p + static_cast<uint64_t>(r + j) * row_bytes;
      GemmRows(w.dtype, rp, m, x, n, cols, out + r, out_stride);
    }
    return;
  }
  if (Traits(w.dtype).quantized && n >= kPanelMinBatch) {
    // Tiles of rows x inputs over whole rows: each decoded weight block
    // serves kTileInputs inputs, and each product keeps MatVec's bits.
    thread_local std::vector<KernelInput> inputs;
    if (inputs.size() < static_cast<size_t>(n)) inputs.resize(n);
    for (int b = 0; b < n; ++b) inputs[b].Prepare(w.dtype, x + static_cast<size_t>(b) * cols, cols);
    const uint64_t row_bytes = RowBytes(w.dtype, cols);
    const char* p = static_cast<const char*>(w.data);
    constexpr int kBlock = 32;  // rows in L2 while every input passes over them
    for (int r0 = 0; r0 < rows; r0 += kBlock) {
      const int m = std::min(kBlock, rows - r0);
      for (int b0 = 0; b0 < n; b0 += kTileInputs) {
        const int nb = std::min(kTileInputs, n - b0);
        const KernelInput* ip[kTileInputs];
        for (int b = 0; b < nb; ++b) ip[b] = &inputs[b0 + b];
        for (int r = r0; r < r0 + m; r += kTileRows) {
          const int nr = std::min(kTileRows, r0 + m - r);
          const void* rp[kTileRows];
          for (int j = 0; j < nr; ++j) rp[j] = p + static_cast<uint64_t>(r + j) * row_bytes;
          DotTilePrepared(rp, nr, w.dtype, ip, nb, cols, out + static_cast<size_t>(b0) * out_stride + r, out_stride);
        }
      }
    }
    return;
  }
  if (w.dtype == DType::kF32) {
    using Out = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
    Out(out, n, rows, Eigen::OuterStride<>(out_stride)).noalias() =
        Eigen::Map<const RowMat>(x, n, cols) *
        Eigen::Map<const RowMat>(static_cast<const float*>(w.data), rows, cols).transpose();
    return;
  }
  thread_local std::vector<KernelInput> inputs;
  if (inputs.size() < static_cast<size_t>(n)) inputs.resize(n);
  for (int b = 0; b < n; ++b) inputs[b].Prepare(w.dtype, x + static_cast<size_t>(b) * cols, cols);
  RowsTimesInputs(w, inputs.data(), n, rows, cols, out, out_stride);
}

}  // namespace llmflash

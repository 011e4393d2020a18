// f16/bf16 kernels: the portable loops, the choice of code path, and the
// public entry points (typed_kernels.h). The SIMD paths are in
// typed_kernels_x86.cc.
#include "kernels/typed_kernels.h"

#include <Eigen/Core>
#include <atomic>
#include <cstring>

#include "kernels/typed_kernels_impl.h"
#include "util/half.h"

namespace llmflash {
namespace {

using internal::HalfKernels;
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline float Load(const uint16_t* p, int i, bool f16) { return f16 ? F16ToFloat(p[i]) : Bf16ToFloat(p[i]); }

float DotPortable(const uint16_t* a, const float* x, int n, bool f16) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += Load(a, i, f16) * x[i];
  return s;
}

void DotRowsPortable(const uint16_t* const r[kRowGroup], const float* x, int n, bool f16, float* out) {
  for (int k = 0; k < kRowGroup; ++k) out[k] = DotPortable(r[k], x, n, f16);
}

void AxpyPortable(float a, const uint16_t* r, int n, float* y, bool f16) {
  for (int i = 0; i < n; ++i) y[i] += a * Load(r, i, f16);
}

void AxpyRowsPortable(const float a[kRowGroup], const uint16_t* const r[kRowGroup], int n, float* y,
                      bool f16) {
  for (int k = 0; k < kRowGroup; ++k) AxpyPortable(a[k], r[k], n, y, f16);
}

const HalfKernels kPortable = {DotPortable, DotRowsPortable, AxpyPortable, AxpyRowsPortable};

const HalfKernels* TableFor(KernelPath p) {
  switch (p) {
    case KernelPath::kAvx512: return internal::Avx512Kernels();
    case KernelPath::kAvx2: return internal::Avx2Kernels();
    case KernelPath::kPortable: return &kPortable;
  }
  return &kPortable;
}

std::atomic<const HalfKernels*> g_kernels{nullptr};

const HalfKernels& Kernels() {
  const HalfKernels* k = g_kernels.load(std::memory_order_acquire);
  if (k == nullptr) {
    k = TableFor(BestKernelPath());
    g_kernels.store(k, std::memory_order_release);
  }
  return *k;
}

bool Is16Bit(DType t) { return t == DType::kF16 || t == DType::kBF16; }

}  // namespace

KernelPath BestKernelPath() {
  if (internal::Avx512Kernels() != nullptr) return KernelPath::kAvx512;
  if (internal::Avx2Kernels() != nullptr) return KernelPath::kAvx2;
  return KernelPath::kPortable;
}

bool KernelPathAvailable(KernelPath p) { return TableFor(p) != nullptr; }

bool UseKernelPath(KernelPath p) {
  const HalfKernels* k = TableFor(p);
  if (k == nullptr) return false;
  g_kernels.store(k, std::memory_order_release);
  return true;
}

KernelPath CurrentKernelPath() {
  const HalfKernels* k = &Kernels();
  if (k == internal::Avx512Kernels()) return KernelPath::kAvx512;
  if (k == internal::Avx2Kernels()) return KernelPath::kAvx2;
  return KernelPath::kPortable;
}

const char* KernelPathName(KernelPath p) {
  switch (p) {
    case KernelPath::kAvx512: return "avx512";
    case KernelPath::kAvx2: return "avx2+f16c";
    case KernelPath::kPortable: return "portable";
  }
  return "portable";
}

const char* TypedKernelPath() { return KernelPathName(CurrentKernelPath()); }

void DotRowsTyped(const void* const rows[kRowGroup], DType t, const float* x, int n, float* out) {
  if (!Is16Bit(t)) {
    for (int k = 0; k < kRowGroup; ++k) out[k] = DotTyped(rows[k], t, x, n);
    return;
  }
  const uint16_t* r[kRowGroup];
  for (int k = 0; k < kRowGroup; ++k) r[k] = static_cast<const uint16_t*>(rows[k]);
  Kernels().dot_rows(r, x, n, t == DType::kF16, out);
}

void AxpyRowsTyped(const float a[kRowGroup], const void* const rows[kRowGroup], DType t, int n, float* y) {
  if (!Is16Bit(t)) {
    for (int k = 0; k < kRowGroup; ++k) AxpyTyped(a[k], rows[k], t, n, y);
    return;
  }
  const uint16_t* r[kRowGroup];
  for (int k = 0; k < kRowGroup; ++k) r[k] = static_cast<const uint16_t*>(rows[k]);
  Kernels().axpy_rows(a, r, n, y, t == DType::kF16);
}

float DotTyped(const void* row, DType t, const float* x, int n) {
  if (!Is16Bit(t)) {
    return Eigen::Map<const Eigen::VectorXf>(static_cast<const float*>(row), n)
        .dot(Eigen::Map<const Eigen::VectorXf>(x, n));
  }
  return Kernels().dot(static_cast<const uint16_t*>(row), x, n, t == DType::kF16);
}

void AxpyTyped(float a, const void* row, DType t, int n, float* y) {
  if (!Is16Bit(t)) {
    Eigen::Map<Eigen::VectorXf>(y, n) += a * Eigen::Map<const Eigen::VectorXf>(static_cast<const float*>(row), n);
    return;
  }
  Kernels().axpy(a, static_cast<const uint16_t*>(row), n, y, t == DType::kF16);
}

void ToFloat(const void* row, DType t, int n, float* out) {
  if (!Is16Bit(t)) {
    std::memcpy(out, row, n * sizeof(float));
    return;
  }
  const auto* p = static_cast<const uint16_t*>(row);
  for (int i = 0; i < n; ++i) out[i] = Load(p, i, t == DType::kF16);
}

void MatVec(WeightRef w, const float* x, int rows, int cols, float* out) {
  if (!Is16Bit(w.dtype)) {
    Eigen::Map<Eigen::VectorXf>(out, rows).noalias() =
        Eigen::Map<const RowMat>(static_cast<const float*>(w.data), rows, cols) *
        Eigen::Map<const Eigen::VectorXf>(x, cols);
    return;
  }
  const HalfKernels& k = Kernels();
  const bool f16 = w.dtype == DType::kF16;
  const auto* p = static_cast<const uint16_t*>(w.data);
  int r = 0;
  for (; r + kRowGroup <= rows; r += kRowGroup) {
    const uint16_t* group[kRowGroup];
    for (int j = 0; j < kRowGroup; ++j) group[j] = p + static_cast<size_t>(r + j) * cols;
    k.dot_rows(group, x, cols, f16, out + r);
  }
  for (; r < rows; ++r) out[r] = k.dot(p + static_cast<size_t>(r) * cols, x, cols, f16);
}

}  // namespace llmflash

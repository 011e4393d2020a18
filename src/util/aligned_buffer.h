// AlignedBuffer: a fixed-size, zeroed heap block aligned for O_DIRECT and SIMD.
//
// Allocation happens once, in the constructor or Allocate(); the buffer is
// never resized afterwards, which is what lets the neuron matrix promise no
// reallocation per token. Not thread-safe.
#ifndef LLMFLASH_UTIL_ALIGNED_BUFFER_H_
#define LLMFLASH_UTIL_ALIGNED_BUFFER_H_

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace llmflash {

inline constexpr size_t kDirectIoAlignment = 4096;

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }

  // Returns false when the allocation fails (the caller reports it).
  bool Allocate(size_t size, size_t alignment = kDirectIoAlignment) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    if (size == 0) return true;
    size_t rounded = (size + alignment - 1) / alignment * alignment;
    data_ = static_cast<char*>(std::aligned_alloc(alignment, rounded));
    if (data_ == nullptr) return false;
    std::memset(data_, 0, rounded);
    size_ = size;
    return true;
  }

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  template <typename T>
  T* as() { return reinterpret_cast<T*>(data_); }
  template <typename T>
  const T* as() const { return reinterpret_cast<const T*>(data_); }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_ALIGNED_BUFFER_H_

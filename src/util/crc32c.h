// CRC-32C (Castagnoli), the checksum of every file in a model directory.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked at run
// time), a table otherwise; both give identical results. Thread-safe.
#ifndef LLMFLASH_UTIL_CRC32C_H_
#define LLMFLASH_UTIL_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace llmflash {

// Extends `crc` (0 for a fresh checksum) with `n` bytes at `data`.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(const void* data, size_t n) {
  return Crc32cExtend(0, data, n);
}

// The portable path, exposed so tests can compare it with the fast one.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t n);

}  // namespace llmflash

#endif  // LLMFLASH_UTIL_CRC32C_H_

// Splitting read requests into aligned direct reads and staged reads.
#include "io/read_pieces.h"

#include <algorithm>

namespace llmflash {

static bool Aligned(uint64_t x) { return x % kIoAlignment == 0; }

std::vector<ReadPiece> SplitIntoPieces(std::span<const ReadRequest> requests,
                                       const IoOptions& options) {
  std::vector<ReadPiece> pieces;
  const uint64_t max_staged = options.bounce_bytes - 2 * kIoAlignment;
  for (const ReadRequest& r : requests) {
    char* dst = static_cast<char*>(r.dst);
    bool direct = !options.direct_io ||
                  (Aligned(r.offset) && Aligned(r.length) &&
                   Aligned(reinterpret_cast<uintptr_t>(dst)));
    uint64_t chunk = direct ? options.max_read_bytes : max_staged;
    for (uint64_t pos = 0; pos < r.length; pos += chunk) {
      ReadPiece p;
      p.offset = r.offset + pos;
      p.length = std::min(chunk, r.length - pos);
      p.dst = dst + pos;
      p.staged = !direct;
      if (p.staged) {
        p.read_offset = p.offset / kIoAlignment * kIoAlignment;
        uint64_t end = (p.offset + p.length + kIoAlignment - 1) / kIoAlignment * kIoAlignment;
        p.read_length = end - p.read_offset;
      } else {
        p.read_offset = p.offset;
        p.read_length = p.length;
      }
      pieces.push_back(p);
    }
  }
  return pieces;
}

}  // namespace llmflash

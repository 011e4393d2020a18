// Splitting read requests into aligned direct reads and coalesced staged reads.
#include "io/read_pieces.h"

#include <algorithm>

namespace llmflash {
namespace {

bool Aligned(uint64_t x) { return x % kIoAlignment == 0; }
uint64_t Down(uint64_t x) { return x / kIoAlignment * kIoAlignment; }
uint64_t Up(uint64_t x) { return (x + kIoAlignment - 1) / kIoAlignment * kIoAlignment; }

// Adds a staged copy, extending the last staged piece when its span touches
// this one and the union still fits a staging buffer.
void AddStaged(const CopyOut& c, const IoOptions& o, PiecePlan* plan, int64_t* open) {
  const uint64_t start = Down(c.offset), end = Up(c.offset + c.length);
  ReadPiece* p = *open >= 0 ? &plan->pieces[*open] : nullptr;
  if (p != nullptr && start >= p->read_offset && start <= p->read_offset + p->read_length &&
      std::max(end, p->read_offset + p->read_length) - p->read_offset <= o.bounce_bytes &&
      p->first_copy + p->n_copies == plan->copies.size()) {
    p->read_length = std::max(end, p->read_offset + p->read_length) - p->read_offset;
    p->needed = std::max(p->needed, c.offset + c.length - p->read_offset);
    plan->copies.push_back(c);
    ++p->n_copies;
    return;
  }
  ReadPiece n;
  n.staged = true;
  n.read_offset = start;
  n.read_length = end - start;
  n.needed = c.offset + c.length - start;
  n.first_copy = static_cast<uint32_t>(plan->copies.size());
  n.n_copies = 1;
  plan->copies.push_back(c);
  plan->pieces.push_back(n);
  *open = static_cast<int64_t>(plan->pieces.size()) - 1;
}

}  // namespace

void PlanPieces(std::span<const ReadRequest> requests, const IoOptions& o, PiecePlan* plan) {
  plan->pieces.clear();
  plan->copies.clear();
  plan->wanted_bytes = 0;
  plan->pieces.reserve(requests.size() * 2);
  plan->copies.reserve(requests.size() * 2);
  int64_t open = -1;  // the staged piece that may still grow
  const uint64_t max_staged = o.bounce_bytes - 2 * kIoAlignment;
  for (const ReadRequest& r : requests) {
    plan->wanted_bytes += r.length;
    char* dst = static_cast<char*>(r.dst);
    bool direct = !o.direct_io || (Aligned(r.offset) && Aligned(r.length) &&
                                   Aligned(reinterpret_cast<uintptr_t>(dst)));
    uint64_t chunk = direct ? o.max_read_bytes : max_staged;
    for (uint64_t pos = 0; pos < r.length; pos += chunk) {
      uint64_t len = std::min(chunk, r.length - pos);
      if (direct) {
        ReadPiece p;
        p.dst = dst + pos;
        p.read_offset = r.offset + pos;
        p.read_length = p.needed = len;
        plan->pieces.push_back(p);
        open = -1;
      } else {
        AddStaged({r.offset + pos, len, dst + pos}, o, plan, &open);
      }
    }
  }
}

}  // namespace llmflash

// llama2.c-compatible BPE: code points, byte fallback, heap-driven merges.
#include "model/tokenizer.h"

#include <cstdio>
#include <queue>

namespace llmflash {

StatusOr<Llama2cTokenizer> Llama2cTokenizer::Create(Llama2cVocab vocab, int bos_id,
                                                    int eos_id) {
  int n = static_cast<int>(vocab.pieces.size());
  if (bos_id < 0 || bos_id >= n || eos_id < 0 || eos_id >= n) {
    return Status::InvalidArgument("tokenizer: BOS/EOS ids outside the vocabulary");
  }
  Llama2cTokenizer t;
  t.vocab_ = std::move(vocab);
  t.bos_id_ = bos_id;
  t.eos_id_ = eos_id;
  t.byte_token_.assign(256, -1);
  for (int i = 0; i < n; ++i) {
    const std::string& p = t.vocab_.pieces[i];
    t.index_.emplace(p, i);  // first occurrence wins
    unsigned b;
    if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%02X>", &b) == 1 && t.byte_token_[b] < 0) {
      t.byte_token_[b] = i;
    }
  }
  return t;
}

int Llama2cTokenizer::Lookup(std::string_view s) const {
  auto it = index_.find(s);
  return it == index_.end() ? -1 : it->second;
}

std::vector<int> Llama2cTokenizer::Encode(std::string_view text, bool add_bos,
                                          bool add_eos) const {
  std::vector<int> tokens;
  if (add_bos) tokens.push_back(bos_id_);
  auto push_bytes = [&](std::string_view bytes) {
    for (unsigned char b : bytes) {
      int id = byte_token_[b] >= 0 ? byte_token_[b] : b + 3;  // llama2.c's fallback
      tokens.push_back(id < vocab_size() ? id : 0);
    }
  };
  if (!text.empty()) {
    int dummy = Lookup(" ");
    if (dummy >= 0) tokens.push_back(dummy); else push_bytes(" ");
  }
  for (size_t i = 0; i < text.size();) {
    size_t len = 1;  // one code point: a lead byte and up to 3 continuation bytes
    while (i + len < text.size() && len < 4 &&
           (static_cast<unsigned char>(text[i + len]) & 0xC0) == 0x80) {
      ++len;
    }
    std::string_view cp = text.substr(i, len);
    int id = Lookup(cp);
    if (id >= 0) tokens.push_back(id); else push_bytes(cp);
    i += len;
  }

  // Merge: a doubly linked list over `tokens`, a max-heap of candidate pairs.
  const int n = static_cast<int>(tokens.size());
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
  struct Cand { float score; int left; int right_tok; int left_tok; int id; };
  auto worse = [](const Cand& a, const Cand& b) {
    return a.score != b.score ? a.score < b.score : a.left > b.left;
  };
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> heap(worse);
  std::string buf;
  auto consider = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    int right = next[left];
    buf = vocab_.pieces[tokens[left]];
    buf += vocab_.pieces[tokens[right]];
    int id = Lookup(buf);
    if (id >= 0) heap.push({vocab_.scores[id], left, tokens[right], tokens[left], id});
  };
  for (int i = 0; i < n; ++i) consider(i);
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int right = next[c.left];
    // Stale when either side changed since the candidate was pushed.
    if (dead[c.left] || right < 0 || tokens[c.left] != c.left_tok || tokens[right] != c.right_tok) {
      continue;
    }
    tokens[c.left] = c.id;
    dead[right] = true;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    consider(prev[c.left]);
    consider(c.left);
  }
  std::vector<int> out;
  out.reserve(n + 1);
  for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push_back(tokens[i]);
  if (add_eos) out.push_back(eos_id_);
  return out;
}

std::string Llama2cTokenizer::Decode(int prev, int token) const {
  if (token < 0 || token >= vocab_size()) return "";
  std::string_view piece = vocab_.pieces[token];
  if (prev == bos_id_ && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
  unsigned b;
  if (piece.size() == 6 && std::sscanf(std::string(piece).c_str(), "<0x%02X>", &b) == 1) {
    return std::string(1, static_cast<char>(b));
  }
  return std::string(piece);
}

}  // namespace llmflash

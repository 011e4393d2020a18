// Hugging Face BPE tokenizers: loading, pre-tokenization, merges, decoding.
#include "model/hf_tokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <queue>

#include "util/utf8.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash {
namespace {

constexpr char kSpace[] = "\xE2\x96\x81";  // "▁", SentencePiece's space

// GPT-2's reversible map from bytes to printable code points.
struct ByteMap {
  std::string to_char[256];
  std::unordered_map<uint32_t, uint8_t> to_byte;
  ByteMap() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? b : 256 + extra++;
      to_char[b] = EncodeUtf8(cp);
      to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
};
const ByteMap& Bytes() {
  static const ByteMap* m = new ByteMap();
  return *m;
}

// GPT-2's pre-tokenizer: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<std::string_view> Gpt2Split(std::string_view text) {
  std::vector<uint32_t> cps;
  std::vector<size_t> at;  // byte offset of each code point
  for (size_t i = 0; i < text.size();) {
    at.push_back(i);
    cps.push_back(DecodeUtf8(text, &i));
  }
  at.push_back(text.size());
  const size_t n = cps.size();
  std::vector<std::string_view> out;
  auto emit = [&](size_t a, size_t b) { out.push_back(text.substr(at[a], at[b] - at[a])); };
  for (size_t i = 0; i < n;) {
    if (cps[i] == '\'' && i + 1 < n) {
      static const char* kSuffixes[] = {"re", "ve", "ll", "s", "t", "m", "d"};
      bool done = false;
      for (const char* s : kSuffixes) {
        size_t len = std::char_traits<char>::length(s);
        bool match = true;
        for (size_t k = 0; k < len; ++k) match &= (i + 1 + k < n) && cps[i + 1 + k] == static_cast<uint32_t>(s[k]);
        if (match) { emit(i, i + 1 + len); i += 1 + len; done = true; break; }
      }
      if (done) continue;
    }
    size_t j = (cps[i] == ' ' && i + 1 < n && !IsSpace(cps[i + 1])) ? i + 1 : i;
    if (!IsSpace(cps[j])) {
      auto cls = [](uint32_t c) { return IsLetter(c) ? 0 : IsNumber(c) ? 1 : 2; };
      int k = cls(cps[j]);
      size_t e = j + 1;
      while (e < n && !IsSpace(cps[e]) && cls(cps[e]) == k) ++e;
      emit(i, e);
      i = e;
      continue;
    }
    size_t e = i;
    while (e < n && IsSpace(cps[e])) ++e;
    if (e < n && e - i > 1) e -= 1;  // leave one space for the next word
    emit(i, e);
    i = e;
  }
  return out;
}

std::string Key(const std::string& a, const std::string& b) { return a + '\xff' + b; }

}  // namespace

StatusOr<HfTokenizer> HfTokenizer::Load(const std::string& path) {
  HfTokenizer t;
  std::string file = path;
  if (!FileSize(path).ok()) {  // a directory
    file = JoinPath(path, "tokenizer.json");
    if (!FileSize(file).ok()) {
      RETURN_IF_ERROR(t.InitFromVocabMerges(path));
      return t;
    }
  }
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(file, 256ull << 20));
  return FromJson(text, file);
}

StatusOr<HfTokenizer> HfTokenizer::FromJson(const std::string& text, const std::string& path) {
  HfTokenizer t;
  try {
    RETURN_IF_ERROR(t.Init(text, path));
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
  return t;
}

void HfTokenizer::AddMerge(const std::string& a, const std::string& b) {
  ranks_.emplace(Key(a, b), static_cast<int>(ranks_.size()));
}

Status HfTokenizer::Init(const std::string& text, const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    return Status::Corruption(path + ": not a tokenizer.json (no \"model\" object)");
  }
  const auto& m = j["model"];
  std::string type = m.value("type", "BPE");  // old serializations have no "type"
  if (type != "BPE") return Status::Unsupported(path + ": tokenizer model \"" + type + "\" (BPE only)");
  if (!m.contains("vocab") || !m["vocab"].is_object()) return Status::Corruption(path + ": model.vocab missing");
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > (1 << 24)) {
      return Status::Corruption(path + ": vocab id of \"" + it.key() + "\" is not a valid id");
    }
    vocab_[it.key()] = it.value().get<int>();
  }
  if (m.contains("merges") && m["merges"].is_array()) {
    for (const auto& merge : m["merges"]) {
      if (merge.is_string()) {  // "a b"
        std::string s = merge.get<std::string>();
        size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) return Status::Corruption(path + ": merge \"" + s + "\" has no space");
        AddMerge(s.substr(0, sp), s.substr(sp + 1));
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
        AddMerge(merge[0].get<std::string>(), merge[1].get<std::string>());
      } else {
        return Status::Corruption(path + ": a merge is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("content") || !a.contains("id") || !a["content"].is_string() ||
          !a["id"].is_number_integer()) {
        return Status::Corruption(path + ": an added token lacks content or id");
      }
      int id = a["id"].get<int>();
      if (id < 0 || id > (1 << 24)) return Status::Corruption(path + ": added token id out of range");
      vocab_[a["content"].get<std::string>()] = id;
      added_.push_back(a["content"].get<std::string>());
    }
  }
  // Flavour: byte-level if any pre-tokenizer or decoder says ByteLevel.
  std::string dump = j.value("pre_tokenizer", nlohmann::json()).dump() + j.value("decoder", nlohmann::json()).dump();
  byte_level_ = dump.find("\"ByteLevel\"") != std::string::npos;
  byte_fallback_ = m.value("byte_fallback", false);
  if (byte_level_) {
    const auto& pre = j["pre_tokenizer"];
    prefix_space_ = pre.is_object() && pre.value("add_prefix_space", false);
  }
  if (m.contains("unk_token") && m["unk_token"].is_string()) unk_id_ = Find(m["unk_token"].get<std::string>());
  int max_id = -1;
  for (const auto& [s, id] : vocab_) max_id = std::max(max_id, id);
  pieces_.assign(max_id + 1, "");
  is_added_.assign(max_id + 1, false);
  for (const auto& [s, id] : vocab_) pieces_[id] = s;
  for (const auto& a : added_) is_added_[vocab_[a]] = true;
  std::sort(added_.begin(), added_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return Status::OK();
}

Status HfTokenizer::InitFromVocabMerges(const std::string& dir) {
  std::string vocab = JoinPath(dir, "vocab.json"), merges = JoinPath(dir, "merges.txt");
  ASSIGN_OR_RETURN(std::string v, ReadFileToString(vocab, 256ull << 20));
  ASSIGN_OR_RETURN(std::string mtext, ReadFileToString(merges, 256ull << 20));
  nlohmann::json model = {{"type", "BPE"}};
  model["vocab"] = nlohmann::json::parse(v, nullptr, false);
  if (model["vocab"].is_discarded()) return Status::Corruption(vocab + ": not valid JSON");
  nlohmann::json list = nlohmann::json::array();
  size_t pos = 0;
  while (pos < mtext.size()) {
    size_t end = mtext.find('\n', pos);
    if (end == std::string::npos) end = mtext.size();
    std::string line = mtext.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line.rfind("#version", 0) != 0) list.push_back(line);
    pos = end + 1;
  }
  model["merges"] = list;
  nlohmann::json j = {{"model", model}, {"pre_tokenizer", {{"type", "ByteLevel"}}}};
  return Init(j.dump(), vocab);
}

int HfTokenizer::Find(const std::string& piece) const {
  auto it = vocab_.find(piece);
  return it == vocab_.end() ? -1 : it->second;
}

void HfTokenizer::Bpe(std::vector<std::string> sym, std::vector<int>* out) const {
  const int n = static_cast<int>(sym.size());
  std::vector<int> next(n), prev(n);
  for (int i = 0; i < n; ++i) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
  struct Cand { int rank, left; std::string a, b; };
  auto worse = [](const Cand& x, const Cand& y) { return x.rank != y.rank ? x.rank > y.rank : x.left > y.left; };
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> heap(worse);
  auto consider = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    auto it = ranks_.find(Key(sym[left], sym[next[left]]));
    if (it != ranks_.end()) heap.push({it->second, left, sym[left], sym[next[left]]});
  };
  for (int i = 0; i < n; ++i) consider(i);
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int right = next[c.left];
    if (dead[c.left] || right < 0 || sym[c.left] != c.a || sym[right] != c.b) continue;
    sym[c.left] += sym[right];
    dead[right] = true;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    consider(prev[c.left]);
    consider(c.left);
  }
  for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) {
    int id = Find(sym[i]);
    if (id >= 0) {
      out->push_back(id);
    } else if (byte_fallback_) {
      for (unsigned char b : sym[i]) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
        int bid = Find(hex);
        out->push_back(bid >= 0 ? bid : unk_id_);
      }
    } else if (unk_id_ >= 0) {
      out->push_back(unk_id_);
    }
  }
}

void HfTokenizer::EncodePlain(std::string_view text, bool first, std::vector<int>* out) const {
  if (text.empty()) return;
  if (byte_level_) {
    std::string s;
    if (first && prefix_space_ && text[0] != ' ') s.push_back(' ');
    s.append(text);
    const ByteMap& bm = Bytes();
    for (std::string_view word : Gpt2Split(s)) {
      std::vector<std::string> sym;
      for (unsigned char b : word) sym.push_back(bm.to_char[b]);
      Bpe(std::move(sym), out);
    }
    return;
  }
  // SentencePiece style: "▁" for spaces, one prepended, characters as symbols.
  std::string norm = first ? kSpace : "";
  for (char ch : text) {
    if (ch == ' ') norm += kSpace; else norm += ch;
  }
  std::vector<std::string> sym;
  for (size_t i = 0; i < norm.size();) {
    size_t start = i;
    DecodeUtf8(norm, &i);
    sym.push_back(norm.substr(start, i - start));
  }
  Bpe(std::move(sym), out);
}

std::vector<int> HfTokenizer::Encode(std::string_view text) const {
  std::vector<int> out;
  bool first = true;
  size_t pos = 0;
  while (pos < text.size()) {  // split on added tokens, leftmost then longest
    size_t best = std::string_view::npos;
    const std::string* which = nullptr;
    for (const std::string& a : added_) {
      if (a.empty()) continue;
      size_t f = text.find(a, pos);
      if (f < best) { best = f; which = &a; }
    }
    EncodePlain(text.substr(pos, best == std::string_view::npos ? std::string_view::npos : best - pos), first, &out);
    first = false;
    if (which == nullptr) break;
    out.push_back(Find(*which));
    pos = best + which->size();
  }
  return out;
}

std::string HfTokenizer::TokenBytes(int id) const {
  if (id < 0 || id >= static_cast<int>(pieces_.size())) return "";
  const std::string& p = pieces_[id];
  if (is_added_[id]) return p;
  if (byte_level_) {
    std::string out;
    const ByteMap& bm = Bytes();
    for (size_t i = 0; i < p.size();) {
      uint32_t cp = DecodeUtf8(p, &i);
      auto it = bm.to_byte.find(cp);
      if (it != bm.to_byte.end()) out += static_cast<char>(it->second);
    }
    return out;
  }
  unsigned b;
  if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%02X>", &b) == 1) return std::string(1, static_cast<char>(b));
  std::string out;
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, 3, kSpace) == 0) { out += ' '; i += 3; } else { out += p[i++]; }
  }
  return out;
}

std::string HfTokenizer::Decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) out += TokenBytes(id);
  if (!byte_level_ && !out.empty() && out[0] == ' ') out.erase(0, 1);  // the prepended "▁"
  if (byte_level_ && prefix_space_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace llmflash

// Hugging Face tokenizers: the tokenizer.json pipeline (added tokens,
// normalizer, pre-tokenizer, BPE, post-processor, decoder) as data, run in
// Hugging Face's order.
#include "model/hf_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <unordered_map>

#include "util/file.h"
#include "util/macros.h"
#include "util/regex.h"
#include "util/unicode.h"
#include "util/utf8.h"

namespace llmflash {

using Json = nlohmann::json;

namespace {

// j[key], or null: by reference, since a hostile file nests its parts deep
// enough that copying them (json::value) overflows the stack.
const Json& Field(const Json& j, const char* key) {
  static const Json* null = new Json();
  auto it = j.find(key);
  return it == j.end() ? *null : *it;
}

// GPT-2's pre-tokenization rule, which ByteLevel with use_regex applies.
constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

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

// Length of the UTF-8 sequence starting at s[i] (1 for an invalid byte).
size_t CharLen(std::string_view s, size_t i) {
  size_t j = i;
  DecodeUtf8(s, &j);
  return j - i;
}

// A pattern of a Split or Replace: a literal string or a regex.
struct Pattern {
  std::string literal;
  std::optional<Regex> regex;

  // [begin, end) of every match, leftmost and non-overlapping.
  std::vector<std::pair<size_t, size_t>> Find(std::string_view s) const {
    if (regex) return regex->FindAll(s);
    std::vector<std::pair<size_t, size_t>> out;
    if (literal.empty()) return out;
    for (size_t p = s.find(literal); p != std::string_view::npos; p = s.find(literal, p + literal.size())) {
      out.emplace_back(p, p + literal.size());
    }
    return out;
  }
};

StatusOr<Pattern> ParsePattern(const Json& j, const std::string& what) {
  Pattern p;
  if (j.is_object() && j.contains("String") && j["String"].is_string()) {
    p.literal = j["String"].get<std::string>();
  } else if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
    ASSIGN_OR_RETURN(Regex r, Regex::Compile(j["Regex"].get<std::string>(), what));
    p.regex = std::move(r);
  } else {
    return Status::Corruption(what + ": pattern is neither {\"String\": ...} nor {\"Regex\": ...}");
  }
  return p;
}

std::string ReplaceAll(std::string_view s, const Pattern& p, const std::string& content) {
  std::string out;
  size_t last = 0;
  for (auto [b, e] : p.Find(s)) {
    out.append(s.substr(last, b - last));
    out += content;
    last = e;
  }
  out.append(s.substr(last));
  return out;
}

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

StatusOr<SplitBehavior> ParseBehavior(const Json& j, const std::string& what) {
  std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return Status::Unsupported(what + ": split behavior \"" + b + "\"");
}

// A piece of text being pre-tokenized; `at_start` when it begins at offset 0
// of the caller's text (Metaspace's prepend_scheme "first" needs it).
struct Piece {
  std::string text;
  bool at_start = false;
};

// Hugging Face's NormalizedString::split: the matches and the text between
// them, combined by `behavior`; empty pieces dropped.
void SplitPiece(const Piece& in, const std::vector<std::pair<size_t, size_t>>& matches, SplitBehavior behavior,
                bool invert, std::vector<Piece>* out) {
  struct Range { size_t b, e; bool match; };
  std::vector<Range> all;
  size_t last = 0;
  for (auto [b, e] : matches) {
    if (b > last) all.push_back({last, b, invert});
    all.push_back({b, e, !invert});
    last = e;
  }
  if (last < in.text.size()) all.push_back({last, in.text.size(), invert});
  std::vector<std::pair<size_t, size_t>> kept;
  bool prev_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Range& r : all) if (!r.match) kept.emplace_back(r.b, r.e);
      break;
    case SplitBehavior::kIsolated:
      for (const Range& r : all) kept.emplace_back(r.b, r.e);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Range& r : all) {
        if (r.match && !prev_match && !kept.empty()) kept.back().second = r.e; else kept.emplace_back(r.b, r.e);
        prev_match = r.match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = all.rbegin(); it != all.rend(); ++it) {
        if (it->match && !prev_match && !kept.empty()) kept.back().first = it->b; else kept.emplace_back(it->b, it->e);
        prev_match = it->match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    case SplitBehavior::kContiguous:
      for (size_t i = 0; i < all.size(); ++i) {
        if (i > 0 && all[i].match == prev_match) kept.back().second = all[i].e; else kept.emplace_back(all[i].b, all[i].e);
        prev_match = all[i].match;
      }
      break;
  }
  for (auto [b, e] : kept) {
    if (e > b) out->push_back({in.text.substr(b, e - b), in.at_start && b == 0});
  }
}

// ---- normalizers ----

struct NormStep {
  enum Kind { kUnicode, kLowercase, kPrepend, kReplace, kStrip } kind = kUnicode;
  UnicodeForm form = UnicodeForm::kNfc;
  std::string text;  // Prepend: what; Replace: content
  Pattern pattern;
  bool left = false, right = false;
};

// Sequences nest; a hostile file must not nest them until the stack runs out.
constexpr int kMaxNesting = 16;

Status ParseNormalizer(const Json& j, const std::string& path, std::vector<NormStep>* out, int depth = 0) {
  if (j.is_null()) return Status::OK();
  if (depth > kMaxNesting) return Status::Corruption(path + ": normalizers nested more than 16 deep");
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return Status::Corruption(path + ": a normalizer has no \"type\"");
  }
  std::string type = j["type"].get<std::string>();
  std::string what = path + ": normalizer " + type;
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) return Status::Corruption(what + " has no list");
    for (const Json& n : j["normalizers"]) RETURN_IF_ERROR(ParseNormalizer(n, path, out, depth + 1));
    return Status::OK();
  }
  NormStep s;
  if (type == "NFC") { s.form = UnicodeForm::kNfc;
  } else if (type == "NFD") { s.form = UnicodeForm::kNfd;
  } else if (type == "NFKC") { s.form = UnicodeForm::kNfkc;
  } else if (type == "NFKD") { s.form = UnicodeForm::kNfkd;
  } else if (type == "Lowercase") {
    s.kind = NormStep::kLowercase;
  } else if (type == "Prepend") {
    s.kind = NormStep::kPrepend;
    if (!j.contains("prepend") || !j["prepend"].is_string()) return Status::Corruption(what + " has no \"prepend\"");
    s.text = j["prepend"].get<std::string>();
  } else if (type == "Replace") {
    s.kind = NormStep::kReplace;
    if (!j.contains("content") || !j["content"].is_string() || !j.contains("pattern")) {
      return Status::Corruption(what + " needs \"pattern\" and \"content\"");
    }
    ASSIGN_OR_RETURN(s.pattern, ParsePattern(j["pattern"], what));
    s.text = j["content"].get<std::string>();
  } else if (type == "Strip") {
    s.kind = NormStep::kStrip;
    s.left = j.value("strip_left", true);
    s.right = j.value("strip_right", true);
  } else {
    return Status::Unsupported(what + " is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, "
                               "Prepend, Replace, Strip, Sequence)");
  }
  out->push_back(std::move(s));
  return Status::OK();
}

std::string Normalize(const std::vector<NormStep>& steps, std::string s) {
  for (const NormStep& n : steps) {
    switch (n.kind) {
      case NormStep::kUnicode: s = NormalizeUnicode(s, n.form); break;
      case NormStep::kLowercase: s = LowercaseUnicode(s); break;
      case NormStep::kPrepend: if (!s.empty()) s = n.text + s; break;
      case NormStep::kReplace: s = ReplaceAll(s, n.pattern, n.text); break;
      case NormStep::kStrip: {
        size_t b = 0, e = s.size();
        auto space = [](uint32_t c) { return c == ' ' || (c >= 9 && c <= 13) || c == 0x85 || c == 0xA0 ||
                                             c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
                                             c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000; };
        if (n.left) {
          while (b < e) { size_t j = b; if (!space(DecodeUtf8(s, &j))) break; b = j; }
        }
        if (n.right) {
          while (e > b) {
            size_t k = e - 1;
            while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
            size_t j = k;
            if (!space(DecodeUtf8(s, &j)) || j != e) break;
            e = k;
          }
        }
        s = s.substr(b, e - b);
        break;
      }
    }
  }
  return s;
}

// ---- pre-tokenizers ----

struct PreStep {
  enum Kind { kSplit, kByteLevel, kMetaspace } kind = kSplit;
  Pattern pattern;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
  bool use_regex = true;          // ByteLevel
  std::string replacement;        // Metaspace
  enum Scheme { kAlways, kFirst, kNever } scheme = kAlways;
  bool split = true;              // Metaspace
};

Status ParsePreTokenizer(const Json& j, const std::string& path, std::vector<PreStep>* out, int depth = 0) {
  if (j.is_null()) return Status::OK();
  if (depth > kMaxNesting) return Status::Corruption(path + ": pre_tokenizers nested more than 16 deep");
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return Status::Corruption(path + ": a pre_tokenizer has no \"type\"");
  }
  std::string type = j["type"].get<std::string>();
  std::string what = path + ": pre_tokenizer " + type;
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) return Status::Corruption(what + " has no list");
    for (const Json& p : j["pretokenizers"]) RETURN_IF_ERROR(ParsePreTokenizer(p, path, out, depth + 1));
    return Status::OK();
  }
  PreStep s;
  auto regex = [&](const char* re) -> Status {
    ASSIGN_OR_RETURN(Regex r, Regex::Compile(re, what));
    s.pattern.regex = std::move(r);
    return Status::OK();
  };
  if (type == "Split") {
    if (!j.contains("pattern")) return Status::Corruption(what + " has no \"pattern\"");
    ASSIGN_OR_RETURN(s.pattern, ParsePattern(j["pattern"], what));
    ASSIGN_OR_RETURN(s.behavior, ParseBehavior(Field(j, "behavior"), what));
    s.invert = j.value("invert", false);
  } else if (type == "ByteLevel") {
    s.kind = PreStep::kByteLevel;
    s.add_prefix_space = j.value("add_prefix_space", false);
    s.use_regex = j.value("use_regex", true);
    if (s.use_regex) RETURN_IF_ERROR(regex(kGpt2Pattern));
  } else if (type == "Metaspace") {
    s.kind = PreStep::kMetaspace;
    s.replacement = j.value("replacement", std::string("\xE2\x96\x81"));
    s.split = j.value("split", true);
    std::string scheme = j.value("prepend_scheme", std::string(j.value("add_prefix_space", true) ? "always" : "never"));
    if (scheme == "always") s.scheme = PreStep::kAlways;
    else if (scheme == "first") s.scheme = PreStep::kFirst;
    else if (scheme == "never") s.scheme = PreStep::kNever;
    else return Status::Unsupported(what + ": prepend_scheme \"" + scheme + "\"");
    if (s.replacement.empty()) return Status::Corruption(what + ": empty replacement");
    s.pattern.literal = s.replacement;
    s.behavior = SplitBehavior::kMergedWithNext;
  } else if (type == "Digits") {
    RETURN_IF_ERROR(regex(R"(\p{N})"));
    s.behavior = j.value("individual_digits", false) ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
  } else if (type == "Whitespace") {
    RETURN_IF_ERROR(regex(R"(\w+|[^\w\s]+)"));
    s.behavior = SplitBehavior::kRemoved;
    s.invert = true;
  } else if (type == "WhitespaceSplit") {
    RETURN_IF_ERROR(regex(R"(\s+)"));
    s.behavior = SplitBehavior::kRemoved;
  } else if (type == "Punctuation") {
    RETURN_IF_ERROR(regex(R"([\p{P}!-/:-@\[-`{-~])"));
    static const Json* isolated = new Json("Isolated");
    ASSIGN_OR_RETURN(s.behavior, ParseBehavior(j.contains("behavior") ? Field(j, "behavior") : *isolated, what));
  } else {
    return Status::Unsupported(what + " is not supported (supported: Split, ByteLevel, Metaspace, Digits, "
                               "Whitespace, WhitespaceSplit, Punctuation, Sequence)");
  }
  out->push_back(std::move(s));
  return Status::OK();
}

void PreTokenize(const std::vector<PreStep>& steps, std::vector<Piece>* pieces) {
  std::vector<Piece> next;
  for (const PreStep& s : steps) {
    next.clear();
    for (Piece& p : *pieces) {
      switch (s.kind) {
        case PreStep::kSplit:
          SplitPiece(p, s.pattern.Find(p.text), s.behavior, s.invert, &next);
          break;
        case PreStep::kByteLevel: {
          if (s.add_prefix_space && (p.text.empty() || p.text[0] != ' ')) p.text.insert(0, 1, ' ');
          std::vector<Piece> words;
          if (s.use_regex) SplitPiece(p, s.pattern.Find(p.text), SplitBehavior::kIsolated, false, &words);
          else words.push_back(p);
          const ByteMap& bm = Bytes();
          for (Piece& w : words) {
            std::string mapped;
            for (unsigned char b : w.text) mapped += bm.to_char[b];
            next.push_back({std::move(mapped), w.at_start});
          }
          break;
        }
        case PreStep::kMetaspace: {
          Piece q{ReplaceAll(p.text, Pattern{" ", std::nullopt}, s.replacement), p.at_start};
          bool prepend = s.scheme == PreStep::kAlways || (s.scheme == PreStep::kFirst && p.at_start);
          if (prepend && q.text.compare(0, s.replacement.size(), s.replacement) != 0) q.text = s.replacement + q.text;
          if (s.split) SplitPiece(q, s.pattern.Find(q.text), s.behavior, false, &next);
          else next.push_back(std::move(q));
          break;
        }
      }
    }
    pieces->swap(next);
  }
}

// ---- decoders ----

struct DecStep {
  enum Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace } kind = kByteLevel;
  Pattern pattern;
  std::string text;  // Replace: content; Strip: content; Metaspace: replacement
  int start = 0, stop = 0;
  bool strip_first = true;  // Metaspace: the first token's prepended space
};

Status ParseDecoder(const Json& j, const std::string& path, std::vector<DecStep>* out, int depth = 0) {
  if (j.is_null()) return Status::OK();
  if (depth > kMaxNesting) return Status::Corruption(path + ": decoders nested more than 16 deep");
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return Status::Corruption(path + ": a decoder has no \"type\"");
  }
  std::string type = j["type"].get<std::string>();
  std::string what = path + ": decoder " + type;
  if (type == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array()) return Status::Corruption(what + " has no list");
    for (const Json& d : j["decoders"]) RETURN_IF_ERROR(ParseDecoder(d, path, out, depth + 1));
    return Status::OK();
  }
  DecStep s;
  if (type == "ByteLevel") {
  } else if (type == "Replace") {
    s.kind = DecStep::kReplace;
    if (!j.contains("content") || !j["content"].is_string() || !j.contains("pattern")) {
      return Status::Corruption(what + " needs \"pattern\" and \"content\"");
    }
    ASSIGN_OR_RETURN(s.pattern, ParsePattern(j["pattern"], what));
    s.text = j["content"].get<std::string>();
  } else if (type == "ByteFallback") {
    s.kind = DecStep::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = DecStep::kFuse;
  } else if (type == "Strip") {
    s.kind = DecStep::kStrip;
    s.text = j.value("content", std::string(" "));
    s.start = j.value("start", 0);
    s.stop = j.value("stop", 0);
    if (s.text.empty() || s.start < 0 || s.stop < 0) return Status::Corruption(what + ": bad content/start/stop");
  } else if (type == "Metaspace") {
    s.kind = DecStep::kMetaspace;
    s.text = j.value("replacement", std::string("\xE2\x96\x81"));
    std::string scheme = j.value("prepend_scheme", std::string(j.value("add_prefix_space", true) ? "always" : "never"));
    s.strip_first = scheme != "never";
  } else {
    return Status::Unsupported(what + " is not supported (supported: ByteLevel, Replace, ByteFallback, Fuse, "
                               "Strip, Metaspace, Sequence)");
  }
  out->push_back(std::move(s));
  return Status::OK();
}

// Every token goes through every decoder step, as in Hugging Face, except
// that ByteLevel leaves added tokens' text as it is (their text is not
// byte-mapped; Hugging Face would turn a non-ASCII one into U+FFFD).
struct DecPiece {
  std::string text;
  bool added;
};

int ParseByteToken(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void RunDecoders(const std::vector<DecStep>& steps, std::vector<DecPiece>* pieces) {
  const ByteMap& bm = Bytes();
  for (const DecStep& s : steps) {
    switch (s.kind) {
      case DecStep::kByteLevel:
        for (DecPiece& p : *pieces) {
          if (p.added) continue;
          std::string out;
          bool mapped = true;  // a token with a character outside the map keeps its bytes
          for (size_t i = 0; i < p.text.size() && mapped;) {
            auto it = bm.to_byte.find(DecodeUtf8(p.text, &i));
            if (it == bm.to_byte.end()) mapped = false; else out += static_cast<char>(it->second);
          }
          if (mapped) p.text = std::move(out);
        }
        break;
      case DecStep::kReplace:
        for (DecPiece& p : *pieces) p.text = ReplaceAll(p.text, s.pattern, s.text);
        break;
      case DecStep::kByteFallback:
        for (DecPiece& p : *pieces) {
          int b = ParseByteToken(p.text);
          if (b >= 0) p.text = std::string(1, static_cast<char>(b));
        }
        break;
      case DecStep::kFuse: {
        if (pieces->empty()) break;
        DecPiece all{"", false};
        for (const DecPiece& p : *pieces) all.text += p.text;
        pieces->assign(1, std::move(all));
        break;
      }
      case DecStep::kStrip:
        for (DecPiece& p : *pieces) {
          size_t b = 0, e = p.text.size();
          const size_t n = s.text.size();
          for (int k = 0; k < s.start && b + n <= e && p.text.compare(b, n, s.text) == 0; ++k) b += n;
          for (int k = 0; k < s.stop && e >= b + n && p.text.compare(e - n, n, s.text) == 0; ++k) e -= n;
          p.text = p.text.substr(b, e - b);
        }
        break;
      case DecStep::kMetaspace:
        for (size_t i = 0; i < pieces->size(); ++i) {
          DecPiece& p = (*pieces)[i];
          p.text = ReplaceAll(p.text, Pattern{s.text, std::nullopt}, " ");
          if (i == 0 && s.strip_first && !p.text.empty() && p.text[0] == ' ') p.text.erase(0, 1);
        }
        break;
    }
  }
}

// ---- added tokens ----

struct AddedToken {
  std::string content;  // as matched (normalized form for normalized tokens)
  int id;
  bool special, lstrip, rstrip, single_word;
};

// Byte trie over added tokens for leftmost-longest matching.
class Trie {
 public:
  void Insert(const std::string& s, int token) {
    if (s.empty()) return;
    int node = 0;
    for (unsigned char c : s) {
      auto [it, fresh] = edges_.try_emplace(Key(node, c), static_cast<int>(value_.size()));
      if (fresh) value_.push_back(-1);
      node = it->second;
    }
    if (value_[node] < 0) value_[node] = token;
  }
  // The longest token starting at s[i]: {token, end} or {-1, i}.
  std::pair<int, size_t> Longest(std::string_view s, size_t i) const {
    int node = 0, best = -1;
    size_t best_end = i;
    for (size_t k = i; k < s.size(); ++k) {
      auto it = edges_.find(Key(node, static_cast<unsigned char>(s[k])));
      if (it == edges_.end()) break;
      node = it->second;
      if (value_[node] >= 0) { best = value_[node]; best_end = k + 1; }
    }
    return {best, best_end};
  }
  bool empty() const { return edges_.empty(); }

 private:
  static uint64_t Key(int node, unsigned char c) { return (static_cast<uint64_t>(node) << 8) | c; }
  std::unordered_map<uint64_t, int> edges_;
  std::vector<int> value_ = {-1};  // node -> index into the token list, or -1
};

bool IsWordByte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

// A segment of text: plain text to tokenize, or one added token.
struct Segment {
  std::string text;
  int id = -1;  // added token id, or -1 for plain text
  bool at_start = false;
};

}  // namespace

// ---- the tokenizer ----

struct HfTokenizer::Impl {
  std::vector<NormStep> normalizer;
  std::vector<PreStep> pre;
  std::vector<DecStep> decoder;
  bool byte_level = false;
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;
  int unk_id = -1;
  std::unordered_map<std::string, int> vocab;
  std::vector<std::string> pieces;  // id -> token text
  std::unordered_map<uint64_t, std::pair<int, int>> merges;  // (left id, right id) -> (rank, merged id)
  std::vector<AddedToken> added;
  std::vector<int8_t> added_kind;  // per id: 0 model token, 1 added, 2 special added
  Trie raw_trie, normalized_trie;   // indices into `added`
  std::vector<int> prefix, suffix;

  static uint64_t MergeKey(int a, int b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  int Find(const std::string& s) const {
    auto it = vocab.find(s);
    return it == vocab.end() ? -1 : it->second;
  }

  Status Init(const Json& j, const std::string& path);
  Status AddMerge(const std::string& a, const std::string& b, const std::string& path);
  void SplitAdded(const Segment& in, const Trie& trie, bool parse_special, std::vector<Segment>* out) const;
  void Bpe(const std::string& word, std::vector<int>* out) const;
};

Status HfTokenizer::Impl::AddMerge(const std::string& a, const std::string& b, const std::string& path) {
  int ia = Find(a), ib = Find(b), im = Find(a + b);
  if (ia < 0 || ib < 0 || im < 0) {
    return Status::Corruption(path + ": merge \"" + a + " " + b + "\" names a token missing from the vocabulary");
  }
  merges.emplace(MergeKey(ia, ib), std::make_pair(static_cast<int>(merges.size()), im));
  return Status::OK();
}

Status HfTokenizer::Impl::Init(const Json& j, const std::string& path) {
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    return Status::Corruption(path + ": not a tokenizer.json (no \"model\" object)");
  }
  const Json& m = j["model"];
  std::string type = m.value("type", "BPE");  // old serializations have no "type"
  if (type != "BPE") return Status::Unsupported(path + ": tokenizer model \"" + type + "\" (BPE only)");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (m.contains(k) && m[k].is_string() && !m[k].get<std::string>().empty()) {
      return Status::Unsupported(path + ": BPE " + k + " \"" + m[k].get<std::string>() + "\"");
    }
  }
  if (m.contains("dropout") && m["dropout"].is_number() && m["dropout"].get<double>() > 0) {
    return Status::Unsupported(path + ": BPE dropout (a training-time option)");
  }
  if (!m.contains("vocab") || !m["vocab"].is_object()) return Status::Corruption(path + ": model.vocab missing");
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > (1 << 24)) {
      return Status::Corruption(path + ": vocab id of \"" + it.key() + "\" is not a valid id");
    }
    vocab[it.key()] = it.value().get<int>();
  }
  if (m.contains("merges") && m["merges"].is_array()) {
    merges.reserve(m["merges"].size());
    for (const Json& merge : m["merges"]) {
      if (merge.is_string()) {  // "a b"
        std::string s = merge.get<std::string>();
        size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) return Status::Corruption(path + ": merge \"" + s + "\" has no space");
        // Tokens may hold spaces themselves (Llama 2 has " " and "  "): the
        // split is the first space whose halves and their join are tokens.
        while (s.find(' ', sp + 1) != std::string::npos &&
               (Find(s.substr(0, sp)) < 0 || Find(s.substr(sp + 1)) < 0 ||
                Find(s.substr(0, sp) + s.substr(sp + 1)) < 0)) {
          sp = s.find(' ', sp + 1);
        }
        RETURN_IF_ERROR(AddMerge(s.substr(0, sp), s.substr(sp + 1), path));
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
        RETURN_IF_ERROR(AddMerge(merge[0].get<std::string>(), merge[1].get<std::string>(), path));
      } else {
        return Status::Corruption(path + ": a merge is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
  }
  byte_fallback = m.value("byte_fallback", false);
  fuse_unk = m.value("fuse_unk", false);
  ignore_merges = m.value("ignore_merges", false);

  RETURN_IF_ERROR(ParseNormalizer(Field(j, "normalizer"), path, &normalizer));
  RETURN_IF_ERROR(ParsePreTokenizer(Field(j, "pre_tokenizer"), path, &pre));
  RETURN_IF_ERROR(ParseDecoder(Field(j, "decoder"), path, &decoder));
  for (const PreStep& s : pre) byte_level |= s.kind == PreStep::kByteLevel;

  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const Json& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("content") || !a.contains("id") || !a["content"].is_string() ||
          !a["id"].is_number_integer()) {
        return Status::Corruption(path + ": an added token lacks content or id");
      }
      int64_t id = a["id"].get<int64_t>();
      if (id < 0 || id > (1 << 24)) return Status::Corruption(path + ": added token id out of range");
      AddedToken t{a["content"].get<std::string>(), static_cast<int>(id), a.value("special", false),
                   a.value("lstrip", false), a.value("rstrip", false), a.value("single_word", false)};
      vocab[t.content] = t.id;
      bool normalized = a.value("normalized", !t.special);
      int index = static_cast<int>(added.size());
      if (normalized) normalized_trie.Insert(Normalize(normalizer, t.content), index);
      else raw_trie.Insert(t.content, index);
      added.push_back(std::move(t));
    }
  }
  if (m.contains("unk_token") && m["unk_token"].is_string()) unk_id = Find(m["unk_token"].get<std::string>());

  int max_id = -1;
  for (const auto& [s, id] : vocab) max_id = std::max(max_id, id);
  pieces.assign(max_id + 1, "");
  added_kind.assign(max_id + 1, 0);
  for (const auto& [s, id] : vocab) pieces[id] = s;
  for (const AddedToken& a : added) {
    pieces[a.id] = a.content;
    added_kind[a.id] = a.special ? 2 : 1;
  }

  // The post-processor: what a single text gets around it.
  const Json& pp = Field(j, "post_processor");
  std::vector<const Json*> procs;
  if (pp.is_object() && pp.value("type", "") == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
    for (const Json& p : pp["processors"]) procs.push_back(&p);
  } else if (!pp.is_null()) {
    procs.push_back(&pp);
  }
  for (const Json* pptr : procs) {
    const Json& p = *pptr;
    std::string ptype = p.is_object() ? p.value("type", "") : "";
    std::string what = path + ": post_processor " + ptype;
    if (ptype == "ByteLevel") continue;  // offsets only
    if (ptype == "TemplateProcessing") {
      if (!p.contains("single") || !p["single"].is_array()) return Status::Corruption(what + " has no \"single\"");
      bool seen_a = false;
      for (const Json& item : p["single"]) {
        if (item.contains("Sequence")) { seen_a = true; continue; }
        if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id")) {
          return Status::Corruption(what + ": an item is neither Sequence nor SpecialToken");
        }
        std::string name = item["SpecialToken"]["id"].get<std::string>();
        const Json& specials = Field(p, "special_tokens");
        if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array()) {
          return Status::Corruption(what + ": special token \"" + name + "\" has no ids");
        }
        for (const Json& id : specials[name]["ids"]) {
          if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > max_id) {
            return Status::Corruption(what + ": special token \"" + name + "\" has an id out of range");
          }
          (seen_a ? suffix : prefix).push_back(id.get<int>());
        }
      }
      continue;
    }
    if (ptype == "RobertaProcessing" || ptype == "BertProcessing") {
      for (const char* k : {"cls", "sep"}) {
        if (!p.contains(k) || !p[k].is_array() || p[k].size() != 2 || !p[k][1].is_number_integer() ||
            p[k][1].get<int64_t>() < 0 || p[k][1].get<int64_t>() > max_id) {
          return Status::Corruption(what + ": \"" + k + "\" is not [token, id]");
        }
      }
      prefix.push_back(p["cls"][1].get<int>());
      suffix.push_back(p["sep"][1].get<int>());
      continue;
    }
    return Status::Unsupported(what + " is not supported (supported: TemplateProcessing, RobertaProcessing, "
                               "BertProcessing, ByteLevel, Sequence)");
  }
  return Status::OK();
}

void HfTokenizer::Impl::SplitAdded(const Segment& in, const Trie& trie, bool parse_special,
                                   std::vector<Segment>* out) const {
  const std::string& s = in.text;
  if (trie.empty()) { out->push_back(in); return; }
  size_t plain = 0;  // start of the current run of plain text
  auto flush = [&](size_t end) {
    if (end > plain) out->push_back({s.substr(plain, end - plain), -1, in.at_start && plain == 0});
  };
  for (size_t i = 0; i < s.size();) {
    auto [index, end] = trie.Longest(s, i);
    const AddedToken* t = index >= 0 ? &added[index] : nullptr;
    if (t != nullptr && t->special && !parse_special) t = nullptr;
    if (t != nullptr && t->single_word &&
        ((i > 0 && IsWordByte(s[i - 1])) || (end < s.size() && IsWordByte(s[end])))) {
      t = nullptr;
    }
    if (t == nullptr) { i += CharLen(s, i); continue; }
    size_t b = i, e = end;
    if (t->lstrip) while (b > plain && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
    if (t->rstrip) while (e < s.size() && std::isspace(static_cast<unsigned char>(s[e]))) ++e;
    flush(b);
    out->push_back({s.substr(b, e - b), t->id, false});
    plain = i = e;
  }
  flush(s.size());
}

void HfTokenizer::Impl::Bpe(const std::string& word, std::vector<int>* out) const {
  if (word.empty()) return;
  if (ignore_merges) {
    int id = Find(word);
    if (id >= 0) { out->push_back(id); return; }
  }
  // Symbols: one per character, its id or -1 (unknown) with its byte range.
  struct Sym { int id; size_t b, e; };
  std::vector<Sym> sym;
  for (size_t i = 0; i < word.size();) {
    size_t b = i;
    i += CharLen(word, i);
    sym.push_back({Find(word.substr(b, i - b)), b, i});
  }
  const int n = static_cast<int>(sym.size());
  std::vector<int> next(n), prev(n);
  for (int i = 0; i < n; ++i) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
  struct Cand { int rank, left, a, b, merged; };
  auto worse = [](const Cand& x, const Cand& y) { return x.rank != y.rank ? x.rank > y.rank : x.left > y.left; };
  std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> heap(worse);
  auto consider = [&](int left) {
    if (left < 0 || next[left] < 0 || sym[left].id < 0 || sym[next[left]].id < 0) return;
    auto it = merges.find(MergeKey(sym[left].id, sym[next[left]].id));
    if (it != merges.end()) heap.push({it->second.first, left, sym[left].id, sym[next[left]].id, it->second.second});
  };
  for (int i = 0; i < n; ++i) consider(i);
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int right = next[c.left];
    if (dead[c.left] || right < 0 || sym[c.left].id != c.a || sym[right].id != c.b) continue;
    sym[c.left].id = c.merged;
    sym[c.left].e = sym[right].e;
    dead[right] = true;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    consider(prev[c.left]);
    consider(c.left);
  }
  bool last_unk = false;
  for (int i = 0; i >= 0 && i < n; i = next[i]) {
    const Sym& s = sym[i];
    if (s.id >= 0) { out->push_back(s.id); last_unk = false; continue; }
    if (byte_fallback) {
      std::vector<int> bytes;
      for (size_t k = s.b; k < s.e; ++k) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "<0x%02X>", static_cast<unsigned char>(word[k]));
        int bid = Find(hex);
        if (bid < 0) { bytes.clear(); break; }
        bytes.push_back(bid);
      }
      if (!bytes.empty()) { out->insert(out->end(), bytes.begin(), bytes.end()); last_unk = false; continue; }
    }
    if (unk_id < 0) continue;  // as Hugging Face: no unk token, nothing to emit
    if (!(fuse_unk && last_unk)) out->push_back(unk_id);
    last_unk = true;
  }
}

StatusOr<HfTokenizer> HfTokenizer::Load(const std::string& path) {
  std::string file = path;
  if (!FileSize(path).ok()) {  // a directory
    file = JoinPath(path, "tokenizer.json");
    if (!FileSize(file).ok()) {
      std::string vocab = JoinPath(path, "vocab.json"), merges = JoinPath(path, "merges.txt");
      ASSIGN_OR_RETURN(std::string v, ReadFileToString(vocab, 256ull << 20));
      ASSIGN_OR_RETURN(std::string mtext, ReadFileToString(merges, 256ull << 20));
      Json model = {{"type", "BPE"}};
      model["vocab"] = Json::parse(v, nullptr, false);
      if (model["vocab"].is_discarded()) return Status::Corruption(vocab + ": not valid JSON");
      Json list = Json::array();
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
      Json j = {{"model", model},
                {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
                {"decoder", {{"type", "ByteLevel"}}}};
      return FromJson(j.dump(), vocab);
    }
  }
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(file, 256ull << 20));
  return FromJson(text, file);
}

StatusOr<HfTokenizer> HfTokenizer::FromJson(const std::string& text, const std::string& path) {
  auto impl = std::make_shared<Impl>();
  try {
    Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded()) return Status::Corruption(path + ": not valid JSON");
    RETURN_IF_ERROR(impl->Init(j, path));
  } catch (const Json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
  HfTokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

std::vector<int> HfTokenizer::Encode(std::string_view text, bool parse_special) const {
  const Impl& m = *impl_;
  std::vector<int> out;
  std::vector<Segment> raw, normalized;
  m.SplitAdded({std::string(text), -1, true}, m.raw_trie, parse_special, &raw);
  for (const Segment& seg : raw) {
    if (seg.id >= 0) { out.push_back(seg.id); continue; }
    normalized.clear();
    m.SplitAdded({Normalize(m.normalizer, seg.text), -1, seg.at_start}, m.normalized_trie, parse_special, &normalized);
    for (const Segment& s : normalized) {
      if (s.id >= 0) { out.push_back(s.id); continue; }
      std::vector<Piece> words = {{s.text, s.at_start}};
      PreTokenize(m.pre, &words);
      for (const Piece& w : words) m.Bpe(w.text, &out);
    }
  }
  return out;
}

std::string HfTokenizer::Decode(const std::vector<int>& ids) const {
  const Impl& m = *impl_;
  std::vector<DecPiece> pieces;
  for (int id : ids) {
    if (id < 0 || id >= static_cast<int>(m.pieces.size())) continue;
    pieces.push_back({m.pieces[id], m.added_kind[id] != 0});
  }
  if (m.decoder.empty()) {
    // No decoder: a byte-level model's tokens still need their bytes back.
    if (m.byte_level) RunDecoders({DecStep()}, &pieces);
  } else {
    RunDecoders(m.decoder, &pieces);
  }
  std::string out;
  for (const DecPiece& p : pieces) out += p.text;
  return out;
}

std::string HfTokenizer::DecodeNext(int prev, int token) const {
  if (prev < 0 || IsSpecial(prev)) return Decode({token});
  std::string before = Decode({prev});
  std::string both = Decode({prev, token});
  if (both.compare(0, before.size(), before) == 0) return both.substr(before.size());
  return Decode({token});
}

int HfTokenizer::vocab_size() const { return static_cast<int>(impl_->pieces.size()); }
bool HfTokenizer::byte_level() const { return impl_->byte_level; }
bool HfTokenizer::IsSpecial(int id) const {
  return id >= 0 && id < vocab_size() && impl_->added_kind[id] == 2;
}
int HfTokenizer::Find(const std::string& piece) const { return impl_->Find(piece); }
const std::vector<int>& HfTokenizer::prefix_ids() const { return impl_->prefix; }
const std::vector<int>& HfTokenizer::suffix_ids() const { return impl_->suffix; }

}  // namespace llmflash

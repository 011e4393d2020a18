// tokenizer.json from GGUF tokenizer metadata.
#include "format/gguf_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <unordered_map>

#include "util/macros.h"

namespace llmflash {
namespace {

using Json = nlohmann::json;

// llama.cpp's token types.
enum TokenType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

constexpr char kSpace[] = "\xe2\x96\x81";  // U+2581, SentencePiece's space

// The split regexes of the byte-level pre-tokenizers this importer knows, as
// the models' own tokenizer.json files write them.
constexpr char kLlama3Regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr char kQwen2Regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

Json ByteLevel(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", use_regex}};
}

Json SplitThenByteLevel(const char* regex) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           Json::array({{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                        ByteLevel(false)})}};
}

// Byte offsets where UTF-8 characters start in s (and s.size()).
std::vector<size_t> CharStarts(const std::string& s) {
  std::vector<size_t> out;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) out.push_back(i);
  }
  out.push_back(s.size());
  return out;
}

// SentencePiece BPE merges from scores: every split of a normal piece into
// two pieces of the vocabulary, ordered by the piece's score (highest first;
// ties by id), as Hugging Face's SentencePiece converter orders them. Only
// normal pieces are merge results: SentencePiece never produces control,
// byte or user-defined pieces by merging.
Json SpmMerges(const std::vector<std::string>& tokens, const std::vector<double>& scores,
               const std::vector<int64_t>& types, const std::unordered_map<std::string, int>& ids) {
  struct Merge {
    double score;
    int piece, left, right;
  };
  std::vector<Merge> merges;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (types[id] != kNormal) continue;
    const std::string& t = tokens[id];
    std::vector<size_t> starts = CharStarts(t);
    size_t first = merges.size();
    for (size_t k = 1; k + 1 < starts.size(); ++k) {
      auto l = ids.find(t.substr(0, starts[k]));
      auto r = ids.find(t.substr(starts[k]));
      if (l != ids.end() && r != ids.end()) {
        merges.push_back({scores[id], static_cast<int>(id), l->second, r->second});
      }
    }
    std::sort(merges.begin() + first, merges.end(), [](const Merge& a, const Merge& b) {
      return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  Json out = Json::array();
  for (const Merge& m : merges) out.push_back(Json::array({tokens[m.left], tokens[m.right]}));
  return out;
}

// The token texts llama.cpp also treats as ending generation when they are
// control tokens (end of turn, end of message).
bool EndOfTurnText(const std::string& t) {
  static const char* const kTexts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                       "<|eom_id|>", "<EOT>", "<|end_of_text|>", "<|return|>", "<|call|>"};
  for (const char* k : kTexts) {
    if (t == k) return true;
  }
  return false;
}

}  // namespace

StatusOr<GgufTokenizer> TokenizerFromGguf(const GgufFile& f) {
  const std::string& path = f.path();
  if (f.Find("tokenizer.ggml.model") == nullptr) {
    return Status::NotFound(path + ": no tokenizer (tokenizer.ggml.model is missing)");
  }
  GgufTokenizer out;
  ASSIGN_OR_RETURN(out.model, f.GetString("tokenizer.ggml.model"));
  if (out.model == "no_vocab" || out.model == "none") return Status::NotFound(path + ": the file has no vocabulary");
  if (out.model != "llama" && out.model != "gpt2") {
    return Status::Unsupported(path + ": tokenizer.ggml.model \"" + out.model +
                               "\" is not supported (llama: SentencePiece BPE; gpt2: byte-level BPE)");
  }
  ASSIGN_OR_RETURN(out.pre, f.GetStringOr("tokenizer.ggml.pre", ""));
  ASSIGN_OR_RETURN(const GgufValue* tokens_v, f.GetArray("tokenizer.ggml.tokens", GgufValueType::kString));
  const std::vector<std::string>& tokens = tokens_v->strings;
  const size_t n = tokens.size();
  if (n == 0 || n > (1u << 24)) {
    return Status::Corruption(path + ": tokenizer.ggml.tokens holds " + std::to_string(n) + " tokens");
  }
  out.vocab_size = static_cast<int>(n);
  std::vector<int64_t> types(n, kNormal);
  if (f.Find("tokenizer.ggml.token_type") != nullptr) {
    ASSIGN_OR_RETURN(const GgufValue* v, f.GetArray("tokenizer.ggml.token_type", GgufValueType::kInt32));
    if (v->ints.size() != n) {
      return Status::Corruption(path + ": tokenizer.ggml.token_type has " + std::to_string(v->ints.size()) +
                                " entries for " + std::to_string(n) + " tokens");
    }
    types = v->ints;
  }
  std::unordered_map<std::string, int> ids;
  ids.reserve(n);
  Json vocab = Json::object();
  for (size_t i = 0; i < n; ++i) {
    if (ids.emplace(tokens[i], static_cast<int>(i)).second) vocab[tokens[i]] = static_cast<int>(i);
  }
  auto id_key = [&](const char* key, int* id) -> Status {
    ASSIGN_OR_RETURN(int64_t v, f.GetIntOr(key, -1));
    if (v < -1 || v >= static_cast<int64_t>(n)) {
      return Status::Corruption(path + ": " + key + " " + std::to_string(v) + " is not a token id below " +
                                std::to_string(n));
    }
    *id = static_cast<int>(v);
    return Status::OK();
  };
  int bos = -1, eos = -1, eot = -1, eom = -1, unk = -1;
  RETURN_IF_ERROR(id_key("tokenizer.ggml.bos_token_id", &bos));
  RETURN_IF_ERROR(id_key("tokenizer.ggml.eos_token_id", &eos));
  RETURN_IF_ERROR(id_key("tokenizer.ggml.eot_token_id", &eot));
  RETURN_IF_ERROR(id_key("tokenizer.ggml.eom_token_id", &eom));
  RETURN_IF_ERROR(id_key("tokenizer.ggml.unknown_token_id", &unk));

  Json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["post_processor"] = nullptr;
  Json added = Json::array();
  for (size_t i = 0; i < n; ++i) {
    const int64_t t = types[i];
    if (t != kControl && t != kUnknown && t != kUserDefined) continue;
    if (tokens[i].empty()) continue;
    added.push_back({{"id", static_cast<int>(i)}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", t != kUserDefined}});
  }
  j["added_tokens"] = added;
  Json model = {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr}};

  bool add_bos = false;
  if (out.model == "llama") {
    ASSIGN_OR_RETURN(const GgufValue* scores_v, f.GetArray("tokenizer.ggml.scores", GgufValueType::kFloat32));
    if (scores_v->reals.size() != n) {
      return Status::Corruption(path + ": tokenizer.ggml.scores has " + std::to_string(scores_v->reals.size()) +
                                " entries for " + std::to_string(n) + " tokens");
    }
    ASSIGN_OR_RETURN(bool space_prefix, f.GetBoolOr("tokenizer.ggml.add_space_prefix", true));
    ASSIGN_OR_RETURN(add_bos, f.GetBoolOr("tokenizer.ggml.add_bos_token", true));
    Json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}};
    j["normalizer"] = space_prefix ? Json{{"type", "Sequence"},
                                          {"normalizers", Json::array({{{"type", "Prepend"}, {"prepend", kSpace}},
                                                                       replace})}}
                                   : replace;
    j["pre_tokenizer"] = nullptr;
    Json decoders = Json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                                 {{"type", "ByteFallback"}},
                                 {{"type", "Fuse"}}});
    if (space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    j["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
    model["merges"] = SpmMerges(tokens, scores_v->reals, types, ids);
    model["unk_token"] = unk >= 0 ? Json(tokens[unk]) : Json(nullptr);
    model["fuse_unk"] = true;
    model["byte_fallback"] = true;
    model["ignore_merges"] = false;
  } else {
    ASSIGN_OR_RETURN(const GgufValue* merges_v, f.GetArray("tokenizer.ggml.merges", GgufValueType::kString));
    bool ignore_merges = false;
    if (out.pre == "gpt-2" || out.pre == "gpt2") {
      j["normalizer"] = nullptr;
      j["pre_tokenizer"] = ByteLevel(true);
    } else if (out.pre == "llama-bpe" || out.pre == "llama3" || out.pre == "llama-v3") {
      j["normalizer"] = nullptr;
      j["pre_tokenizer"] = SplitThenByteLevel(kLlama3Regex);
      ignore_merges = true;
      add_bos = true;  // llama.cpp's default for this pre-tokenizer
    } else if (out.pre == "qwen2") {
      j["normalizer"] = {{"type", "NFC"}};
      j["pre_tokenizer"] = SplitThenByteLevel(kQwen2Regex);
    } else {
      return Status::Unsupported(path + ": tokenizer.ggml.pre \"" + out.pre +
                                 "\" is not a pre-tokenizer llmflash knows (gpt-2, llama-bpe, qwen2)");
    }
    ASSIGN_OR_RETURN(add_bos, f.GetBoolOr("tokenizer.ggml.add_bos_token", add_bos));
    j["decoder"] = ByteLevel(true);
    Json merges = Json::array();
    for (const std::string& m : merges_v->strings) merges.push_back(m);
    model["merges"] = std::move(merges);
    model["unk_token"] = nullptr;
    model["fuse_unk"] = false;
    model["byte_fallback"] = false;
    model["ignore_merges"] = ignore_merges;
  }
  j["model"] = std::move(model);
  try {
    out.tokenizer_json = j.dump();
  } catch (const Json::exception&) {
    // JSON text must be UTF-8; say which string is not.
    auto bad = [](const std::string& t) {
      try {
        (void)Json(t).dump();
        return false;
      } catch (const Json::exception&) {
        return true;
      }
    };
    for (size_t i = 0; i < n; ++i) {
      if (bad(tokens[i])) {
        return Status::Corruption(path + ": tokenizer.ggml.tokens[" + std::to_string(i) + "] is not valid UTF-8");
      }
    }
    return Status::Corruption(path + ": a tokenizer.ggml.merges entry is not valid UTF-8");
  }

  out.bos_id = add_bos ? bos : -1;
  if (add_bos && bos < 0) return Status::Corruption(path + ": add_bos_token is true but bos_token_id is missing");
  auto stop = [&](int id) {
    if (id >= 0 && std::find(out.stop_ids.begin(), out.stop_ids.end(), id) == out.stop_ids.end()) {
      out.stop_ids.push_back(id);
    }
  };
  stop(eos);
  stop(eot);
  stop(eom);
  for (size_t i = 0; i < n; ++i) {
    if (types[i] == kControl && EndOfTurnText(tokens[i])) stop(static_cast<int>(i));
  }
  if (out.stop_ids.empty()) return Status::Corruption(path + ": no tokenizer.ggml.eos_token_id");
  ASSIGN_OR_RETURN(out.chat_template, f.GetStringOr("tokenizer.chat_template", ""));
  if (bos >= 0) out.bos_text = tokens[bos];
  if (eos >= 0) out.eos_text = tokens[eos];
  return out;
}

}  // namespace llmflash

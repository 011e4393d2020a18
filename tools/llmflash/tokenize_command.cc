// `llmflash tokenize`: text to ids (or ids to text) with a model's tokenizer
// or a tokenizer file/directory.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "llmflash/llmflash.h"
#include "format/gguf.h"
#include "format/gguf_tokenizer.h"
#include "model/hf_tokenizer.h"
#include "tools/llmflash/commands.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash::tools {

namespace {

StatusOr<std::vector<int>> ParseIds(const std::string& text) {
  std::vector<int> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v > (1 << 30)) {
      return Status::InvalidArgument("\"" + item + "\" is not a token id");
    }
    ids.push_back(static_cast<int>(v));
  }
  return ids;
}

void PrintIds(const std::vector<int>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
}

// The texts to encode: --text, or --text-file split on --separator.
StatusOr<std::vector<std::string>> Texts(const Flags& f) {
  if (f.Has("text")) return std::vector<std::string>{f.Get("text")};
  ASSIGN_OR_RETURN(std::string all, ReadFileToString(f.Get("text-file"), 1ull << 30));
  std::string sep;  // with the escapes \n, \t and \\ understood
  const std::string raw = f.Get("separator");
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size() && (raw[i + 1] == 'n' || raw[i + 1] == 't' || raw[i + 1] == '\\')) {
      sep += raw[i + 1] == 'n' ? '\n' : raw[i + 1] == 't' ? '\t' : '\\';
      ++i;
    } else {
      sep += raw[i];
    }
  }
  if (sep.empty()) return std::vector<std::string>{all};
  std::vector<std::string> texts;
  size_t pos = 0;
  while (true) {
    size_t end = all.find(sep, pos);
    if (end == std::string::npos) {
      if (pos < all.size()) texts.push_back(all.substr(pos));  // a trailing separator ends the last text
      break;
    }
    texts.push_back(all.substr(pos, end - pos));
    pos = end + sep.size();
  }
  return texts;
}

}  // namespace

int TokenizeCommand(const Flags& f) {
  Status st = f.Check({"model", "tokenizer", "text", "text-file", "separator", "decode", "bos-id",
                       "parse-special", "add-special"});
  if (st.ok() && f.Has("model") == f.Has("tokenizer")) {
    st = Status::InvalidArgument("give exactly one of --model DIR or --tokenizer FILE_OR_DIR");
  }
  if (st.ok() && f.Has("text") + f.Has("text-file") + f.Has("decode") != 1) {
    st = Status::InvalidArgument("give exactly one of --text TEXT, --text-file FILE or --decode 1,2,3");
  }
  if (st.ok() && f.Has("separator") && !f.Has("text-file")) {
    st = Status::InvalidArgument("--separator splits a --text-file");
  }
  if (!st.ok()) return Fail(st);
  const bool parse_special = f.Has("parse-special");
  std::vector<std::string> texts;
  if (!f.Has("decode")) {
    auto t = Texts(f);
    if (!t.ok()) return Fail(t.status());
    texts = std::move(*t);
  }
  if (f.Has("model")) {
    auto model = Model::Open(f.Get("model"), {.max_context = 1});
    if (!model.ok()) return Fail(model.status());
    if (f.Has("decode")) {
      auto ids = ParseIds(f.Get("decode"));
      if (!ids.ok()) return Fail(ids.status());
      std::string out;
      int prev = -1;
      for (int id : *ids) { out += (*model)->Decode(prev, id); prev = id; }
      std::cout << out << "\n";
      return 0;
    }
    for (const std::string& text : texts) {
      auto ids = (*model)->Encode(text, true);
      if (!ids.ok()) return Fail(ids.status());
      PrintIds(*ids);
    }
    return 0;
  }
  // A GGUF file's tokenizer comes from its metadata, with its own BOS.
  const std::string path = f.Get("tokenizer");
  int gguf_bos = -1;
  StatusOr<HfTokenizer> tok = Status::Internal("no tokenizer");
  if (LooksLikeGguf(path)) {
    auto file = GgufFile::Open(path);
    if (!file.ok()) return Fail(file.status());
    auto g = TokenizerFromGguf(*file);
    if (!g.ok()) return Fail(g.status());
    gguf_bos = g->bos_id;
    tok = HfTokenizer::FromJson(g->tokenizer_json, path);
  } else {
    tok = HfTokenizer::Load(path);
  }
  if (!tok.ok()) return Fail(tok.status());
  if (f.Has("decode")) {
    auto ids = ParseIds(f.Get("decode"));
    if (!ids.ok()) return Fail(ids.status());
    std::cout << tok->Decode(*ids) << "\n";
    return 0;
  }
  auto bos = f.GetInt("bos-id", -1);
  if (!bos.ok()) return Fail(bos.status());
  for (const std::string& text : texts) {
    std::vector<int> ids;
    if (*bos >= 0) ids.push_back(static_cast<int>(*bos));
    if (f.Has("add-special") && gguf_bos >= 0) ids.push_back(gguf_bos);
    if (f.Has("add-special")) ids.insert(ids.end(), tok->prefix_ids().begin(), tok->prefix_ids().end());
    std::vector<int> body = tok->Encode(text, parse_special);
    ids.insert(ids.end(), body.begin(), body.end());
    if (f.Has("add-special")) ids.insert(ids.end(), tok->suffix_ids().begin(), tok->suffix_ids().end());
    PrintIds(ids);
  }
  return 0;
}

}  // namespace llmflash::tools

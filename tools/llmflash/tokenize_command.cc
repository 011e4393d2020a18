// `llmflash tokenize`: text to ids (or ids to text) with a model's tokenizer
// or a tokenizer file/directory.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "llmflash/llmflash.h"
#include "model/hf_tokenizer.h"
#include "tools/llmflash/commands.h"

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

}  // namespace

int TokenizeCommand(const Flags& f) {
  Status st = f.Check({"model", "tokenizer", "text", "decode", "bos-id"});
  if (st.ok() && f.Has("model") == f.Has("tokenizer")) {
    st = Status::InvalidArgument("give exactly one of --model DIR or --tokenizer FILE_OR_DIR");
  }
  if (st.ok() && f.Has("text") == f.Has("decode")) {
    st = Status::InvalidArgument("give exactly one of --text TEXT or --decode 1,2,3");
  }
  if (!st.ok()) return Fail(st);
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
    auto ids = (*model)->Encode(f.Get("text"), true);
    if (!ids.ok()) return Fail(ids.status());
    for (size_t i = 0; i < ids->size(); ++i) std::cout << (i ? " " : "") << (*ids)[i];
    std::cout << "\n";
    return 0;
  }
  auto tok = HfTokenizer::Load(f.Get("tokenizer"));
  if (!tok.ok()) return Fail(tok.status());
  if (f.Has("decode")) {
    auto ids = ParseIds(f.Get("decode"));
    if (!ids.ok()) return Fail(ids.status());
    std::cout << tok->Decode(*ids) << "\n";
    return 0;
  }
  auto bos = f.GetInt("bos-id", -1);
  if (!bos.ok()) return Fail(bos.status());
  std::vector<int> ids = tok->Encode(f.Get("text"));
  if (*bos >= 0) ids.insert(ids.begin(), static_cast<int>(*bos));
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
  return 0;
}

}  // namespace llmflash::tools

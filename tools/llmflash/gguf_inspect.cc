// `llmflash inspect --model FILE.gguf`: what a GGUF file holds and what
// `convert` would make of it, without converting.
#include <cstdio>
#include <map>

#include "format/gguf.h"
#include "format/gguf_tokenizer.h"
#include "format/gguf_types.h"
#include "tools/llmflash/commands.h"

namespace llmflash::tools {

int InspectGguf(const std::string& path) {
  auto f = GgufFile::Open(path);
  if (!f.ok()) return Fail(f.status());
  auto arch = f->GetStringOr("general.architecture", "?");
  if (!arch.ok()) return Fail(arch.status());
  auto name = f->GetStringOr("general.name", "");
  std::printf("file             %s: GGUF v%u, %zu tensors, %zu metadata keys, alignment %u\n", path.c_str(),
              f->version(), f->tensors().size(), f->metadata().size(), f->alignment());
  std::printf("architecture     %s%s%s\n", arch->c_str(), name.ok() && !name->empty() ? ", " : "",
              name.ok() ? name->c_str() : "");
  auto get = [&](const char* key) {
    auto v = f->GetIntOr(*arch + "." + key, -1);
    return v.ok() ? *v : -1;
  };
  std::printf("shape            %lld layers, dim %lld, %lld FFN neurons/layer, %lld heads (%lld KV), context %lld\n",
              (long long)get("block_count"), (long long)get("embedding_length"),
              (long long)get("feed_forward_length"), (long long)get("attention.head_count"),
              (long long)get("attention.head_count_kv"), (long long)get("context_length"));
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  for (const GgufTensorInfo& t : f->tensors()) {
    std::string type = t.type == GgmlType::kUnknown ? "type " + std::to_string(t.type_id) : GgmlTypeName(t.type);
    by_type[type].first++;
    by_type[type].second += t.bytes;
  }
  for (const auto& [type, c] : by_type) {
    std::printf("tensors          %-6s %4d tensors, %.3f MiB\n", type.c_str(), c.first, c.second / 1048576.0);
  }
  auto tok = TokenizerFromGguf(*f);
  if (!tok.ok()) {
    std::printf("tokenizer        none (%s)\n", tok.status().message().c_str());
  } else {
    std::string stops;
    for (int id : tok->stop_ids) stops += (stops.empty() ? "" : " ") + std::to_string(id);
    std::printf("tokenizer        %s%s%s, %d tokens, BOS %s, generation stops at %s\n", tok->model.c_str(),
                tok->pre.empty() ? "" : " / ", tok->pre.c_str(), tok->vocab_size,
                tok->bos_id >= 0 ? std::to_string(tok->bos_id).c_str() : "none", stops.c_str());
    std::printf("chat template    %s\n", tok->chat_template.empty() ? "none"
                                                                    : (std::to_string(tok->chat_template.size()) +
                                                                       " bytes").c_str());
  }
  return 0;
}

}  // namespace llmflash::tools

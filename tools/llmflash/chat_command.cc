// `llmflash render-chat` (a conversation through a chat template, printed)
// and `llmflash chat` (a conversation with a model on stdin).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "llmflash/llmflash.h"
#include "model/chat_template.h"
#include "tools/llmflash/commands.h"
#include "util/file.h"

namespace llmflash::tools {

int RenderChatCommand(const Flags& f) {
  Status st = f.Check({"template", "model", "messages", "add-generation-prompt", "bos-token", "eos-token"});
  if (st.ok() && f.Has("template") == f.Has("model")) {
    st = Status::InvalidArgument("give exactly one of --template FILE.jinja or --model DIR");
  }
  if (st.ok()) st = f.Require("messages");
  if (st.ok() && f.Has("model") && (f.Has("bos-token") || f.Has("eos-token"))) {
    st = Status::InvalidArgument("--bos-token/--eos-token go with --template (a model knows its own)");
  }
  if (!st.ok()) return Fail(st);
  const std::string messages_path = f.Get("messages");
  auto text = ReadFileToString(messages_path, 64ull << 20);
  if (!text.ok()) return Fail(text.status());
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  // A list of {role, content}, or an object with "messages" (conversations.json's entries).
  if (j.is_object() && j.contains("messages")) j = j["messages"];
  std::vector<ChatMessage> messages;
  if (!j.is_array()) return Fail(Status::InvalidArgument(messages_path + ": not a list of {role, content} messages"));
  for (const auto& m : j) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() ||
        (m.contains("content") && !m["content"].is_string())) {
      return Fail(Status::InvalidArgument(messages_path + ": a message is not {\"role\": text, \"content\": text}"));
    }
    messages.push_back({m["role"].get<std::string>(), m.value("content", std::string())});
  }
  const bool gen = f.Has("add-generation-prompt");
  StatusOr<std::string> out = Status::Internal("unset");
  if (f.Has("model")) {
    auto model = Model::Open(f.Get("model"), {.max_context = 1});
    if (!model.ok()) return Fail(model.status());
    out = (*model)->RenderChat(messages, gen);
  } else {
    auto src = ReadFileToString(f.Get("template"), 16ull << 20);
    if (!src.ok()) return Fail(src.status());
    auto tmpl = ChatTemplate::Parse(*src, f.Get("template"));
    if (!tmpl.ok()) return Fail(tmpl.status());
    out = tmpl->Apply(messages, gen, f.Get("bos-token"), f.Get("eos-token"));
  }
  if (!out.ok()) return Fail(out.status());
  std::cout << *out << std::flush;  // exactly the rendered text
  return 0;
}

int ChatCommand(const Flags& f) {
  Status st = f.Check({"model", "system", "max-tokens", "temperature", "top-p", "seed", "top-k", "min-p",
                       "repeat-penalty", "repeat-last-n", "dram-budget", "window",
                       "io-backend", "device-profile", "threads", "max-context", "kv-cache", "no-predictor",
                       "stats", "prefill", "prefill-batch", "stop"});
  if (st.ok()) st = f.Require("model");
  if (!st.ok()) return Fail(st);
  auto generate = GenerateOptionsFromFlags(f);
  if (!generate.ok()) return Fail(generate.status());
  GenerateOptions g = *generate;
  g.add_bos = false;  // the template writes BOS and the turn markers
  g.parse_special = true;
  const std::string dir = f.Get("model");
  auto options = OptionsFromFlags(f, dir);
  if (!options.ok()) return Fail(options.status());
  auto model = Model::Open(dir, *options);
  if (!model.ok()) return Fail(model.status());
  auto session = (*model)->NewSession({.use_predictor = !f.Has("no-predictor")});
  if (!session.ok()) return Fail(session.status());
  std::vector<ChatMessage> messages;
  if (f.Has("system")) messages.push_back({"system", f.Get("system")});
  // The text the session's context holds: each turn appends what the
  // template renders after it, so only the new turn runs.
  std::string held;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "/exit") break;
    messages.push_back({"user", line});
    auto prompt = (*model)->RenderChat(messages, /*add_generation_prompt=*/true);
    if (!prompt.ok()) return Fail(prompt.status());
    std::string_view fresh = *prompt;
    if (!held.empty() && fresh.substr(0, held.size()) == held) {
      fresh.remove_prefix(held.size());
    } else if (!held.empty()) {
      // The template rewrote an earlier turn (some drop old reasoning, trim
      // replies): the conversation runs again from its start.
      std::cerr << "(the chat template changed earlier turns: the conversation runs again)\n";
      (*session)->Reset();
    }
    std::string reply;
    const size_t turn = (*session)->stats().turns.size();
    st = (*session)->Generate(fresh, g, [&](TokenId, std::string_view piece) {
      reply += piece;
      std::cout << piece << std::flush;
      return true;
    });
    std::cout << "\n" << std::flush;
    if (!st.ok()) return Fail(st);
    if (f.Has("stats") && turn < (*session)->stats().turns.size()) {
      const TurnStats& t = (*session)->stats().turns[turn];
      std::fprintf(stderr,
                   "[turn: %llu new prompt tokens in %.1f ms (%.1f tokens/s), first token after %.1f ms, "
                   "%llu generated in %.1f ms; context %zu tokens]\n",
                   (unsigned long long)t.prompt_tokens, t.prefill_ms,
                   t.prefill_ms > 0 ? t.prompt_tokens * 1000.0 / t.prefill_ms : 0.0, t.ttft_ms,
                   (unsigned long long)t.generated_tokens, t.decode_ms, (*session)->context().size());
    }
    held = *prompt + reply;
    messages.push_back({"assistant", reply});
  }
  return 0;
}

}  // namespace llmflash::tools

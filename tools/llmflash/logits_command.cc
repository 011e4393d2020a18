// `llmflash logits`: the logits at every position of a token-id sequence,
// for parity checks against other implementations.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "llmflash/llmflash.h"
#include "tools/llmflash/commands.h"

namespace llmflash::tools {

int LogitsCommand(const Flags& f) {
  Status st = f.Check({"model", "token-ids", "json", "dram-budget", "window", "io-backend", "device-profile", "threads",
                       "no-predictor", "max-context", "kv-cache"});
  if (st.ok()) st = f.Require("model");
  if (st.ok()) st = f.Require("token-ids");
  if (!st.ok()) return Fail(st);
  std::vector<TokenId> ids;
  std::stringstream ss(f.Get("token-ids"));
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v > (1 << 30)) {
      return Fail(Status::InvalidArgument("--token-ids: \"" + item + "\" is not a token id"));
    }
    ids.push_back(static_cast<TokenId>(v));
  }
  std::string dir = f.Get("model");
  auto options = OptionsFromFlags(f, dir);
  if (!options.ok()) return Fail(options.status());
  auto model = Model::Open(dir, *options);
  if (!model.ok()) return Fail(model.status());
  auto session = (*model)->NewSession({.use_predictor = !f.Has("no-predictor")});
  if (!session.ok()) return Fail(session.status());
  auto logits = (*session)->Logits(ids);
  if (!logits.ok()) return Fail(logits.status());
  const size_t vocab = (*model)->info().vocab_size;
  nlohmann::json rows = nlohmann::json::array();
  for (size_t p = 0; p < ids.size(); ++p) {
    std::vector<float> row(logits->begin() + p * vocab, logits->begin() + (p + 1) * vocab);
    if (!f.Has("json")) {
      std::printf("%zu:", p);
      for (float x : row) std::printf(" %.6g", x);
      std::printf("\n");
    }
    rows.push_back(row);
  }
  if (f.Has("json")) {
    std::ofstream out(f.Get("json"));
    out << nlohmann::json{{"token_ids", ids}, {"logits", rows}}.dump() << "\n";
    if (!out) return Fail(Status::IOError(f.Get("json") + ": write failed"));
  }
  return 0;
}

}  // namespace llmflash::tools

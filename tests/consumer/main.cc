// Generates from a model directory through the installed public API only.
#include <iostream>

#include "llmflash/llmflash.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer MODEL_DIR\n";
    return 2;
  }
  auto model = llmflash::Model::Open(argv[1], llmflash::ModelOptions{.dram_budget_bytes = 64 << 20});
  if (!model.ok()) {
    std::cerr << model.status().ToString() << "\n";
    return 1;
  }
  auto session = (*model)->NewSession(llmflash::SessionOptions{});
  if (!session.ok()) {
    std::cerr << session.status().ToString() << "\n";
    return 1;
  }
  llmflash::Status st = (*session)->Generate(
      "Once upon a time", llmflash::GenerateOptions{.max_tokens = 16, .temperature = 0.0f},
      [](llmflash::TokenId, std::string_view piece) {
        std::cout << piece;
        return true;
      });
  std::cout << "\n";
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 1;
  }
  const llmflash::Stats& stats = (*session)->stats();
  std::cout << stats.tokens.size() << " tokens\n";
  return 0;
}

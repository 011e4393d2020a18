// Subcommands of the llmflash CLI that live in their own files.
#ifndef LLMFLASH_TOOLS_LLMFLASH_COMMANDS_H_
#define LLMFLASH_TOOLS_LLMFLASH_COMMANDS_H_

#include "llmflash/options.h"
#include "llmflash/status.h"
#include "tools/common/flags.h"

namespace llmflash::tools {

int Fail(const Status& st);
int TrainPredictorCommand(const Flags& flags);
int EvalCommand(const Flags& flags);
int LogitsCommand(const Flags& flags);
int TokenizeCommand(const Flags& flags);
int SynthCommand(const Flags& flags);
int RenderChatCommand(const Flags& flags);
int ChatCommand(const Flags& flags);
// inspect of a GGUF file (before conversion).
int InspectGguf(const std::string& path);

// ModelOptions from --dram-budget, --window and --io-backend.
StatusOr<ModelOptions> OptionsFromFlags(const Flags& f, const std::string& dir);
// GenerateOptions from --max-tokens, --temperature, --top-p and --seed.
StatusOr<GenerateOptions> GenerateOptionsFromFlags(const Flags& f);

}  // namespace llmflash::tools

#endif  // LLMFLASH_TOOLS_LLMFLASH_COMMANDS_H_

// Choosing the importer from what the input holds, never from its name.
#include <sys/stat.h>

#include "format/gguf.h"
#include "format/manifest.h"
#include "llmflash/convert.h"
#include "util/file.h"
#include "util/macros.h"

namespace llmflash {

StatusOr<std::string> DetectCheckpointFormat(const std::string& path) {
  struct stat st;
  if (path.empty() || stat(path.c_str(), &st) != 0) return Status::NotFound(path + ": no such file or directory");
  if (S_ISDIR(st.st_mode)) {
    if (FileSize(JoinPath(path, "config.json")).ok()) return std::string("hf");
    if (FileSize(JoinPath(path, kManifestName)).ok()) {
      return Status::InvalidArgument(path + ": already an llmflash model directory (it holds manifest.json)");
    }
    return Status::InvalidArgument(path + ": a directory without config.json (a Hugging Face checkpoint is "
                                          "config.json with safetensors)");
  }
  if (LooksLikeGguf(path)) return std::string("gguf");
  // Everything else is offered to the llama2.c importer, whose header
  // checks say precisely what is wrong with a file that is not one.
  return std::string("llama2c");
}

Status Convert(const ConvertOptions& options) {
  ASSIGN_OR_RETURN(std::string format, DetectCheckpointFormat(options.input));
  if (format == "gguf") return ConvertGguf(options);
  if (format == "hf") return ConvertHuggingFace(options);
  return ConvertLlama2c(options);
}

}  // namespace llmflash

// ModelWriter: writes a model directory (docs/format.md) from weights given
// in f32, whatever the checkpoint format. Importers call it; nothing else
// writes model files.
//
// Files are written under temporary names and renamed into place by
// Finish(), manifest last, so a failed conversion never leaves a directory
// that looks complete. Not thread-safe.
#ifndef LLMFLASH_FORMAT_MODEL_WRITER_H_
#define LLMFLASH_FORMAT_MODEL_WRITER_H_

#include <functional>
#include <string>
#include <vector>

#include "format/bundle_layout.h"
#include "format/manifest.h"
#include "llmflash/convert.h"
#include "llmflash/status.h"
#include "util/file.h"

namespace llmflash {

inline constexpr char kResidentFileName[] = "resident.bin";
inline constexpr char kBundleFileName[] = "ffn.bundle";

// The storage types a conversion asks for (ConvertOptions::dtype and its
// overrides).
struct StorageTypes {
  DType resident = DType::kF32;   // attention and projection matrices
  DType ffn = DType::kF32;        // FFN records
  DType embedding = DType::kF32;  // token and position embeddings, classifier
};

// The types ConvertOptions asks for (InvalidArgument naming an unknown one).
StatusOr<StorageTypes> StorageTypesFor(const ConvertOptions& o);

class ModelWriter {
 public:
  // Creates `dir` (it may exist but must not hold a manifest). A type whose
  // blocks do not divide a tensor's rows gives way to f16 for that tensor
  // (the FFN records: for all of them), said through `note` if set.
  Status Begin(const std::string& dir, const ModelConfig& config, StorageTypes types,
               std::function<void(const std::string&)> note = nullptr);

  // Appends a resident tensor of the given shape (row-major f32 data), in
  // its type: vectors f32; tok_embeddings, pos_embeddings and output the
  // embedding type; other matrices the resident type.
  Status AddResidentTensor(const std::string& name, std::vector<uint64_t> shape,
                           const float* data);

  // Appends layer `layer` (layers in order). gate and up: ffn_dim x dim
  // row-major (gate null for ungated FFNs); down: dim x ffn_dim row-major,
  // i.e. as stored in checkpoints. Neuron i's record takes gate row i, up row
  // i and column i of down.
  Status AddFfnLayer(int layer, const float* gate, const float* up,
                     const float* down);

  // Copies the tokenizer file into the directory. bos_id -1: no BOS;
  // stop_ids: every token that ends generation, the end-of-sequence one first.
  Status AddTokenizer(const std::string& source_path, const std::string& type,
                      int bos_id, int eos_id);
  Status AddTokenizer(const std::string& source_path, const std::string& type, int bos_id,
                      const std::vector<int>& stop_ids);
  // Stores a chat template (after AddTokenizer) with the BOS/EOS text it is
  // rendered with.
  Status AddChatTemplate(const std::string& text, const std::string& bos_text, const std::string& eos_text);

  // Closes files, checks every layer was written and writes manifest.json.
  Status Finish();

 private:
  // The type a tensor of these rows is stored in: `want`, or f16 (and a
  // note) when its blocks do not fit the rows.
  DType Fit(DType want, uint64_t cols, const std::string& what);

  std::string dir_;
  StorageTypes types_;
  std::function<void(const std::string&)> note_;
  Manifest manifest_;
  BundleLayout layout_;
  WritableFile resident_;
  WritableFile bundle_;
  int layers_written_ = 0;
};

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_MODEL_WRITER_H_

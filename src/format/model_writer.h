// ModelWriter: writes a model directory (docs/format.md) from weights given
// in f32, whatever the checkpoint format. Importers call it; nothing else
// writes model files.
//
// Files are written under temporary names and renamed into place by
// Finish(), manifest last, so a failed conversion never leaves a directory
// that looks complete. Not thread-safe.
#ifndef LLMFLASH_FORMAT_MODEL_WRITER_H_
#define LLMFLASH_FORMAT_MODEL_WRITER_H_

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "format/bundle_layout.h"
#include "format/gguf_types.h"
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

// Rows handed to the writer in a storage type of their own, e.g. blocks
// read from a GGUF file. `source` names where they came from ("Q4_K") for
// the error account; null for rows read as f32.
struct SourceRows {
  GgmlType type = GgmlType::kF32;
  const void* data = nullptr;
  const char* source = nullptr;
};

// What storing rows in another type cost: relative RMS error of the stored
// values against the given ones, per "source -> stored" pair.
struct RequantError {
  double err2 = 0, ref2 = 0;
  uint64_t elements = 0;
  double relative_rms() const { return ref2 > 0 ? std::sqrt(err2 / ref2) : 0.0; }
};

class ModelWriter {
 public:
  // Creates `dir` (it may exist but must not hold a manifest). A type whose
  // blocks do not divide a tensor's rows gives way to f16 for that tensor
  // (the FFN records: for all of them), said through `note` if set.
  Status Begin(const std::string& dir, const ModelConfig& config, StorageTypes types,
               std::function<void(const std::string&)> note = nullptr);

  // Appends a resident tensor of the given shape (row-major f32 data), in
  // its type: vectors and routers (names ending .router) f32; tok_embeddings, pos_embeddings and output the
  // embedding type; other matrices the resident type.
  Status AddResidentTensor(const std::string& name, std::vector<uint64_t> shape,
                           const float* data);
  // The same from rows in their own type: copied byte for byte when the
  // tensor is stored in a type with the same blocks, converted through f32
  // (and the error counted) otherwise.
  Status AddResidentTensor(const std::string& name, std::vector<uint64_t> shape, SourceRows rows);

  // Appends layer `layer` (layers in order). gate and up: ffn_dim x dim
  // row-major (gate null for ungated FFNs); down: dim x ffn_dim row-major,
  // i.e. as stored in checkpoints. Neuron i's record takes gate row i, up row
  // i and column i of down.
  Status AddFfnLayer(int layer, const float* gate, const float* up,
                     const float* down);
  // The same with gate and up rows in their own type (copied when the FFN
  // type has the same blocks). Down columns are always rebuilt from f32;
  // `down_source` names the type they came from for the error account.
  Status AddFfnLayer(int layer, SourceRows gate, SourceRows up, const float* down, const char* down_source);
  // The next `count` records of layer `layer` (its records in order, the
  // layer done after ffn_dim of them): gate and up count x dim, down dim x
  // count. A layer of experts goes expert by expert in bounded memory.
  Status AddFfnRecords(int layer, int count, SourceRows gate, SourceRows up, const float* down,
                       const char* down_source = nullptr);

  // Copies the tokenizer file into the directory. bos_id -1: no BOS;
  // stop_ids: every token that ends generation, the end-of-sequence one first.
  Status AddTokenizer(const std::string& source_path, const std::string& type,
                      int bos_id, int eos_id);
  Status AddTokenizer(const std::string& source_path, const std::string& type, int bos_id,
                      const std::vector<int>& stop_ids);
  // Writes tokenizer.json from its text (an importer that builds one).
  Status AddTokenizerJson(const std::string& text, int bos_id, const std::vector<int>& stop_ids);
  // Stores a chat template (after AddTokenizer) with the BOS/EOS text it is
  // rendered with.
  Status AddChatTemplate(const std::string& text, const std::string& bos_text, const std::string& eos_text);

  // Closes files, checks every layer was written and writes manifest.json.
  Status Finish();

  // The error of every conversion of SourceRows (or down columns with a
  // source) into another type, by "what: source -> stored".
  const std::map<std::string, RequantError>& requant_errors() const { return errors_; }
  // Bytes copied verbatim from SourceRows.
  uint64_t carried_bytes() const { return carried_bytes_; }

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
  int records_written_ = 0;  // of the layer being written
  std::map<std::string, RequantError> errors_;
  uint64_t carried_bytes_ = 0;
  std::vector<float> source_f32_, stored_f32_;  // one row, for StoreRow and CountError

  Status AddTokenizerBytes(const std::string& bytes, const std::string& type, int bos_id,
                           const std::vector<int>& stop_ids);
  // Stores one row of `cols` elements of `in` as `type` at `out`; counts
  // the error under `what` when it is not a verbatim copy.
  void StoreRow(const SourceRows& in, uint64_t row, uint64_t cols, DType type, const std::string& what, char* out);
  // Adds to errors_[key] the error of `stored` (n elements of `type`) against `ref`.
  void CountError(const std::string& key, const float* ref, const void* stored, DType type, uint64_t n);
};

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_MODEL_WRITER_H_

// ModelWriter: resident tensors, bundled FFN records, tokenizer, manifest.
#include "format/model_writer.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include "util/quantize.h"
#include "util/crc32c.h"
#include "util/half.h"
#include "util/macros.h"

namespace llmflash {
namespace {

constexpr char kTmpSuffix[] = ".tmp";

Status RenameInto(const std::string& dir, const std::string& name) {
  std::string from = JoinPath(dir, name) + kTmpSuffix;
  std::string to = JoinPath(dir, name);
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    return Status::IOError(to + ": rename failed: " + std::strerror(errno));
  }
  return Status::OK();
}

}  // namespace

StatusOr<StorageTypes> StorageTypesFor(const ConvertOptions& o) {
  auto parse = [](const std::string& flag, const std::string& s, DType fallback) -> StatusOr<DType> {
    if (s.empty()) return fallback;
    auto d = ParseDType(s);
    if (!d) return Status::InvalidArgument(flag + " \"" + s + "\" is not " + DTypeChoices());
    return *d;
  };
  ASSIGN_OR_RETURN(DType all, parse("dtype", o.dtype, DType::kF32));
  StorageTypes t;
  ASSIGN_OR_RETURN(t.resident, parse("resident dtype", o.resident_dtype, all));
  ASSIGN_OR_RETURN(t.ffn, parse("ffn dtype", o.ffn_dtype, all));
  // With q4_0 matrices, q8_0 embeddings and classifier cut stories260K's
  // perplexity cost from +14.3% to +11.7% for 9% more bytes (docs/format.md).
  ASSIGN_OR_RETURN(t.embedding,
                   parse("embedding dtype", o.embedding_dtype, t.resident == DType::kQ4_0 ? DType::kQ8_0 : t.resident));
  return t;
}

DType ModelWriter::Fit(DType want, uint64_t cols, const std::string& what) {
  if (FitsBlocks(want, cols)) return want;
  if (note_) {
    note_(what + ": rows of " + std::to_string(cols) + " elements are not whole " + DTypeName(want) +
          " blocks of " + std::to_string(Traits(want).block_elements) + "; stored as f16");
  }
  return DType::kF16;
}

Status ModelWriter::Begin(const std::string& dir, const ModelConfig& config, StorageTypes types,
                          std::function<void(const std::string&)> note) {
  dir_ = dir;
  types_ = types;
  note_ = std::move(note);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::IOError(dir + ": cannot create directory: " + std::strerror(errno));
  }
  struct stat st;
  if (stat(JoinPath(dir, kManifestName).c_str(), &st) == 0) {
    return Status::InvalidArgument(dir + ": already holds a model (manifest.json exists); "
                                   "choose a new output directory");
  }
  manifest_ = Manifest{};
  manifest_.config = config;
  manifest_.dtype = types.resident;
  manifest_.ffn_dtype = Fit(types.ffn, config.dim, "FFN records");
  manifest_.resident_file = kResidentFileName;
  layout_ = ComputeBundleLayout(config.dim, config.ffn_dim, config.n_layers,
                                config.ffn_gated, manifest_.ffn_dtype);
  manifest_.bundle.file = kBundleFileName;
  manifest_.bundle.record_bytes = layout_.record_bytes;
  manifest_.bundle.record_stride = layout_.record_stride;
  manifest_.bundle.layer_offsets = layout_.layer_offsets;
  RETURN_IF_ERROR(resident_.Open(JoinPath(dir, kResidentFileName) + kTmpSuffix));
  return bundle_.Open(JoinPath(dir, kBundleFileName) + kTmpSuffix);
}

void ModelWriter::CountError(const std::string& key, const float* ref, const void* stored, DType type, uint64_t n) {
  stored_f32_.resize(n);
  const float* back = stored_f32_.data();
  DequantizeGgmlRow(GgmlTypeOf(type), stored, n, stored_f32_.data());
  RequantError& e = errors_[key];
  for (uint64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(back[i]) - ref[i];
    e.err2 += d * d;
    e.ref2 += static_cast<double>(ref[i]) * ref[i];
  }
  e.elements += n;
}

void ModelWriter::StoreRow(const SourceRows& in, uint64_t row, uint64_t cols, DType type, const std::string& what,
                           char* out) {
  const uint64_t src_bytes = GgmlRowBytes(in.type, cols);
  const char* src = static_cast<const char*>(in.data) + row * src_bytes;
  if (SameBlocksAs(in.type) == type) {
    std::memcpy(out, src, src_bytes);
    if (in.source != nullptr) carried_bytes_ += src_bytes;
    return;
  }
  source_f32_.resize(cols);
  DequantizeGgmlRow(in.type, src, cols, source_f32_.data());
  QuantizeRow(type, source_f32_.data(), static_cast<int64_t>(cols), out);
  if (in.source != nullptr) {
    CountError(what + ": " + in.source + " -> " + DTypeName(type), source_f32_.data(), out, type, cols);
  }
}

Status ModelWriter::AddResidentTensor(const std::string& name,
                                      std::vector<uint64_t> shape,
                                      const float* data) {
  return AddResidentTensor(name, std::move(shape), SourceRows{GgmlType::kF32, data, nullptr});
}

Status ModelWriter::AddResidentTensor(const std::string& name, std::vector<uint64_t> shape, SourceRows rows) {
  RETURN_IF_ERROR(resident_.PadTo(64));
  TensorEntry t;
  t.name = name;
  t.offset = resident_.size();
  t.shape = std::move(shape);
  if (t.shape.empty()) return Status::Internal(name + ": a tensor needs a shape");
  uint64_t n_rows = 1;
  for (size_t i = 0; i + 1 < t.shape.size(); ++i) n_rows *= t.shape[i];
  const uint64_t cols = t.shape.back();
  const bool embedding = name == "tok_embeddings" || name == "pos_embeddings" || name == "output";
  // A router stays f32, as llama.cpp keeps ffn_gate_inp: it is small, and
  // rounding its logits changes which experts a token picks.
  const bool router = name.ends_with(".router");
  t.dtype = t.shape.size() < 2 || router ? DType::kF32
                                         : Fit(embedding ? types_.embedding : types_.resident, cols, name);
  t.bytes = n_rows * RowBytes(t.dtype, cols);
  std::vector<char> row(RowBytes(t.dtype, cols));
  const std::string what = embedding ? name : (t.shape.size() < 2 ? "vectors" : "resident matrices");
  for (uint64_t r = 0; r < n_rows; ++r) {
    StoreRow(rows, r, cols, t.dtype, what, row.data());
    RETURN_IF_ERROR(resident_.Append(row.data(), row.size()));
  }
  manifest_.tensors.push_back(std::move(t));
  return Status::OK();
}

Status ModelWriter::AddFfnLayer(int layer, const float* gate, const float* up,
                                const float* down) {
  SourceRows g{GgmlType::kF32, gate, nullptr}, u{GgmlType::kF32, up, nullptr};
  return AddFfnLayer(layer, g, u, down, nullptr);
}

Status ModelWriter::AddFfnLayer(int layer, SourceRows gate, SourceRows up, const float* down,
                                const char* down_source) {
  if (records_written_ != 0) return Status::Internal("AddFfnLayer after part of a layer's records");
  return AddFfnRecords(layer, manifest_.config.ffn_dim, gate, up, down, down_source);
}

Status ModelWriter::AddFfnRecords(int layer, int count, SourceRows gate, SourceRows up, const float* down,
                                  const char* down_source) {
  const ModelConfig& c = manifest_.config;
  if (layer != layers_written_) return Status::Internal("FFN layers must be added in order");
  if ((gate.data != nullptr) != c.ffn_gated) return Status::Internal("gate presence mismatch");
  if (count < 1 || count > c.ffn_dim - records_written_) {
    return Status::Internal("FFN records beyond the layer's " + std::to_string(c.ffn_dim));
  }
  const int d = c.dim;
  const DType dt = manifest_.ffn_dtype;
  std::vector<float> column(d);
  std::vector<char> bytes(layout_.record_stride, 0);
  const std::string down_key = std::string("ffn_down (columns rebuilt): ") + (down_source ? down_source : "") +
                               " -> " + DTypeName(dt);
  for (int i = 0; i < count; ++i) {
    // Gate row, up row and down column each stored as a row of its own.
    if (gate.data) StoreRow(gate, i, d, dt, "ffn_gate", bytes.data() + layout_.gate_offset);
    StoreRow(up, i, d, dt, "ffn_up", bytes.data() + layout_.up_offset);
    for (int j = 0; j < d; ++j) column[j] = down[static_cast<size_t>(j) * count + i];
    char* out = bytes.data() + layout_.down_offset;
    QuantizeRow(dt, column.data(), d, out);
    if (down_source != nullptr) CountError(down_key, column.data(), out, dt, d);
    RETURN_IF_ERROR(bundle_.Append(bytes.data(), layout_.record_stride));
  }
  records_written_ += count;
  if (records_written_ < c.ffn_dim) return Status::OK();
  RETURN_IF_ERROR(bundle_.PadTo(kLayerAlignment));
  records_written_ = 0;
  ++layers_written_;
  return Status::OK();
}

Status ModelWriter::AddTokenizer(const std::string& source_path, const std::string& type, int bos_id,
                                 int eos_id) {
  return AddTokenizer(source_path, type, bos_id, std::vector<int>{eos_id});
}

Status ModelWriter::AddTokenizer(const std::string& source_path, const std::string& type, int bos_id,
                                 const std::vector<int>& stop_ids) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(source_path, 256ull << 20));
  return AddTokenizerBytes(bytes, type, bos_id, stop_ids);
}

Status ModelWriter::AddTokenizerJson(const std::string& text, int bos_id, const std::vector<int>& stop_ids) {
  return AddTokenizerBytes(text, "hf", bos_id, stop_ids);
}

Status ModelWriter::AddTokenizerBytes(const std::string& bytes, const std::string& type, int bos_id,
                                      const std::vector<int>& stop_ids) {
  if (stop_ids.empty()) return Status::InvalidArgument("AddTokenizer: no end-of-sequence token");
  const int eos_id = stop_ids[0];
  std::string name = type == "llama2c" ? "tokenizer.bin" : "tokenizer.json";
  WritableFile out;
  RETURN_IF_ERROR(out.Open(JoinPath(dir_, name)));
  RETURN_IF_ERROR(out.Append(bytes.data(), bytes.size()));
  RETURN_IF_ERROR(out.Close());
  TokenizerInfo& t = manifest_.tokenizer;
  t.type = type;
  t.file = name;
  t.bos_id = bos_id;
  t.eos_id = eos_id;
  t.stop_ids = stop_ids;
  manifest_.files.push_back({name, out.size(), out.crc32c()});
  return Status::OK();
}

Status ModelWriter::AddChatTemplate(const std::string& text, const std::string& bos_text,
                                    const std::string& eos_text) {
  const std::string name = "chat_template.jinja";
  WritableFile out;
  RETURN_IF_ERROR(out.Open(JoinPath(dir_, name)));
  RETURN_IF_ERROR(out.Append(text.data(), text.size()));
  RETURN_IF_ERROR(out.Close());
  manifest_.tokenizer.chat_template = name;
  manifest_.tokenizer.bos_text = bos_text;
  manifest_.tokenizer.eos_text = eos_text;
  manifest_.files.push_back({name, out.size(), out.crc32c()});
  return Status::OK();
}

Status ModelWriter::Finish() {
  if (layers_written_ != manifest_.config.n_layers) {
    return Status::Internal("not every FFN layer was written");
  }
  if (manifest_.tokenizer.file.empty()) {
    manifest_.tokenizer = TokenizerInfo();
    manifest_.tokenizer.type = "none";
    manifest_.tokenizer.bos_id = manifest_.tokenizer.eos_id = 0;
    manifest_.tokenizer.stop_ids = {0};
  }
  // The model's dtype names what most of its resident matrix bytes are (the
  // type asked for, unless its blocks fit few of them).
  std::map<DType, uint64_t> bytes_by_type;
  for (const TensorEntry& t : manifest_.tensors) {
    if (t.shape.size() >= 2) bytes_by_type[t.dtype] += t.bytes;
  }
  for (const auto& [type, bytes] : bytes_by_type) {
    if (bytes > bytes_by_type[manifest_.dtype]) manifest_.dtype = type;
  }
  RETURN_IF_ERROR(resident_.PadTo(kLayerAlignment));
  RETURN_IF_ERROR(resident_.Close());
  RETURN_IF_ERROR(bundle_.Close());
  manifest_.files.push_back({kResidentFileName, resident_.size(), resident_.crc32c()});
  manifest_.files.push_back({kBundleFileName, bundle_.size(), bundle_.crc32c()});
  RETURN_IF_ERROR(RenameInto(dir_, kResidentFileName));
  RETURN_IF_ERROR(RenameInto(dir_, kBundleFileName));
  std::string text = SerializeManifest(manifest_);
  WritableFile m;
  RETURN_IF_ERROR(m.Open(JoinPath(dir_, kManifestName) + kTmpSuffix));
  RETURN_IF_ERROR(m.Append(text.data(), text.size()));
  RETURN_IF_ERROR(m.Close());
  return RenameInto(dir_, kManifestName);
}

}  // namespace llmflash

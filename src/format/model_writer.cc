// ModelWriter: resident tensors, bundled FFN records, tokenizer, manifest.
#include "format/model_writer.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/crc32c.h"
#include "util/half.h"
#include "util/macros.h"

namespace llmflash {
namespace {

constexpr char kTmpSuffix[] = ".tmp";

void ConvertFloats(const float* in, size_t n, DType dt, uint16_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = dt == DType::kF16 ? FloatToF16(in[i]) : FloatToBf16(in[i]);
}

Status RenameInto(const std::string& dir, const std::string& name) {
  std::string from = JoinPath(dir, name) + kTmpSuffix;
  std::string to = JoinPath(dir, name);
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    return Status::IOError(to + ": rename failed: " + std::strerror(errno));
  }
  return Status::OK();
}

}  // namespace

StatusOr<DType> StorageDType(const ConvertOptions& o) {
  auto d = ParseDType(o.dtype);
  if (!d) return Status::InvalidArgument("dtype \"" + o.dtype + "\" is not f32, f16 or bf16");
  return *d;
}

Status ModelWriter::Begin(const std::string& dir, const ModelConfig& config,
                          DType dtype) {
  dir_ = dir;
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
  manifest_.dtype = dtype;
  manifest_.resident_file = kResidentFileName;
  layout_ = ComputeBundleLayout(config.dim, config.ffn_dim, config.n_layers,
                                config.ffn_gated, dtype);
  manifest_.bundle.file = kBundleFileName;
  manifest_.bundle.record_bytes = layout_.record_bytes;
  manifest_.bundle.record_stride = layout_.record_stride;
  manifest_.bundle.layer_offsets = layout_.layer_offsets;
  RETURN_IF_ERROR(resident_.Open(JoinPath(dir, kResidentFileName) + kTmpSuffix));
  return bundle_.Open(JoinPath(dir, kBundleFileName) + kTmpSuffix);
}

Status ModelWriter::AddResidentTensor(const std::string& name,
                                      std::vector<uint64_t> shape,
                                      const float* data) {
  RETURN_IF_ERROR(resident_.PadTo(64));
  TensorEntry t;
  t.name = name;
  t.offset = resident_.size();
  t.shape = std::move(shape);
  uint64_t n = 1;
  for (uint64_t d : t.shape) n *= d;
  // Matrices are stored in the model's dtype; norms and biases stay f32.
  t.dtype = t.shape.size() >= 2 ? manifest_.dtype : DType::kF32;
  t.bytes = n * DTypeSize(t.dtype);
  if (t.dtype == DType::kF32) {
    RETURN_IF_ERROR(resident_.Append(data, t.bytes));
  } else {
    std::vector<uint16_t> half(n);
    ConvertFloats(data, n, t.dtype, half.data());
    RETURN_IF_ERROR(resident_.Append(half.data(), t.bytes));
  }
  manifest_.tensors.push_back(std::move(t));
  return Status::OK();
}

Status ModelWriter::AddFfnLayer(int layer, const float* gate, const float* up,
                                const float* down) {
  const ModelConfig& c = manifest_.config;
  if (layer != layers_written_) return Status::Internal("FFN layers must be added in order");
  if ((gate != nullptr) != c.ffn_gated) return Status::Internal("gate presence mismatch");
  const int d = c.dim, n = c.ffn_dim;
  const DType dt = manifest_.dtype;
  std::vector<float> record(layout_.record_bytes / DTypeSize(dt), 0.0f);
  std::vector<char> bytes(layout_.record_stride, 0);
  for (int i = 0; i < n; ++i) {
    if (gate) std::memcpy(&record[layout_.gate_offset], gate + static_cast<size_t>(i) * d, d * 4);
    std::memcpy(&record[layout_.up_offset], up + static_cast<size_t>(i) * d, d * 4);
    for (int j = 0; j < d; ++j) record[layout_.down_offset + j] = down[static_cast<size_t>(j) * n + i];
    if (dt == DType::kF32) {
      std::memcpy(bytes.data(), record.data(), layout_.record_bytes);
    } else {
      ConvertFloats(record.data(), record.size(), dt, reinterpret_cast<uint16_t*>(bytes.data()));
    }
    RETURN_IF_ERROR(bundle_.Append(bytes.data(), layout_.record_stride));
  }
  RETURN_IF_ERROR(bundle_.PadTo(kLayerAlignment));
  ++layers_written_;
  return Status::OK();
}

Status ModelWriter::AddTokenizer(const std::string& source_path,
                                 const std::string& type, int bos_id, int eos_id) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(source_path, 256ull << 20));
  std::string name = type == "llama2c" ? "tokenizer.bin" : "tokenizer.json";
  WritableFile out;
  RETURN_IF_ERROR(out.Open(JoinPath(dir_, name)));
  RETURN_IF_ERROR(out.Append(bytes.data(), bytes.size()));
  RETURN_IF_ERROR(out.Close());
  manifest_.tokenizer = TokenizerInfo{type, name, bos_id, eos_id};
  manifest_.files.push_back({name, out.size(), out.crc32c()});
  return Status::OK();
}

Status ModelWriter::Finish() {
  if (layers_written_ != manifest_.config.n_layers) {
    return Status::Internal("not every FFN layer was written");
  }
  if (manifest_.tokenizer.file.empty()) manifest_.tokenizer = TokenizerInfo{"none", "", 0, 0};
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

// A GGUF writer for tests, written from the published specification
// (github.com/ggml-org/ggml/blob/master/docs/gguf.md), independent of the
// reader in src/format/gguf.cc: little-endian header, key/values, tensor
// infos, data aligned to general.alignment. Tests use it to write fixtures
// and hostile files.
#ifndef LLMFLASH_TESTS_TESTING_GGUF_WRITER_H_
#define LLMFLASH_TESTS_TESTING_GGUF_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmflash/status.h"

namespace llmflash::testing {

class GgufBuilder {
 public:
  // Scalars and arrays (element types as GGUF numbers them).
  void U32(const std::string& key, uint32_t v);
  void I32(const std::string& key, int32_t v);
  void F32(const std::string& key, float v);
  void Bool(const std::string& key, bool v);
  void Str(const std::string& key, const std::string& v);
  void StrArray(const std::string& key, const std::vector<std::string>& v);
  void F32Array(const std::string& key, const std::vector<float>& v);
  void I32Array(const std::string& key, const std::vector<int32_t>& v);
  // A key/value whose type and value bytes are given as they go in the file.
  void RawKv(const std::string& key, uint32_t type, const std::string& value_bytes);

  // ne in ggml order (ne[0] the row length); `data` its bytes in `type`
  // (a ggml type id).
  void Tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, std::string data);

  // The whole file. `alignment` is written as general.alignment when not 32.
  std::string Bytes(uint32_t version = 3, uint32_t alignment = 32) const;
  Status Write(const std::string& path, uint32_t version = 3, uint32_t alignment = 32) const;

 private:
  struct Kv { std::string key; uint32_t type; std::string value; };
  struct T { std::string name; std::vector<uint64_t> ne; uint32_t type; std::string data; };
  std::vector<Kv> kv_;
  std::vector<T> tensors_;
};

// ggml type ids used by the fixtures.
inline constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ8_0 = 8;

// Writes the Hugging Face fixture in `hf_dir` (config.json +
// model.safetensors, a Llama-family architecture) as llama.cpp's
// convert_hf_to_gguf.py would: its tensor names, Q and K rows permuted for
// "llama", matrices in `matrix_type` (F32, F16, Q8_0 or Q4_0, quantized by
// llmflash's reference quantizer), vectors F32. Llama 3 RoPE scaling goes
// in rope_freqs.weight. With `vocab` non-empty, a gpt2-model tokenizer of
// those tokens (no merges) goes in the metadata, with `chat_template` as
// tokenizer.chat_template when non-empty.
Status WriteGgufFromHf(const std::string& hf_dir, const std::string& path, uint32_t matrix_type,
                       const std::vector<std::string>& vocab = {}, const std::string& chat_template = "");

}  // namespace llmflash::testing

#endif  // LLMFLASH_TESTS_TESTING_GGUF_WRITER_H_

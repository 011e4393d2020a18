// Converting checkpoints into the llmflash model directory (docs/format.md).
//
// Thread-safety: each call is independent.
#ifndef LLMFLASH_CONVERT_H_
#define LLMFLASH_CONVERT_H_

#include <functional>
#include <string>

#include "llmflash/export.h"
#include "llmflash/status.h"

namespace llmflash {

struct ConvertOptions {
  std::string input;      // llama2.c checkpoint (.bin), a Hugging Face directory or a GGUF file
  std::string tokenizer;  // llama2.c tokenizer.bin (llama2.c input only)
  std::string output;     // model directory to create (must not hold a model)
  // Called with a fraction in [0, 1] as conversion proceeds. Optional.
  std::function<void(double fraction, const std::string& what)> progress;
  // Storage type of matrices and FFN records: f32, f16, bf16, q8_0 or q4_0
  // (docs/format.md, "Storage types"). Norms and biases stay f32.
  std::string dtype = "f32";
  // Overrides of dtype (empty: dtype): the FFN records on flash; the
  // resident matrices (attention, projections); the token and position
  // embeddings and the classifier. Empty embedding_dtype follows the
  // resident type, but q8_0 where that is q4_0 (measured: docs/format.md).
  std::string ffn_dtype, resident_dtype, embedding_dtype;
  // Called with a sentence when a tensor cannot take the type asked for (its
  // rows are not whole blocks of it) and is stored as f16 instead. Optional.
  std::function<void(const std::string& note)> note;
};

// Converts a llama2.c checkpoint (version-0 header, shared or separate
// classifier) and its tokenizer into a model directory.
LLMFLASH_EXPORT Status ConvertLlama2c(const ConvertOptions& options);

// Converts a Hugging Face checkpoint directory (config.json and
// model.safetensors, or shards with model.safetensors.index.json):
// OPTForCausalLM, LlamaForCausalLM and MistralForCausalLM. Others are refused
// with Unsupported naming them.
LLMFLASH_EXPORT Status ConvertHuggingFace(const ConvertOptions& options);

// Converts a GGUF file (llama.cpp; versions 2 and 3): architectures llama
// (Llama 2/3, Mistral), qwen2, qwen3, phi3; tensors in F32, F16, BF16,
// Q8_0, Q4_0 (carried unchanged where the stored type has their blocks),
// Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K (converted; the added error is
// reported through `note`); the tokenizer and chat template from its
// metadata. dtype "auto" (or empty) keeps each group of tensors in the
// llmflash type nearest the file's (docs/gguf.md).
LLMFLASH_EXPORT Status ConvertGguf(const ConvertOptions& options);

// What kind of checkpoint `path` is, from its contents: "gguf" (GGUF
// magic), "hf" (a directory with config.json), "llama2c" (a file with a
// plausible llama2.c header), or NotFound/InvalidArgument saying why none.
LLMFLASH_EXPORT StatusOr<std::string> DetectCheckpointFormat(const std::string& path);

// Converts whatever DetectCheckpointFormat finds.
LLMFLASH_EXPORT Status Convert(const ConvertOptions& options);

struct SynthOptions {
  // "opt", "llama", "llama3" (Llama 3.1), "qwen2" (Qwen2.5), "mixtral" (Mixtral
  // 8x7B) or "qwen3-moe" (Qwen3-30B-A3B)
  std::string arch = "opt";
  // opt/llama: tiny, 125m, 1.3b, 6.7b (llama also 7b); llama3: tiny, 8b;
  // qwen2: tiny, 7b; mixtral: tiny, 8x7b; qwen3-moe: tiny, 30b-a3b
  std::string preset = "tiny";
  std::string activation = "";    // llama: "silu" (default) or "relu"; opt: relu
  double activation_sparsity = 0.9;  // target fraction of inactive ReLU neurons
  uint64_t seed = 1;
  std::string output;             // directory to create
  // "hf": the Hugging Face layout (f16 safetensors); "llmflash": a converted
  // model directory in `dtype` (as convert --dtype), written without the
  // Hugging Face files, for shapes whose f16 files would not fit on disk.
  std::string format = "hf";
  std::string dtype = "f16";      // with format "llmflash": f32, f16, bf16, q8_0 or q4_0
  // A tokenizer.json to ship with the checkpoint (e.g. OPT's or Llama 2's
  // real one, so that text gives the distinct tokens real text gives), its
  // ids below the preset's vocabulary. Empty: a byte-level tokenizer, where
  // text has at most 256 distinct tokens. Default: empty.
  std::string tokenizer;
  std::function<void(double fraction, const std::string& what)> progress;
};

// Writes a Hugging Face-layout checkpoint (config.json with the preset's real
// shapes, f16 safetensors in shards of at most 2 GiB with an index, a byte-level
// tokenizer.json) with deterministic random weights shaped like trained ones
// where it matters here (docs/synthetic-models.md): full-rank FFN input
// matrices with a slowly decaying spectrum, an anisotropic residual stream,
// biases (OPT) or a shift (Llama) that leave about `activation_sparsity` of
// ReLU neurons inactive on average, fewer in early layers than in late ones.
// Streams: memory stays bounded whatever the preset.
LLMFLASH_EXPORT Status Synthesize(const SynthOptions& options);

// Checks every file's size and checksum against the manifest. `progress`
// (optional) is called with the fraction of bytes checked and the file name.
LLMFLASH_EXPORT Status VerifyModel(
    const std::string& dir,
    const std::function<void(double fraction, const std::string& file)>& progress = nullptr);

}  // namespace llmflash

#endif  // LLMFLASH_CONVERT_H_

// The Hugging Face importer's entry for tensors that do not come from
// safetensors files (ConvertHuggingFace in llmflash/convert.h reads those).
#ifndef LLMFLASH_FORMAT_HF_IMPORTER_H_
#define LLMFLASH_FORMAT_HF_IMPORTER_H_

#include "format/tensor_source.h"
#include "llmflash/convert.h"

namespace llmflash {

// ConvertHuggingFace with the checkpoint's tensors taken from `tensors`;
// config.json and the tokenizer files are still read from o.input.
Status ConvertHuggingFaceFrom(const ConvertOptions& o, const TensorSource& tensors);

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_HF_IMPORTER_H_

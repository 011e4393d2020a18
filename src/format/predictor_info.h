// The "predictor" section of manifest.json: parsing and serialization.
#ifndef LLMFLASH_FORMAT_PREDICTOR_INFO_H_
#define LLMFLASH_FORMAT_PREDICTOR_INFO_H_

#include <nlohmann/json.hpp>
#include <string>

#include "format/manifest.h"

namespace llmflash {

// `m` supplies the shapes (config) and the file list; already parsed.
Status ParsePredictorInfo(const nlohmann::json& j, const std::string& path, const Manifest& m,
                          PredictorInfo* out);
nlohmann::json PredictorInfoJson(const PredictorInfo& p);

}  // namespace llmflash

#endif  // LLMFLASH_FORMAT_PREDICTOR_INFO_H_

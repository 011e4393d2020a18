// Adapters from the two tokenizer formats to TextTokenizer.
#include "model/text_tokenizer.h"

#include <algorithm>

namespace llmflash {
namespace {

class Llama2cText final : public TextTokenizer {
 public:
  explicit Llama2cText(Llama2cTokenizer t) : t_(std::move(t)) {}
  std::vector<int> Encode(std::string_view text, bool add_bos, bool /*parse_special*/) const override {
    return t_.Encode(text, add_bos, false);
  }
  std::string Decode(int prev, int token) const override { return t_.Decode(prev, token); }
  int bos_id() const override { return t_.bos_id(); }
  // llama2.c ends a story at EOS or at the next story's BOS.
  bool IsStop(int id) const override { return id == t_.bos_id() || id == t_.eos_id(); }

 private:
  Llama2cTokenizer t_;
};

class HfText final : public TextTokenizer {
 public:
  HfText(HfTokenizer t, int bos, std::vector<int> stop) : t_(std::move(t)), bos_(bos), stop_(std::move(stop)) {}
  std::vector<int> Encode(std::string_view text, bool add_bos, bool parse_special) const override {
    std::vector<int> ids;
    if (add_bos && bos_ >= 0) ids.push_back(bos_);
    std::vector<int> body = t_.Encode(text, parse_special);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
  }
  std::string Decode(int prev, int token) const override {
    return t_.DecodeNext(prev == bos_ ? -1 : prev, token);
  }
  int bos_id() const override { return bos_; }
  bool IsStop(int id) const override { return std::find(stop_.begin(), stop_.end(), id) != stop_.end(); }

 private:
  HfTokenizer t_;
  int bos_;
  std::vector<int> stop_;
};

}  // namespace

std::unique_ptr<TextTokenizer> WrapLlama2c(Llama2cTokenizer t) {
  return std::make_unique<Llama2cText>(std::move(t));
}
std::unique_ptr<TextTokenizer> WrapHf(HfTokenizer t, int bos_id, std::vector<int> stop_ids) {
  return std::make_unique<HfText>(std::move(t), bos_id, std::move(stop_ids));
}

}  // namespace llmflash

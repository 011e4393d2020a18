// ChatTemplate: a model's chat template (Jinja, from tokenizer_config.json or
// a .jinja file) rendered as Python's jinja2 renders it for transformers'
// apply_chat_template: trim_blocks and lstrip_blocks on, loop controls,
// tojson as json.dumps (ensure_ascii off), raise_exception.
//
// The interpreter covers the language these templates use: {{ }}, {% %},
// {# #} with whitespace control (- and +); if/elif/else, for (tuple targets,
// an `if` filter, else, loop.index/index0/first/last/length/revindex/
// revindex0/previtem/nextitem), set (names, namespace attributes), break and
// continue; literals, lists, dicts, slices and negative indices (strings by
// code point), arithmetic, comparisons, `in`, `~`, conditional expressions;
// filters (trim, length, count, join, items, list, string, first, last, lower,
// upper, capitalize, title, replace, default, tojson, select, reject,
// selectattr, rejectattr, map(attribute=), unique, reverse, sort, int, float,
// abs, round, wordcount, indent, safe, e); tests (defined, undefined, none,
// string, number, integer, float, mapping, iterable, sequence, boolean, true,
// false, equalto/eq/==, ne, in, divisibleby, even, odd, lower, upper);
// string methods (startswith, endswith, split, rsplit, strip, lstrip, rstrip,
// replace, upper, lower, title, capitalize, find, count, join, format is
// not), dict methods (items, keys, values, get), namespace(), range(),
// raise_exception(). Anything else is an error naming it, at parse time
// where the parser can tell (an unknown tag), else when rendering reaches it.
//
// Hostile templates stay bounded: nesting depth, output size and evaluation
// steps are capped, and every failure is a Status, never a crash.
//
// Thread-safety: immutable after Parse; Render may run concurrently.
#ifndef LLMFLASH_MODEL_CHAT_TEMPLATE_H_
#define LLMFLASH_MODEL_CHAT_TEMPLATE_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmflash/options.h"
#include "llmflash/status.h"

namespace llmflash {

class ChatTemplate {
 public:
  // `name` (a file, or "tokenizer_config.json: chat_template") names the
  // template in errors.
  static StatusOr<ChatTemplate> Parse(const std::string& source, const std::string& name);

  // Renders with `context` (a JSON object: messages, add_generation_prompt,
  // bos_token, eos_token, anything else the template reads). A
  // raise_exception() in the template is an InvalidArgument carrying its
  // message.
  StatusOr<std::string> Render(const nlohmann::json& context) const;

  // The usual call: messages as {role, content}, with the generation prompt
  // and the model's BOS/EOS text.
  StatusOr<std::string> Apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                              const std::string& bos_token, const std::string& eos_token) const;

  struct Program;

 private:
  std::shared_ptr<const Program> program_;
  std::string name_;
};

}  // namespace llmflash

#endif  // LLMFLASH_MODEL_CHAT_TEMPLATE_H_

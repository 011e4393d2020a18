// Chat templates: the real templates in ../shared/chat-templates rendered as
// Python's jinja2 renders them (expected.json), the language's corners, and
// hostile templates.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/chat_template.h"
#include "testing/test_util.h"

namespace llmflash {
namespace {

using testing::IsOk;
using testing::StatusIs;
using ::testing::HasSubstr;

std::string Dir() { return testing::SharedDir() + "/chat-templates"; }

// BOS/EOS text as each family's tokenizer_config.json gives them (shared/README.md).
std::pair<std::string, std::string> Specials(const std::string& file) {
  if (file.find("Llama-3") != std::string::npos) return {"<|begin_of_text|>", "<|eot_id|>"};
  if (file.find("Qwen") != std::string::npos || file.find("SmolLM") != std::string::npos) return {"", "<|im_end|>"};
  if (file.find("gemma") != std::string::npos) return {"<bos>", "<eos>"};
  if (file.find("Phi") != std::string::npos) return {"<s>", "<|endoftext|>"};
  if (file.find("Mistral") != std::string::npos) return {"<s>", "</s>"};
  if (file.find("DeepSeek") != std::string::npos) {
    return {"<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
            "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};
  }
  ADD_FAILURE() << "no BOS/EOS known for " << file;
  return {"", ""};
}

TEST(ChatTemplate, RealTemplatesRenderAsJinja2Does) {
  auto conversations = nlohmann::json::parse(testing::ReadFile(Dir() + "/conversations.json"));
  auto expected = nlohmann::json::parse(testing::ReadFile(Dir() + "/expected.json"));
  int rendered = 0, errors = 0;
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    const std::string file = it.key();
    auto tmpl = ChatTemplate::Parse(testing::ReadFile(Dir() + "/" + file), file);
    ASSERT_THAT(tmpl.status(), IsOk()) << file;
    auto [bos, eos] = Specials(file);
    for (const auto& conv : conversations) {
      const std::string id = conv["id"];
      nlohmann::json ctx = {{"messages", conv["messages"]}, {"add_generation_prompt", conv["add_generation_prompt"]},
                            {"bos_token", bos}, {"eos_token", eos}};
      auto out = tmpl->Render(ctx);
      const auto& want = it.value()[id];
      if (want.is_object()) {  // the template raises
        EXPECT_THAT(out.status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr(want["error"].get<std::string>())))
            << file << " / " << id;
        ++errors;
      } else {
        ASSERT_THAT(out.status(), IsOk()) << file << " / " << id;
        EXPECT_EQ(*out, want.get<std::string>()) << file << " / " << id;
        ++rendered;
      }
    }
  }
  EXPECT_EQ(rendered + errors, 30);
  EXPECT_GE(errors, 1);
}

std::string Render(const std::string& src, const nlohmann::json& ctx = nlohmann::json::object()) {
  auto t = ChatTemplate::Parse(src, "t.jinja");
  EXPECT_THAT(t.status(), IsOk()) << src;
  if (!t.ok()) return "<parse error>";
  auto out = t->Render(ctx);
  EXPECT_THAT(out.status(), IsOk()) << src;
  return out.ok() ? *out : "<render error: " + out.status().message() + ">";
}

// trim_blocks removes the newline after a block tag, lstrip_blocks the
// indentation before one; "-" strips all whitespace on its side, "+" keeps
// the indentation.
TEST(ChatTemplate, WhitespaceControlIsJinja2s) {
  EXPECT_EQ(Render("{% if true %}\nyes\n{% endif %}\nafter"), "yes\nafter");
  EXPECT_EQ(Render("line\n    {% if true %}\n    x\n    {% endif %}\nend"), "line\n    x\nend");
  EXPECT_EQ(Render("a   {{- 'b' -}}   c"), "abc");
  EXPECT_EQ(Render("a\n  {%- if true %}b{% endif %}"), "ab");
  EXPECT_EQ(Render("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(Render("{# note #}\nx"), "x");
  EXPECT_EQ(Render("{{ 'v' }}\nx"), "v\nx");  // no trim after {{ }}
}

// Python's values and operators, as jinja2 evaluates them.
TEST(ChatTemplate, ExpressionsFollowPython) {
  nlohmann::json ctx = {{"m", {{{"role", "user"}, {"content", "Hi"}}, {{"role", "assistant"}, {"content", "Yo"}}}},
                        {"s", "a</think>b"}, {"n", 7}};
  EXPECT_EQ(Render("{{ m[-1].content }}|{{ m[0]['role'] }}|{{ m | length }}", ctx), "Yo|user|2");
  EXPECT_EQ(Render("{% for x in m[::-1] %}{{ x.role }}{{ ',' if not loop.last }}{% endfor %}", ctx), "assistant,user");
  EXPECT_EQ(Render("{{ s.split('</think>')[-1] }}{{ s[:-1] }}{{ 'x' ~ n ~ none }}", ctx), "ba</think>x7None");
  EXPECT_EQ(Render("{{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 * 3 + 1 }} {{ 1.5 }}"), "-4 2 3.5 7 1.5");
  EXPECT_EQ(Render("{{ [1, 'a', none, true] }} {{ {'k': [1]} }}"), "[1, 'a', None, True] {'k': [1]}");
  EXPECT_EQ(Render("{{ 'ab' in 'cabd' }} {{ 3 not in [1, 2] }} {{ 'k' in {'k': 1} }}"), "True True True");
  EXPECT_EQ(Render("{{ '\xC3\x9C' ~ 'ber'[1:] | upper }}|{{ '\xC3\x9C\xC3\x9F'[1] }}|{{ '\xC3\x9C\xC3\x9F' | length }}"),
            "\xC3\x9C" "ER|\xC3\x9F|2");
  EXPECT_EQ(Render("{{ undefined_thing }}|{{ undefined_thing is defined }}|{{ none is none }}"), "|False|True");
}

TEST(ChatTemplate, ScopesNamespacesAndLoops) {
  // set inside a loop stays in the loop; a namespace carries values out.
  EXPECT_EQ(Render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = i %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(Render("{% set ns = namespace(x=1) %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}"), "4");
  EXPECT_EQ(Render("{% for k, v in {'a': 1, 'b': 2}.items() if v > 1 %}{{ k }}={{ v }}{% endfor %}"), "b=2");
  EXPECT_EQ(Render("{% for i in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(Render("{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}"),
            "02");
  EXPECT_EQ(Render("{{ [{'r': 'u'}, {'r': 'a'}] | selectattr('r', 'equalto', 'u') | list | length }}"), "1");
  EXPECT_EQ(Render("{{ ['x', 'code', 'y'] | reject('equalto', 'code') | join(', ') }}"), "x, y");
  EXPECT_EQ(Render("{{ {'b': [1, 2], 'a': 'q\"'} | tojson }}"), "{\"b\": [1, 2], \"a\": \"q\\\"\"}");
  EXPECT_EQ(Render("{{ {'a': [1]} | tojson(indent=2) }}"), "{\n  \"a\": [\n    1\n  ]\n}");
  EXPECT_EQ(Render("{{ '  x \\n' | trim }}|{{ 'xxhixx'.strip('x') }}|{{ 'a b  c'.split() | length }}"), "x|hi|3");
}

// raise_exception is a clean error carrying the template's message; so is
// anything the interpreter does not know.
TEST(ChatTemplate, ErrorsAreStatuses) {
  auto t = ChatTemplate::Parse("{{ raise_exception('Roles must alternate') }}", "t.jinja");
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_THAT(t->Render({}).status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("t.jinja: Roles must alternate")));
  EXPECT_THAT(ChatTemplate::Parse("{% macro f() %}{% endmacro %}", "t.jinja").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("unsupported tag 'macro'")));
  EXPECT_THAT(ChatTemplate::Parse("{% if x %}never closed", "t.jinja").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("missing {% endif %}")));
  // found by fuzz_chat_template: an empty subscript was a null dereference
  EXPECT_THAT(ChatTemplate::Parse("{{ messages[].content }}", "t.jinja").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("empty subscript")));
  EXPECT_THAT(ChatTemplate::Parse("{{ 'unclosed }}", "t.jinja").status(),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("string is not closed")));
  auto filt = ChatTemplate::Parse("{{ x | frobnicate }}", "t.jinja");
  ASSERT_THAT(filt.status(), IsOk());
  EXPECT_THAT(filt->Render({}).status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("unknown filter 'frobnicate'")));
  auto add = ChatTemplate::Parse("{{ 'a' + 1 }}", "t.jinja");
  EXPECT_THAT(add->Render({}).status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("unsupported operand")));
}

// Hostile templates end with an error, never a hang, a crash or unbounded memory.
TEST(ChatTemplate, HostileTemplatesAreBounded) {
  std::string deep(5000, '(');
  EXPECT_FALSE(ChatTemplate::Parse("{{ " + deep + "1" + std::string(5000, ')') + " }}", "t.jinja").ok());
  std::string nested;
  for (int i = 0; i < 1000; ++i) nested += "{% if true %}";
  EXPECT_FALSE(ChatTemplate::Parse(nested, "t.jinja").ok());
  auto loops = ChatTemplate::Parse("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "t.jinja");
  ASSERT_THAT(loops.status(), IsOk());
  EXPECT_THAT(loops->Render({}).status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("steps")));
  auto big = ChatTemplate::Parse("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
                                 "t.jinja");
  ASSERT_THAT(big.status(), IsOk());
  EXPECT_FALSE(big->Render({}).ok());
  // A namespace holding itself (found by fuzz_chat_template as a leak under
  // LeakSanitizer): renders, and frees its memory.
  EXPECT_EQ(Render("{% set ns = namespace(n=0) %}{% set ns.self = ns %}{% set ns.n = ns.self.n + 1 %}{{ ns.n }}"), "1");
}

}  // namespace
}  // namespace llmflash

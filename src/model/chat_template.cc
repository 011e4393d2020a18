// A Jinja interpreter for chat templates: lexer (whitespace control,
// trim_blocks, lstrip_blocks), recursive-descent parser following jinja2's
// grammar and precedence, tree-walking evaluator with Python's semantics for
// the values templates handle.
#include "model/chat_template.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>

#include "util/utf8.h"

namespace llmflash {
namespace {

constexpr int kMaxDepth = 200;                   // nesting of blocks and expressions
constexpr uint64_t kMaxSteps = 4'000'000;       // evaluation steps per render (a real chat: thousands)
constexpr size_t kMaxOutput = 64u << 20;         // bytes a render may produce

// Errors inside the interpreter unwind to Parse/Render, which turn them into
// a Status; nothing escapes this file.
struct TemplateError {
  StatusCode code;
  std::string message;
};
[[noreturn]] void Fail(const std::string& msg) { throw TemplateError{StatusCode::kInvalidArgument, msg}; }

// Strings and lists a template builds are capped like its output: doubling
// a string forty times must end in an error, not in the OOM killer.
const std::string& Capped(const std::string& s) {
  if (s.size() > kMaxOutput) Fail("a string passed 64 MiB");
  return s;
}

// ---- values ----

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion order, as Python's dict

struct Value {
  enum Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace } kind = kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // kDict and kNamespace (a namespace is mutable and shared)

  static Value None() { Value v; v.kind = kNone; return v; }
  static Value Bool(bool x) { Value v; v.kind = kBool; v.b = x; return v; }
  static Value Int(int64_t x) { Value v; v.kind = kInt; v.i = x; return v; }
  static Value Float(double x) { Value v; v.kind = kFloat; v.f = x; return v; }
  static Value Str(std::string x) { Value v; v.kind = kString; v.s = std::move(x); return v; }
  static Value MakeList(List l = {}) { Value v; v.kind = kList; v.list = std::make_shared<List>(std::move(l)); return v; }
  static Value MakeDict(Dict d = {}) { Value v; v.kind = kDict; v.dict = std::make_shared<Dict>(std::move(d)); return v; }

  bool defined() const { return kind != kUndefined; }
  bool is_number() const { return kind == kInt || kind == kFloat || kind == kBool; }
  double num() const { return kind == kFloat ? f : kind == kBool ? (b ? 1 : 0) : static_cast<double>(i); }
  const Value* Find(const std::string& key) const {
    if (!dict) return nullptr;
    for (const auto& [k, v] : *dict) if (k == key) return &v;
    return nullptr;
  }
};

bool Truthy(const Value& v) {
  switch (v.kind) {
    case Value::kUndefined: case Value::kNone: return false;
    case Value::kBool: return v.b;
    case Value::kInt: return v.i != 0;
    case Value::kFloat: return v.f != 0;
    case Value::kString: return !v.s.empty();
    case Value::kList: return !v.list->empty();
    case Value::kDict: return !v.dict->empty();
    case Value::kNamespace: return true;
  }
  return false;
}

Value FromJson(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::None();
    case nlohmann::json::value_t::boolean: return Value::Bool(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return Value::Int(j.get<int64_t>());
    case nlohmann::json::value_t::number_float: return Value::Float(j.get<double>());
    case nlohmann::json::value_t::string: return Value::Str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      List l;
      for (const auto& e : j) l.push_back(FromJson(e));
      return Value::MakeList(std::move(l));
    }
    case nlohmann::json::value_t::object: {
      Dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d.emplace_back(it.key(), FromJson(it.value()));
      return Value::MakeDict(std::move(d));
    }
    default: return Value();
  }
}

std::vector<uint32_t> CodePoints(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) out.push_back(DecodeUtf8(s, &i));
  return out;
}
std::string FromCodePoints(const std::vector<uint32_t>& cps, size_t b, size_t e) {
  std::string out;
  for (size_t k = b; k < e; ++k) out += EncodeUtf8(cps[k]);
  return out;
}

std::string PyRepr(const Value& v);

std::string FloatText(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {  // the shortest text that reads back, as Python's repr
    std::snprintf(buf, sizeof(buf), "%.*g", prec, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

// str(value), as Python (and so jinja2's output) writes it.
std::string ToString(const Value& v) {
  switch (v.kind) {
    case Value::kUndefined: return "";
    case Value::kNone: return "None";
    case Value::kBool: return v.b ? "True" : "False";
    case Value::kInt: return std::to_string(v.i);
    case Value::kFloat: return FloatText(v.f);
    case Value::kString: return v.s;
    case Value::kList: case Value::kDict: case Value::kNamespace: return PyRepr(v);
  }
  return "";
}

std::string PyStringRepr(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') { out += '\\'; out += c; }
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out + q;
}

std::string PyRepr(const Value& v) {
  switch (v.kind) {
    case Value::kString: return PyStringRepr(v.s);
    case Value::kList: {
      std::string out = "[";
      for (size_t k = 0; k < v.list->size(); ++k) out += (k ? ", " : "") + PyRepr((*v.list)[k]);
      return out + "]";
    }
    case Value::kDict: {
      std::string out = "{";
      for (size_t k = 0; k < v.dict->size(); ++k) {
        out += (k ? ", " : "") + PyStringRepr((*v.dict)[k].first) + ": " + PyRepr((*v.dict)[k].second);
      }
      return out + "}";
    }
    case Value::kNamespace: return "<Namespace>";
    default: return ToString(v);
  }
}

// json.dumps(v, ensure_ascii=False, indent=indent): transformers' tojson.
void JsonDump(const Value& v, int indent, int level, std::string* out) {
  auto newline = [&](int lv) {
    if (indent < 0) return;
    *out += '\n';
    out->append(static_cast<size_t>(indent) * lv, ' ');
  };
  switch (v.kind) {
    case Value::kUndefined: case Value::kNone: *out += "null"; return;
    case Value::kBool: *out += v.b ? "true" : "false"; return;
    case Value::kInt: *out += std::to_string(v.i); return;
    case Value::kFloat: *out += FloatText(v.f); return;
    case Value::kString: {
      *out += '"';
      for (unsigned char c : v.s) {
        switch (c) {
          case '"': *out += "\\\""; break;
          case '\\': *out += "\\\\"; break;
          case '\n': *out += "\\n"; break;
          case '\r': *out += "\\r"; break;
          case '\t': *out += "\\t"; break;
          case '\b': *out += "\\b"; break;
          case '\f': *out += "\\f"; break;
          default:
            if (c < 0x20) {
              char buf[8];
              std::snprintf(buf, sizeof(buf), "\\u%04x", c);
              *out += buf;
            } else {
              *out += static_cast<char>(c);
            }
        }
      }
      *out += '"';
      return;
    }
    case Value::kList: {
      if (v.list->empty()) { *out += "[]"; return; }
      *out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) *out += indent < 0 ? ", " : ",";
        newline(level + 1);
        JsonDump((*v.list)[k], indent, level + 1, out);
      }
      newline(level);
      *out += ']';
      return;
    }
    case Value::kDict: case Value::kNamespace: {
      if (v.dict->empty()) { *out += "{}"; return; }
      *out += '{';
      for (size_t k = 0; k < v.dict->size(); ++k) {
        if (k) *out += indent < 0 ? ", " : ",";
        newline(level + 1);
        JsonDump(Value::Str((*v.dict)[k].first), indent, level + 1, out);
        *out += ": ";
        JsonDump((*v.dict)[k].second, indent, level + 1, out);
      }
      newline(level);
      *out += '}';
      return;
    }
  }
}

bool Equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.num() == b.num();
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::kUndefined: case Value::kNone: return true;
    case Value::kString: return a.s == b.s;
    case Value::kList:
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k) if (!Equal((*a.list)[k], (*b.list)[k])) return false;
      return true;
    case Value::kDict:
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [key, val] : *a.dict) {
        const Value* o = b.Find(key);
        if (o == nullptr || !Equal(val, *o)) return false;
      }
      return true;
    case Value::kNamespace: return a.dict == b.dict;
    default: return false;
  }
}

// ---- lexer ----

enum class Tok { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEnd };

struct Token {
  Tok type;
  std::string text;
  int line;
};

const char* kTwoCharOps[] = {"==", "!=", "<=", ">=", "//", "**"};

std::vector<Token> Lex(const std::string& src) {
  std::vector<Token> out;
  size_t pos = 0;
  int line = 1;
  bool strip_next = false;  // a "-" closed the previous tag
  bool trim_newline = false;  // trim_blocks after a block or comment tag
  auto count_lines = [&](size_t from, size_t to) {
    for (size_t k = from; k < to && k < src.size(); ++k) line += src[k] == '\n';
  };
  while (pos < src.size()) {
    size_t open = std::string::npos;
    for (size_t k = src.find('{', pos); k != std::string::npos && k + 1 < src.size(); k = src.find('{', k + 1)) {
      char c = src[k + 1];
      if (c == '{' || c == '%' || c == '#') { open = k; break; }
    }
    std::string text = src.substr(pos, open == std::string::npos ? std::string::npos : open - pos);
    if (trim_newline && !text.empty() && text[0] == '\n') text.erase(0, 1);
    if (trim_newline && text.size() >= 2 && text[0] == '\r' && text[1] == '\n') text.erase(0, 2);
    if (strip_next) text.erase(0, text.find_first_not_of(" \t\r\n"));
    if (strip_next && text.find_first_not_of(" \t\r\n") == std::string::npos) text.clear();
    trim_newline = strip_next = false;
    if (open == std::string::npos) {
      if (!text.empty()) out.push_back({Tok::kText, text, line});
      break;
    }
    const char kind = src[open + 1];
    size_t body = open + 2;
    const bool minus_left = body < src.size() && src[body] == '-';
    const bool plus_left = body < src.size() && src[body] == '+';
    if (minus_left || plus_left) ++body;
    if (minus_left) {
      size_t keep = text.find_last_not_of(" \t\r\n");
      text = keep == std::string::npos ? "" : text.substr(0, keep + 1);
    } else if (kind != '{' && !plus_left) {
      // lstrip_blocks: the spaces and tabs before a block or comment tag go
      // when only they stand between the tag and the start of its line.
      size_t k = open;
      while (k > pos && (src[k - 1] == ' ' || src[k - 1] == '\t')) --k;
      if (k == 0 || src[k - 1] == '\n') text.erase(text.size() - std::min(text.size(), open - k));
    }
    count_lines(pos, open);
    if (!text.empty()) out.push_back({Tok::kText, text, line});
    if (kind == '#') {
      size_t close = src.find("#}", body);
      if (close == std::string::npos) Fail("line " + std::to_string(line) + ": comment is not closed");
      strip_next = close > body && src[close - 1] == '-';
      trim_newline = !strip_next;
      count_lines(open, close + 2);
      pos = close + 2;
      continue;
    }
    out.push_back({kind == '{' ? Tok::kVarBegin : Tok::kBlockBegin, "", line});
    const char end_char = kind == '{' ? '}' : '%';
    size_t p = body;
    bool closed = false;
    while (p < src.size()) {
      char c = src[p];
      if (c == '\n') { ++line; ++p; continue; }
      if (c == ' ' || c == '\t' || c == '\r') { ++p; continue; }
      // End of the tag: "}}" / "%}", optionally after "-".
      const bool minus_end = c == '-' && p + 2 < src.size() && src[p + 1] == end_char && src[p + 2] == '}';
      if (minus_end || (c == end_char && p + 1 < src.size() && src[p + 1] == '}')) {
        const bool minus_right = c == '-';
        if (minus_right) ++p;
        p += 2;
        strip_next = minus_right;
        trim_newline = kind == '%' && !minus_right;
        out.push_back({kind == '{' ? Tok::kVarEnd : Tok::kBlockEnd, "", line});
        closed = true;
        break;
      }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = p;
        while (e < src.size() && (std::isalnum(static_cast<unsigned char>(src[e])) || src[e] == '_')) ++e;
        out.push_back({Tok::kName, src.substr(p, e - p), line});
        p = e;
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t e = p;
        while (e < src.size() && (std::isdigit(static_cast<unsigned char>(src[e])) || src[e] == '_')) ++e;
        bool is_float = e + 1 < src.size() && src[e] == '.' && std::isdigit(static_cast<unsigned char>(src[e + 1]));
        if (is_float) {
          ++e;
          while (e < src.size() && std::isdigit(static_cast<unsigned char>(src[e]))) ++e;
        }
        std::string num = src.substr(p, e - p);
        num.erase(std::remove(num.begin(), num.end(), '_'), num.end());
        out.push_back({is_float ? Tok::kFloat : Tok::kInt, num, line});
        p = e;
        continue;
      }
      if (c == '\'' || c == '"') {
        std::string s;
        size_t e = p + 1;
        bool done = false;
        while (e < src.size()) {
          char d = src[e];
          if (d == c) { done = true; ++e; break; }
          if (d == '\n') ++line;
          if (d == '\\' && e + 1 < src.size()) {
            char x = src[e + 1];
            switch (x) {
              case 'n': s += '\n'; break;
              case 't': s += '\t'; break;
              case 'r': s += '\r'; break;
              case '\\': s += '\\'; break;
              case '\'': s += '\''; break;
              case '"': s += '"'; break;
              default: s += '\\'; s += x;
            }
            e += 2;
            continue;
          }
          s += d;
          ++e;
        }
        if (!done) Fail("line " + std::to_string(line) + ": string is not closed");
        out.push_back({Tok::kString, s, line});
        p = e;
        continue;
      }
      std::string op(1, c);
      if (p + 1 < src.size()) {
        std::string two = src.substr(p, 2);
        for (const char* t : kTwoCharOps) if (two == t) op = two;
      }
      if (std::string("+-*/%~()[]{}.,:|=<>!").find(c) == std::string::npos) {
        Fail("line " + std::to_string(line) + ": unexpected character '" + std::string(1, c) + "'");
      }
      out.push_back({Tok::kOp, op, line});
      p += op.size();
    }
    if (!closed) Fail("line " + std::to_string(line) + ": tag is not closed");
    pos = p;
  }
  out.push_back({Tok::kEnd, "", line});
  return out;
}

// ---- syntax tree ----

struct Expr {
  enum Kind {
    kLiteral, kName, kList, kDict, kTuple, kAttr, kItem, kSlice, kCall, kFilter, kTest,
    kUnary, kBinary, kAnd, kOr, kNot, kCond, kConcat
  } kind;
  Value literal;
  std::string name;  // kName, kAttr, kFilter, kTest, kUnary/kBinary operator
  std::vector<std::unique_ptr<Expr>> args;                  // operands, call args
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
  bool negated = false;  // kTest: "is not"
  int line = 0;
};
using ExprPtr = std::unique_ptr<Expr>;

struct Node {
  enum Kind { kText, kOutput, kIf, kFor, kSet, kBreak, kContinue } kind;
  std::string text;
  ExprPtr expr;                      // output, set value, for iterable
  std::vector<std::string> targets;  // for / set ("ns.attr" for namespace attributes)
  ExprPtr filter;                    // for ... if
  std::vector<std::pair<ExprPtr, std::vector<std::unique_ptr<Node>>>> branches;  // if/elif (null expr: else)
  std::vector<std::unique_ptr<Node>> body, else_body;                           // for
  int line = 0;
};
using NodePtr = std::unique_ptr<Node>;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  std::vector<NodePtr> ParseAll() {
    std::vector<NodePtr> nodes = Block({});
    if (Cur().type != Tok::kEnd) Fail(Where() + "unexpected {% " + stop_ + " %}");
    return nodes;
  }

 private:
  const Token& Cur() const { return t_[i_]; }
  const Token& Next() { return t_[i_++]; }
  std::string Where() const { return "line " + std::to_string(Cur().line) + ": "; }
  bool IsOp(const char* op) const { return Cur().type == Tok::kOp && Cur().text == op; }
  bool IsName(const char* n) const { return Cur().type == Tok::kName && Cur().text == n; }
  void ExpectOp(const char* op) {
    if (!IsOp(op)) Fail(Where() + "expected '" + op + "', got '" + Cur().text + "'");
    ++i_;
  }
  std::string ExpectName() {
    if (Cur().type != Tok::kName) Fail(Where() + "expected a name, got '" + Cur().text + "'");
    return Next().text;
  }
  void ExpectBlockEnd() {
    if (Cur().type != Tok::kBlockEnd) Fail(Where() + "expected '%}', got '" + Cur().text + "'");
    ++i_;
  }
  void Deeper() {
    if (++depth_ > kMaxDepth) Fail(Where() + "nested more than " + std::to_string(kMaxDepth) + " deep");
  }

  // Nodes until a block tag whose keyword is in `stops` (left unconsumed;
  // its keyword in stop_).
  std::vector<NodePtr> Block(const std::vector<std::string>& stops) {
    Deeper();
    std::vector<NodePtr> nodes;
    while (Cur().type != Tok::kEnd) {
      const Token& tok = Cur();
      if (tok.type == Tok::kText) {
        auto n = std::make_unique<Node>();
        n->kind = Node::kText;
        n->text = tok.text;
        nodes.push_back(std::move(n));
        ++i_;
        continue;
      }
      if (tok.type == Tok::kVarBegin) {
        ++i_;
        auto n = std::make_unique<Node>();
        n->kind = Node::kOutput;
        n->line = tok.line;
        n->expr = Expression();
        if (Cur().type != Tok::kVarEnd) Fail(Where() + "expected '}}', got '" + Cur().text + "'");
        ++i_;
        nodes.push_back(std::move(n));
        continue;
      }
      if (tok.type != Tok::kBlockBegin) Fail(Where() + "unexpected '" + tok.text + "'");
      const std::string kw = t_[i_ + 1].type == Tok::kName ? t_[i_ + 1].text : "";
      if (std::find(stops.begin(), stops.end(), kw) != stops.end()) {
        stop_ = kw;
        --depth_;
        return nodes;
      }
      i_ += 2;
      if (kw == "if") nodes.push_back(If(tok.line));
      else if (kw == "for") nodes.push_back(For(tok.line));
      else if (kw == "set") nodes.push_back(Set(tok.line));
      else if (kw == "break" || kw == "continue") {
        auto n = std::make_unique<Node>();
        n->kind = kw == "break" ? Node::kBreak : Node::kContinue;
        ExpectBlockEnd();
        nodes.push_back(std::move(n));
      } else {
        Fail("line " + std::to_string(tok.line) + ": unsupported tag '" + (kw.empty() ? t_[i_ - 1].text : kw) + "'");
      }
    }
    stop_ = "end of template";
    if (!stops.empty()) Fail(Where() + "missing {% " + stops.back() + " %}");
    --depth_;
    return nodes;
  }

  NodePtr If(int line) {
    auto n = std::make_unique<Node>();
    n->kind = Node::kIf;
    n->line = line;
    ExprPtr cond = Expression();
    ExpectBlockEnd();
    while (true) {
      std::vector<NodePtr> body = Block({"elif", "else", "endif"});
      n->branches.emplace_back(std::move(cond), std::move(body));
      std::string kw = stop_;
      i_ += 2;  // {% keyword
      if (kw == "endif") { ExpectBlockEnd(); break; }
      if (kw == "else") {
        ExpectBlockEnd();
        n->branches.emplace_back(nullptr, Block({"endif"}));
        i_ += 2;
        ExpectBlockEnd();
        break;
      }
      cond = Expression();
      ExpectBlockEnd();
    }
    return n;
  }

  NodePtr For(int line) {
    auto n = std::make_unique<Node>();
    n->kind = Node::kFor;
    n->line = line;
    n->targets.push_back(ExpectName());
    while (IsOp(",")) { ++i_; n->targets.push_back(ExpectName()); }
    if (!IsName("in")) Fail(Where() + "expected 'in' in for");
    ++i_;
    n->expr = OrExpr(/*no_cond=*/true);
    if (IsName("if")) { ++i_; n->filter = OrExpr(true); }
    if (IsName("recursive")) Fail(Where() + "unsupported: recursive loops");
    ExpectBlockEnd();
    n->body = Block({"else", "endfor"});
    std::string kw = stop_;
    i_ += 2;
    ExpectBlockEnd();
    if (kw == "else") {
      n->else_body = Block({"endfor"});
      i_ += 2;
      ExpectBlockEnd();
    }
    return n;
  }

  NodePtr Set(int line) {
    auto n = std::make_unique<Node>();
    n->kind = Node::kSet;
    n->line = line;
    std::string target = ExpectName();
    if (IsOp(".")) { ++i_; target += "." + ExpectName(); }
    n->targets.push_back(target);
    while (IsOp(",")) { ++i_; n->targets.push_back(ExpectName()); }
    if (!IsOp("=")) Fail(Where() + "unsupported: {% set %} blocks (expected '=')");
    ++i_;
    n->expr = Expression();
    ExpectBlockEnd();
    return n;
  }

  ExprPtr Make(Expr::Kind k) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = Cur().line;
    return e;
  }

  // expression := or ["if" or ["else" expression]]; a bare tuple "a, b" in
  // {{ }} is not used by templates and not accepted.
  ExprPtr Expression() {
    Deeper();
    ExprPtr e = OrExpr(false);
    --depth_;
    return e;
  }
  ExprPtr OrExpr(bool no_cond) {
    ExprPtr e = AndExpr();
    while (IsName("or")) {
      ++i_;
      auto o = Make(Expr::kOr);
      o->args.push_back(std::move(e));
      o->args.push_back(AndExpr());
      e = std::move(o);
    }
    if (!no_cond && IsName("if")) {
      ++i_;
      auto c = Make(Expr::kCond);
      c->args.push_back(std::move(e));       // then
      c->args.push_back(OrExpr(true));       // condition
      if (IsName("else")) { ++i_; c->args.push_back(OrExpr(false)); }
      e = std::move(c);
    }
    return e;
  }
  ExprPtr AndExpr() {
    ExprPtr e = NotExpr();
    while (IsName("and")) {
      ++i_;
      auto a = Make(Expr::kAnd);
      a->args.push_back(std::move(e));
      a->args.push_back(NotExpr());
      e = std::move(a);
    }
    return e;
  }
  ExprPtr NotExpr() {
    if (IsName("not")) {
      ++i_;
      Deeper();
      auto n = Make(Expr::kNot);
      n->args.push_back(NotExpr());
      --depth_;
      return n;
    }
    return Compare();
  }
  ExprPtr Compare() {
    ExprPtr e = Concat();
    while (true) {
      std::string op;
      if (Cur().type == Tok::kOp && (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" ||
                                     Cur().text == ">" || Cur().text == "<=" || Cur().text == ">=")) {
        op = Next().text;
      } else if (IsName("in")) {
        ++i_;
        op = "in";
      } else if (IsName("not") && t_[i_ + 1].type == Tok::kName && t_[i_ + 1].text == "in") {
        i_ += 2;
        op = "not in";
      } else {
        break;
      }
      auto b = Make(Expr::kBinary);
      b->name = op;
      b->args.push_back(std::move(e));
      b->args.push_back(Concat());
      e = std::move(b);
    }
    return e;
  }
  ExprPtr Concat() {
    ExprPtr e = Math1();
    while (IsOp("~")) {
      ++i_;
      auto c = Make(Expr::kConcat);
      c->args.push_back(std::move(e));
      c->args.push_back(Math1());
      e = std::move(c);
    }
    return e;
  }
  ExprPtr Math1() {
    ExprPtr e = Math2();
    while (IsOp("+") || IsOp("-")) {
      auto b = Make(Expr::kBinary);
      b->name = Next().text;
      b->args.push_back(std::move(e));
      b->args.push_back(Math2());
      e = std::move(b);
    }
    return e;
  }
  ExprPtr Math2() {
    ExprPtr e = Unary();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      auto b = Make(Expr::kBinary);
      b->name = Next().text;
      b->args.push_back(std::move(e));
      b->args.push_back(Unary());
      e = std::move(b);
    }
    return e;
  }
  ExprPtr Unary() {
    if (IsOp("-") || IsOp("+")) {
      Deeper();
      auto u = Make(Expr::kUnary);
      u->name = Next().text;
      u->args.push_back(Unary());
      --depth_;
      return FilterExpr(std::move(u));
    }
    return FilterExpr(Postfix(Primary()));
  }
  ExprPtr Primary() {
    Deeper();
    const Token& tok = Cur();
    ExprPtr e;
    if (tok.type == Tok::kString) {
      e = Make(Expr::kLiteral);
      std::string s;
      while (Cur().type == Tok::kString) s += Next().text;  // adjacent literals join
      e->literal = Value::Str(s);
    } else if (tok.type == Tok::kInt) {
      e = Make(Expr::kLiteral);
      errno = 0;
      long long v = std::strtoll(tok.text.c_str(), nullptr, 10);
      if (errno == ERANGE) Fail(Where() + "integer too large");
      e->literal = Value::Int(v);
      ++i_;
    } else if (tok.type == Tok::kFloat) {
      e = Make(Expr::kLiteral);
      e->literal = Value::Float(std::strtod(tok.text.c_str(), nullptr));
      ++i_;
    } else if (tok.type == Tok::kName) {
      const std::string& n = tok.text;
      e = Make(Expr::kLiteral);
      if (n == "true" || n == "True") e->literal = Value::Bool(true);
      else if (n == "false" || n == "False") e->literal = Value::Bool(false);
      else if (n == "none" || n == "None") e->literal = Value::None();
      else { e->kind = Expr::kName; e->name = n; }
      ++i_;
    } else if (IsOp("(")) {
      ++i_;
      ExprPtr first = Expression();
      if (IsOp(",")) {
        e = Make(Expr::kTuple);
        e->args.push_back(std::move(first));
        while (IsOp(",")) {
          ++i_;
          if (IsOp(")")) break;
          e->args.push_back(Expression());
        }
      } else {
        e = std::move(first);
      }
      ExpectOp(")");
    } else if (IsOp("[")) {
      ++i_;
      e = Make(Expr::kList);
      while (!IsOp("]")) {
        e->args.push_back(Expression());
        if (!IsOp(",")) break;
        ++i_;
      }
      ExpectOp("]");
    } else if (IsOp("{")) {
      ++i_;
      e = Make(Expr::kDict);
      while (!IsOp("}")) {
        e->args.push_back(Expression());
        ExpectOp(":");
        e->args.push_back(Expression());
        if (!IsOp(",")) break;
        ++i_;
      }
      ExpectOp("}");
    } else {
      Fail(Where() + "unexpected '" + (tok.type == Tok::kEnd ? std::string("end of template") : tok.text) + "'");
    }
    --depth_;
    return e;
  }
  void CallArgs(Expr* call) {
    ExpectOp("(");
    while (!IsOp(")")) {
      if (Cur().type == Tok::kName && t_[i_ + 1].type == Tok::kOp && t_[i_ + 1].text == "=") {
        std::string key = Next().text;
        ++i_;
        call->kwargs.emplace_back(key, Expression());
      } else {
        call->args.push_back(Expression());
      }
      if (!IsOp(",")) break;
      ++i_;
    }
    ExpectOp(")");
  }
  ExprPtr Postfix(ExprPtr e) {
    while (true) {
      if (IsOp(".")) {
        ++i_;
        auto a = Make(Expr::kAttr);
        a->name = ExpectName();
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (IsOp("[")) {
        ++i_;
        ExprPtr parts[3];
        bool slice = false;
        int k = 0;
        while (true) {
          if (!IsOp(":") && !IsOp("]")) parts[k] = Expression();
          if (IsOp(":") && k < 2) { ++i_; slice = true; ++k; continue; }
          break;
        }
        if (!slice && !parts[0]) Fail(Where() + "empty subscript '[]'");
        ExpectOp("]");
        auto s = Make(slice ? Expr::kSlice : Expr::kItem);
        s->args.push_back(std::move(e));
        for (auto& p : parts) s->args.push_back(std::move(p));
        e = std::move(s);
      } else if (IsOp("(")) {
        auto c = Make(Expr::kCall);
        c->args.push_back(std::move(e));
        CallArgs(c.get());
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
  ExprPtr FilterExpr(ExprPtr e) {
    while (true) {
      if (IsOp("|")) {
        ++i_;
        auto f = Make(Expr::kFilter);
        f->name = ExpectName();
        f->args.push_back(std::move(e));
        if (IsOp("(")) CallArgs(f.get());
        e = std::move(f);
      } else if (IsName("is")) {
        ++i_;
        auto t = Make(Expr::kTest);
        if (IsName("not")) { ++i_; t->negated = true; }
        t->name = Cur().type == Tok::kOp && Cur().text == "==" ? "==" : "";
        if (t->name.empty()) t->name = ExpectName(); else ++i_;
        t->args.push_back(std::move(e));
        if (IsOp("(")) {
          CallArgs(t.get());
        } else if (Cur().type == Tok::kString || Cur().type == Tok::kInt || Cur().type == Tok::kFloat ||
                   (Cur().type == Tok::kName && !IsName("and") && !IsName("or") && !IsName("else") &&
                    !IsName("if") && !IsName("in") && !IsName("not") && !IsName("is"))) {
          t->args.push_back(Postfix(Primary()));  // "is equalto 'x'", "is sameas none"
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
  std::string stop_;
};

// ---- evaluation ----

struct LoopSignal {
  enum Kind { kNone, kBreak, kContinue } kind = kNone;
};

class Renderer {
 public:
  Renderer(const nlohmann::json& context) {
    scopes_.emplace_back();
    if (context.is_object()) {
      for (auto it = context.begin(); it != context.end(); ++it) scopes_[0][it.key()] = FromJson(it.value());
    }
  }

  // A namespace may end up holding itself ({% set ns.x = ns %}): the
  // reference cycle is broken here, since nothing but the text leaves a render.
  ~Renderer() {
    for (const auto& d : namespaces_) d->clear();
  }

  std::string Run(const std::vector<NodePtr>& nodes) {
    LoopSignal sig;
    Exec(nodes, &sig);
    return std::move(out_);
  }

 private:
  void Step() {
    if (++steps_ > kMaxSteps) Fail("the template ran more than " + std::to_string(kMaxSteps) + " steps");
  }
  void Emit(const std::string& s) {
    out_ += s;
    if (out_.size() > kMaxOutput) Fail("the template's output passed 64 MiB");
  }
  Value Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return f->second;
    }
    return Value();
  }

  void Exec(const std::vector<NodePtr>& nodes, LoopSignal* sig) {
    for (const NodePtr& n : nodes) {
      Step();
      switch (n->kind) {
        case Node::kText: Emit(n->text); break;
        case Node::kOutput: Emit(ToString(Eval(*n->expr))); break;
        case Node::kIf:
          for (const auto& [cond, body] : n->branches) {
            if (cond == nullptr || Truthy(Eval(*cond))) {
              Exec(body, sig);
              break;
            }
          }
          break;
        case Node::kFor: For(*n, sig); break;
        case Node::kSet: Set(*n); break;
        case Node::kBreak: sig->kind = LoopSignal::kBreak; return;
        case Node::kContinue: sig->kind = LoopSignal::kContinue; return;
      }
      if (sig->kind != LoopSignal::kNone) return;
    }
  }

  void Assign(const std::string& target, const Value& v, int line) {
    size_t dot = target.find('.');
    if (dot == std::string::npos) { scopes_.back()[target] = v; return; }
    Value ns = Lookup(target.substr(0, dot));
    if (ns.kind != Value::kNamespace) {
      Fail("line " + std::to_string(line) + ": cannot set '" + target + "': not a namespace");
    }
    const std::string attr = target.substr(dot + 1);
    for (auto& [k, val] : *ns.dict) {
      if (k == attr) { val = v; return; }
    }
    ns.dict->emplace_back(attr, v);
  }

  void Set(const Node& n) {
    Value v = Eval(*n.expr);
    if (n.targets.size() == 1) { Assign(n.targets[0], v, n.line); return; }
    if (v.kind != Value::kList || v.list->size() != n.targets.size()) {
      Fail("line " + std::to_string(n.line) + ": cannot unpack into " + std::to_string(n.targets.size()) + " names");
    }
    for (size_t k = 0; k < n.targets.size(); ++k) Assign(n.targets[k], (*v.list)[k], n.line);
  }

  List Iterate(const Value& v, int line) {
    switch (v.kind) {
      case Value::kList: return *v.list;
      case Value::kDict: {
        List keys;
        for (const auto& [k, val] : *v.dict) keys.push_back(Value::Str(k));
        return keys;
      }
      case Value::kString: {
        List chars;
        std::vector<uint32_t> cps = CodePoints(v.s);
        for (uint32_t c : cps) chars.push_back(Value::Str(EncodeUtf8(c)));
        return chars;
      }
      case Value::kUndefined: return {};  // jinja2 iterates an undefined as empty
      default: Fail("line " + std::to_string(line) + ": " + ToString(v) + " is not iterable");
    }
  }

  void Bind(const std::vector<std::string>& targets, const Value& item, int line) {
    if (targets.size() == 1) { scopes_.back()[targets[0]] = item; return; }
    if (item.kind != Value::kList || item.list->size() != targets.size()) {
      Fail("line " + std::to_string(line) + ": cannot unpack a loop item into " + std::to_string(targets.size()) + " names");
    }
    for (size_t k = 0; k < targets.size(); ++k) scopes_.back()[targets[k]] = (*item.list)[k];
  }

  void For(const Node& n, LoopSignal* outer) {
    List all = Iterate(Eval(*n.expr), n.line);
    List items;
    if (n.filter) {  // the filter sees each item bound, as jinja2 does
      for (const Value& item : all) {
        scopes_.emplace_back();
        Bind(n.targets, item, n.line);
        bool keep = Truthy(Eval(*n.filter));
        scopes_.pop_back();
        if (keep) items.push_back(item);
      }
    } else {
      items = std::move(all);
    }
    if (items.empty()) {
      Exec(n.else_body, outer);
      return;
    }
    const int64_t len = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < len; ++k) {
      Step();
      scopes_.emplace_back();
      Bind(n.targets, items[k], n.line);
      Dict loop = {{"index", Value::Int(k + 1)}, {"index0", Value::Int(k)}, {"first", Value::Bool(k == 0)},
                   {"last", Value::Bool(k == len - 1)}, {"length", Value::Int(len)},
                   {"revindex", Value::Int(len - k)}, {"revindex0", Value::Int(len - k - 1)},
                   {"previtem", k > 0 ? items[k - 1] : Value()}, {"nextitem", k + 1 < len ? items[k + 1] : Value()}};
      scopes_.back()["loop"] = Value::MakeDict(std::move(loop));
      LoopSignal sig;
      Exec(n.body, &sig);
      scopes_.pop_back();
      if (sig.kind == LoopSignal::kBreak) break;
    }
  }

  // Python's index rules: negative from the end; out of range is Undefined.
  static std::optional<size_t> Index(int64_t k, size_t n) {
    if (k < 0) k += static_cast<int64_t>(n);
    if (k < 0 || static_cast<uint64_t>(k) >= n) return std::nullopt;
    return static_cast<size_t>(k);
  }

  Value Item(const Value& obj, const Value& key) {
    if (obj.kind == Value::kDict || obj.kind == Value::kNamespace) {
      if (key.kind != Value::kString) return Value();
      const Value* v = obj.Find(key.s);
      return v ? *v : Value();
    }
    if (obj.kind == Value::kList && key.kind == Value::kInt) {
      auto k = Index(key.i, obj.list->size());
      return k ? (*obj.list)[*k] : Value();
    }
    if (obj.kind == Value::kString && key.kind == Value::kInt) {
      std::vector<uint32_t> cps = CodePoints(obj.s);
      auto k = Index(key.i, cps.size());
      return k ? Value::Str(EncodeUtf8(cps[*k])) : Value();
    }
    return Value();
  }

  Value Slice(const Value& obj, const Value& a, const Value& b, const Value& c, int line) {
    int64_t step = c.defined() && c.kind != Value::kNone ? c.i : 1;
    if (step == 0) Fail("line " + std::to_string(line) + ": slice step cannot be zero");
    std::vector<uint32_t> cps;
    size_t n;
    if (obj.kind == Value::kString) { cps = CodePoints(obj.s); n = cps.size(); }
    else if (obj.kind == Value::kList) n = obj.list->size();
    else Fail("line " + std::to_string(line) + ": cannot slice " + ToString(obj));
    const int64_t len = static_cast<int64_t>(n);
    auto clamp = [&](const Value& v, int64_t def) {
      if (!v.defined() || v.kind == Value::kNone) return def;
      int64_t x = v.i;
      if (x < 0) x += len;
      if (step > 0) return std::clamp<int64_t>(x, 0, len);
      return std::clamp<int64_t>(x, -1, len - 1);
    };
    int64_t start = clamp(a, step > 0 ? 0 : len - 1), stop = clamp(b, step > 0 ? len : -1);
    List items;
    std::string s;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
      if (obj.kind == Value::kString) s += EncodeUtf8(cps[k]); else items.push_back((*obj.list)[k]);
    }
    return obj.kind == Value::kString ? Value::Str(s) : Value::MakeList(std::move(items));
  }

  Value Attr(const Value& obj, const std::string& name) {
    if (obj.kind == Value::kDict || obj.kind == Value::kNamespace) {
      const Value* v = obj.Find(name);
      return v ? *v : Value();
    }
    return Value();  // methods are looked up by Call
  }

  Value Binary(const std::string& op, const Value& a, const Value& b, int line) {
    auto where = [&] { return "line " + std::to_string(line) + ": "; };
    if (op == "==") return Value::Bool(Equal(a, b));
    if (op == "!=") return Value::Bool(!Equal(a, b));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.kind == Value::kString && a.kind == Value::kString) found = b.s.find(a.s) != std::string::npos;
      else if (b.kind == Value::kList) found = std::any_of(b.list->begin(), b.list->end(), [&](const Value& x) { return Equal(a, x); });
      else if (b.kind == Value::kDict || b.kind == Value::kNamespace) found = a.kind == Value::kString && b.Find(a.s) != nullptr;
      else Fail(where() + "'in' needs a string, list or mapping on its right");
      return Value::Bool(op == "in" ? found : !found);
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int cmp;
      if (a.is_number() && b.is_number()) cmp = a.num() < b.num() ? -1 : a.num() > b.num() ? 1 : 0;
      else if (a.kind == Value::kString && b.kind == Value::kString) cmp = a.s.compare(b.s);
      else Fail(where() + "cannot compare " + ToString(a) + " and " + ToString(b));
      if (op == "<") return Value::Bool(cmp < 0);
      if (op == ">") return Value::Bool(cmp > 0);
      if (op == "<=") return Value::Bool(cmp <= 0);
      return Value::Bool(cmp >= 0);
    }
    if (op == "+") {
      if (a.kind == Value::kString && b.kind == Value::kString) {
        if (a.s.size() + b.s.size() > kMaxOutput) Fail(where() + "a string passed 64 MiB");
        return Value::Str(a.s + b.s);
      }
      if (a.kind == Value::kList && b.kind == Value::kList) {
        if (a.list->size() + b.list->size() > kMaxOutput / 64) Fail(where() + "a list passed a million items");
        List l = *a.list;
        l.insert(l.end(), b.list->begin(), b.list->end());
        return Value::MakeList(std::move(l));
      }
    }
    if (!a.is_number() || !b.is_number()) {
      Fail(where() + "unsupported operand types for " + op + ": " + PyRepr(a) + " and " + PyRepr(b));
    }
    const bool ints = a.kind != Value::kFloat && b.kind != Value::kFloat;
    const int64_t x = a.kind == Value::kBool ? a.b : a.i, y = b.kind == Value::kBool ? b.b : b.i;
    if (op == "+") return ints ? Value::Int(x + y) : Value::Float(a.num() + b.num());
    if (op == "-") return ints ? Value::Int(x - y) : Value::Float(a.num() - b.num());
    if (op == "*") return ints ? Value::Int(x * y) : Value::Float(a.num() * b.num());
    if (op == "/") {
      if (b.num() == 0) Fail(where() + "division by zero");
      return Value::Float(a.num() / b.num());
    }
    if (op == "//" || op == "%") {
      if (b.num() == 0) Fail(where() + (op == "%" ? "modulo by zero" : "division by zero"));
      if (ints) {
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) { --q; r += y; }  // Python floors
        return Value::Int(op == "%" ? r : q);
      }
      double q = std::floor(a.num() / b.num());
      return Value::Float(op == "%" ? a.num() - q * b.num() : q);
    }
    Fail(where() + "unknown operator " + op);
  }

  bool Test(const std::string& name, const Value& v, const std::vector<Value>& args, int line) {
    auto arg = [&](size_t k) -> const Value& {
      if (k >= args.size()) Fail("line " + std::to_string(line) + ": test '" + name + "' needs an argument");
      return args[k];
    };
    if (name == "defined") return v.defined();
    if (name == "undefined") return !v.defined();
    if (name == "none") return v.kind == Value::kNone;
    if (name == "string") return v.kind == Value::kString;
    if (name == "number") return v.kind == Value::kInt || v.kind == Value::kFloat;
    if (name == "integer") return v.kind == Value::kInt;
    if (name == "float") return v.kind == Value::kFloat;
    if (name == "boolean") return v.kind == Value::kBool;
    if (name == "true") return v.kind == Value::kBool && v.b;
    if (name == "false") return v.kind == Value::kBool && !v.b;
    if (name == "mapping") return v.kind == Value::kDict;
    if (name == "iterable") return v.kind == Value::kList || v.kind == Value::kDict || v.kind == Value::kString;
    if (name == "sequence") return v.kind == Value::kList || v.kind == Value::kString || v.kind == Value::kDict;
    if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return Equal(v, arg(0));
    if (name == "ne") return !Equal(v, arg(0));
    if (name == "in") return Truthy(Binary("in", v, arg(0), line));
    if (name == "lower") return v.kind == Value::kString && LowerAscii(v.s) == v.s;
    if (name == "upper") return v.kind == Value::kString && UpperAscii(v.s) == v.s;
    if (name == "divisibleby" || name == "even" || name == "odd") {
      if (v.kind != Value::kInt) Fail("line " + std::to_string(line) + ": test '" + name + "' needs an integer");
      if (name == "even") return v.i % 2 == 0;
      if (name == "odd") return v.i % 2 != 0;
      if (arg(0).kind != Value::kInt || arg(0).i == 0) Fail("line " + std::to_string(line) + ": divisibleby needs a non-zero integer");
      return v.i % arg(0).i == 0;
    }
    Fail("line " + std::to_string(line) + ": unknown test '" + name + "'");
  }

  static std::string LowerAscii(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  static std::string UpperAscii(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }
  static bool IsPySpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
  static std::string Strip(const std::string& s, const Value& chars, bool left, bool right) {
    auto strip_this = [&](char c) {
      return chars.kind == Value::kString ? chars.s.find(c) != std::string::npos : IsPySpace(c);
    };
    size_t b = 0, e = s.size();
    if (left) while (b < e && strip_this(s[b])) ++b;
    if (right) while (e > b && strip_this(s[e - 1])) --e;
    return s.substr(b, e - b);
  }
  static std::string Title(const std::string& s) {
    std::string out = s;
    bool start = true;
    for (char& c : out) {
      if (std::isalpha(static_cast<unsigned char>(c))) {
        c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
        start = false;
      } else {
        start = true;
      }
    }
    return out;
  }
  static std::string ReplaceAll(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
    if (from.empty()) return s;
    std::string out;
    size_t last = 0;
    for (size_t p = s.find(from); p != std::string::npos && count != 0; p = s.find(from, last), --count) {
      out.append(s, last, p - last);
      out += to;
      last = p + from.size();
      Capped(out);
    }
    return out + s.substr(last);
  }
  static List Split(const std::string& s, const Value& sep, int64_t maxsplit) {
    List out;
    if (sep.kind != Value::kString) {  // whitespace runs, no empty pieces
      size_t p = 0;
      while (p < s.size()) {
        while (p < s.size() && IsPySpace(s[p])) ++p;
        if (p >= s.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
          size_t e = s.size();
          while (e > p && IsPySpace(s[e - 1])) --e;
          out.push_back(Value::Str(s.substr(p, e - p)));
          break;
        }
        size_t e = p;
        while (e < s.size() && !IsPySpace(s[e])) ++e;
        out.push_back(Value::Str(s.substr(p, e - p)));
        p = e;
      }
      return out;
    }
    if (sep.s.empty()) Fail("split: empty separator");
    size_t last = 0;
    for (size_t p = s.find(sep.s); p != std::string::npos && maxsplit != 0; p = s.find(sep.s, last), --maxsplit) {
      out.push_back(Value::Str(s.substr(last, p - last)));
      last = p + sep.s.size();
    }
    out.push_back(Value::Str(s.substr(last)));
    return out;
  }

  Value Method(const Value& obj, const std::string& name, const std::vector<Value>& args, int line) {
    auto arg = [&](size_t k) { return k < args.size() ? args[k] : Value(); };
    auto where = [&] { return "line " + std::to_string(line) + ": "; };
    if (obj.kind == Value::kString) {
      const std::string& s = obj.s;
      auto str_arg = [&](size_t k) {
        if (arg(k).kind != Value::kString) Fail(where() + name + "() needs a string argument");
        return arg(k).s;
      };
      if (name == "startswith") return Value::Bool(s.rfind(str_arg(0), 0) == 0);
      if (name == "endswith") {
        std::string x = str_arg(0);
        return Value::Bool(s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0);
      }
      if (name == "strip") return Value::Str(Strip(s, arg(0), true, true));
      if (name == "lstrip") return Value::Str(Strip(s, arg(0), true, false));
      if (name == "rstrip") return Value::Str(Strip(s, arg(0), false, true));
      if (name == "split") return Value::MakeList(Split(s, arg(0), arg(1).kind == Value::kInt ? arg(1).i : -1));
      if (name == "rsplit" && (args.size() < 2 || arg(1).kind != Value::kInt || arg(1).i < 0)) {
        return Value::MakeList(Split(s, arg(0), -1));
      }
      if (name == "replace") {
        return Value::Str(ReplaceAll(s, str_arg(0), str_arg(1), arg(2).kind == Value::kInt ? arg(2).i : -1));
      }
      if (name == "upper") return Value::Str(UpperAscii(s));
      if (name == "lower") return Value::Str(LowerAscii(s));
      if (name == "title") return Value::Str(Title(s));
      if (name == "capitalize") {
        std::string c = LowerAscii(s);
        if (!c.empty()) c[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(c[0])));
        return Value::Str(c);
      }
      if (name == "find") {
        size_t p = s.find(str_arg(0));
        return Value::Int(p == std::string::npos ? -1 : static_cast<int64_t>(CodePoints(s.substr(0, p)).size()));
      }
      if (name == "count") {
        std::string x = str_arg(0);
        if (x.empty()) return Value::Int(static_cast<int64_t>(CodePoints(s).size()) + 1);
        int64_t c = 0;
        for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) ++c;
        return Value::Int(c);
      }
      if (name == "join") {
        if (arg(0).kind != Value::kList) Fail(where() + "join() needs a list");
        std::string out;
        for (size_t k = 0; k < arg(0).list->size(); ++k) Capped(out += (k ? s : "") + ToString((*arg(0).list)[k]));
        return Value::Str(out);
      }
    }
    if (obj.kind == Value::kDict) {
      if (name == "items") {
        List l;
        for (const auto& [k, v] : *obj.dict) l.push_back(Value::MakeList({Value::Str(k), v}));
        return Value::MakeList(std::move(l));
      }
      if (name == "keys") {
        List l;
        for (const auto& [k, v] : *obj.dict) l.push_back(Value::Str(k));
        return Value::MakeList(std::move(l));
      }
      if (name == "values") {
        List l;
        for (const auto& [k, v] : *obj.dict) l.push_back(v);
        return Value::MakeList(std::move(l));
      }
      if (name == "get") {
        const Value* v = arg(0).kind == Value::kString ? obj.Find(arg(0).s) : nullptr;
        return v ? *v : args.size() > 1 ? args[1] : Value::None();
      }
    }
    if (obj.kind == Value::kList && name == "index") {
      for (size_t k = 0; k < obj.list->size(); ++k) if (Equal((*obj.list)[k], arg(0))) return Value::Int(static_cast<int64_t>(k));
      Fail(where() + "index(): not in list");
    }
    Fail(where() + "unknown method '" + name + "' of " + (obj.defined() ? PyRepr(obj) : std::string("an undefined value")));
  }

  Value Global(const std::string& name, const std::vector<Value>& args,
               const std::vector<std::pair<std::string, Value>>& kwargs, int line) {
    if (name == "raise_exception") {
      throw TemplateError{StatusCode::kInvalidArgument, args.empty() ? "raise_exception()" : ToString(args[0])};
    }
    if (name == "namespace") {
      Value ns;
      ns.kind = Value::kNamespace;
      ns.dict = std::make_shared<Dict>();
      for (const auto& [k, v] : kwargs) ns.dict->emplace_back(k, v);
      namespaces_.push_back(ns.dict);
      return ns;
    }
    if (name == "range") {
      int64_t start = 0, stop = 0, step = 1;
      auto num = [&](size_t k) {
        if (args[k].kind != Value::kInt) Fail("line " + std::to_string(line) + ": range() needs integers");
        return args[k].i;
      };
      if (args.size() == 1) stop = num(0);
      else if (args.size() >= 2) { start = num(0); stop = num(1); if (args.size() > 2) step = num(2); }
      if (step == 0) Fail("line " + std::to_string(line) + ": range() step cannot be zero");
      List l;
      for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
        Step();
        l.push_back(Value::Int(k));
      }
      return Value::MakeList(std::move(l));
    }
    if (name == "dict") {
      Dict d;
      for (const auto& [k, v] : kwargs) d.emplace_back(k, v);
      return Value::MakeDict(std::move(d));
    }
    Fail("line " + std::to_string(line) + ": unknown function '" + name + "'" +
         (name == "strftime_now" ? " (strftime_now is not provided: the date would make renders differ)" : ""));
  }

  // select / reject / selectattr / rejectattr.
  Value Select(const Value& seq, const std::vector<Value>& args, bool by_attr, bool keep, int line) {
    List items = Iterate(seq, line);
    List out;
    size_t at = 0;
    std::string attr;
    if (by_attr) {
      if (args.empty() || args[0].kind != Value::kString) Fail("line " + std::to_string(line) + ": selectattr needs an attribute name");
      attr = args[0].s;
      at = 1;
    }
    for (const Value& item : items) {
      Value v = by_attr ? Attr(item, attr) : item;
      bool pass;
      if (at < args.size()) {
        if (args[at].kind != Value::kString) Fail("line " + std::to_string(line) + ": the test must be named by a string");
        std::vector<Value> targs(args.begin() + at + 1, args.end());
        pass = Test(args[at].s, v, targs, line);
      } else {
        pass = Truthy(v);
      }
      if (pass == keep) out.push_back(item);
    }
    return Value::MakeList(std::move(out));
  }

  Value Filter(const std::string& name, const Value& v, const std::vector<Value>& args,
               const std::vector<std::pair<std::string, Value>>& kwargs, int line) {
    auto where = [&] { return "line " + std::to_string(line) + ": "; };
    auto kwarg = [&](const char* key) -> std::optional<Value> {
      for (const auto& [k, x] : kwargs) if (k == key) return x;
      return std::nullopt;
    };
    if (name == "trim") {
      if (v.kind != Value::kString) return Value::Str(Strip(ToString(v), Value(), true, true));
      return Value::Str(Strip(v.s, args.empty() ? Value() : args[0], true, true));
    }
    if (name == "length" || name == "count") {
      switch (v.kind) {
        case Value::kString: return Value::Int(static_cast<int64_t>(CodePoints(v.s).size()));
        case Value::kList: return Value::Int(static_cast<int64_t>(v.list->size()));
        case Value::kDict: case Value::kNamespace: return Value::Int(static_cast<int64_t>(v.dict->size()));
        case Value::kUndefined: return Value::Int(0);
        default: Fail(where() + "length of " + PyRepr(v));
      }
    }
    if (name == "join") {
      std::string sep = args.empty() ? "" : ToString(args[0]);
      std::optional<Value> attr = kwarg("attribute");
      List items = Iterate(v, line);
      std::string out;
      for (size_t k = 0; k < items.size(); ++k) {
        out += (k ? sep : "") + ToString(attr ? Attr(items[k], ToString(*attr)) : items[k]);
        Capped(out);
      }
      return Value::Str(out);
    }
    if (name == "items") {
      if (v.kind == Value::kUndefined) return Value::MakeList();
      if (v.kind != Value::kDict) Fail(where() + "items of " + PyRepr(v));
      return Method(v, "items", {}, line);
    }
    if (name == "list") return Value::MakeList(Iterate(v, line));
    if (name == "string") return Value::Str(ToString(v));
    if (name == "safe" || name == "e" || name == "escape") {
      if (name == "safe") return v;
      std::string s = ToString(v), out;
      for (char c : s) {
        switch (c) {
          case '&': out += "&amp;"; break;
          case '<': out += "&lt;"; break;
          case '>': out += "&gt;"; break;
          case '"': out += "&#34;"; break;
          case '\'': out += "&#39;"; break;
          default: out += c;
        }
      }
      return Value::Str(out);
    }
    if (name == "first" || name == "last") {
      List items = Iterate(v, line);
      if (items.empty()) return Value();
      return name == "first" ? items.front() : items.back();
    }
    if (name == "lower") return Value::Str(LowerAscii(ToString(v)));
    if (name == "upper") return Value::Str(UpperAscii(ToString(v)));
    if (name == "title") return Value::Str(Title(ToString(v)));
    if (name == "capitalize") return Method(Value::Str(ToString(v)), "capitalize", {}, line);
    if (name == "replace") {
      if (args.size() < 2) Fail(where() + "replace needs two arguments");
      return Value::Str(ReplaceAll(ToString(v), ToString(args[0]), ToString(args[1]),
                                   args.size() > 2 && args[2].kind == Value::kInt ? args[2].i : -1));
    }
    if (name == "default" || name == "d") {
      const bool boolean = (args.size() > 1 && Truthy(args[1])) || (kwarg("boolean") && Truthy(*kwarg("boolean")));
      if (!v.defined() || (boolean && !Truthy(v))) return args.empty() ? Value::Str("") : args[0];
      return v;
    }
    if (name == "tojson") {
      int indent = -1;
      std::optional<Value> ind = kwarg("indent");
      if (!ind && !args.empty()) ind = args[0];
      if (ind && ind->kind == Value::kInt) indent = static_cast<int>(std::clamp<int64_t>(ind->i, 0, 64));
      std::string out;
      JsonDump(v, indent, 0, &out);
      return Value::Str(Capped(out));
    }
    if (name == "select") return Select(v, args, false, true, line);
    if (name == "reject") return Select(v, args, false, false, line);
    if (name == "selectattr") return Select(v, args, true, true, line);
    if (name == "rejectattr") return Select(v, args, true, false, line);
    if (name == "map") {
      List items = Iterate(v, line), out;
      std::optional<Value> attr = kwarg("attribute");
      for (const Value& item : items) {
        if (attr) out.push_back(Attr(item, ToString(*attr)));
        else if (!args.empty() && args[0].kind == Value::kString) {
          std::vector<Value> rest(args.begin() + 1, args.end());
          out.push_back(Filter(args[0].s, item, rest, {}, line));
        } else {
          Fail(where() + "map needs attribute= or a filter name");
        }
      }
      return Value::MakeList(std::move(out));
    }
    if (name == "unique") {
      List out;
      for (const Value& item : Iterate(v, line)) {
        if (std::none_of(out.begin(), out.end(), [&](const Value& x) { return Equal(x, item); })) out.push_back(item);
      }
      return Value::MakeList(std::move(out));
    }
    if (name == "reverse") {
      if (v.kind == Value::kString) {
        std::vector<uint32_t> cps = CodePoints(v.s);
        std::reverse(cps.begin(), cps.end());
        return Value::Str(FromCodePoints(cps, 0, cps.size()));
      }
      List items = Iterate(v, line);
      std::reverse(items.begin(), items.end());
      return Value::MakeList(std::move(items));
    }
    if (name == "sort") {
      List items = Iterate(v, line);
      std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
        return Truthy(Binary("<", a, b, line));
      });
      return Value::MakeList(std::move(items));
    }
    if (name == "int") {
      if (v.kind == Value::kInt) return v;
      if (v.kind == Value::kFloat) return Value::Int(static_cast<int64_t>(v.f));
      if (v.kind == Value::kBool) return Value::Int(v.b);
      if (v.kind == Value::kString) {
        char* end = nullptr;
        long long x = std::strtoll(v.s.c_str(), &end, 10);
        return Value::Int(end != v.s.c_str() && *end == '\0' ? x : 0);
      }
      return Value::Int(0);
    }
    if (name == "float") {
      if (v.is_number()) return Value::Float(v.num());
      if (v.kind == Value::kString) return Value::Float(std::strtod(v.s.c_str(), nullptr));
      return Value::Float(0);
    }
    if (name == "abs") {
      if (v.kind == Value::kInt) return Value::Int(v.i < 0 ? -v.i : v.i);
      if (v.is_number()) return Value::Float(std::fabs(v.num()));
      Fail(where() + "abs of " + PyRepr(v));
    }
    if (name == "round") {
      int64_t digits = !args.empty() && args[0].kind == Value::kInt ? args[0].i : 0;
      double p = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(digits, -20, 20)));
      return Value::Float(std::nearbyint(v.num() * p) / p);
    }
    if (name == "wordcount") return Value::Int(static_cast<int64_t>(Split(ToString(v), Value(), -1).size()));
    if (name == "indent") {
      int64_t width = !args.empty() && args[0].kind == Value::kInt ? std::clamp<int64_t>(args[0].i, 0, 256) : 4;
      const bool first = (args.size() > 1 && Truthy(args[1])) || (kwarg("first") && Truthy(*kwarg("first")));
      std::string pad(static_cast<size_t>(width), ' '), s = ToString(v), out = first ? pad : "";
      for (size_t k = 0; k < s.size(); ++k) {
        out += s[k];
        if (s[k] == '\n' && k + 1 < s.size() && s[k + 1] != '\n') out += pad;
      }
      return Value::Str(Capped(out));
    }
    Fail(where() + "unknown filter '" + name + "'");
  }

  Value Eval(const Expr& e) {
    Step();
    if (++depth_ > kMaxDepth) Fail("line " + std::to_string(e.line) + ": expression nested too deep");
    Value v = EvalInner(e);
    --depth_;
    return v;
  }

  Value EvalInner(const Expr& e) {
    switch (e.kind) {
      case Expr::kLiteral: return e.literal;
      case Expr::kName: return Lookup(e.name);
      case Expr::kList: case Expr::kTuple: {
        List l;
        for (const auto& a : e.args) l.push_back(Eval(*a));
        return Value::MakeList(std::move(l));
      }
      case Expr::kDict: {
        Dict d;
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          Value key = Eval(*e.args[k]);
          if (key.kind != Value::kString) Fail("line " + std::to_string(e.line) + ": dict keys must be strings");
          Value val = Eval(*e.args[k + 1]);
          bool replaced = false;
          for (auto& [dk, dv] : d) if (dk == key.s) { dv = val; replaced = true; }
          if (!replaced) d.emplace_back(key.s, val);
        }
        return Value::MakeDict(std::move(d));
      }
      case Expr::kAttr: return Attr(Eval(*e.args[0]), e.name);
      case Expr::kItem: return Item(Eval(*e.args[0]), Eval(*e.args[1]));
      case Expr::kSlice: {
        Value obj = Eval(*e.args[0]);
        Value parts[3];
        for (int k = 0; k < 3; ++k) {
          if (e.args[k + 1]) {
            parts[k] = Eval(*e.args[k + 1]);
            if (parts[k].kind != Value::kInt && parts[k].kind != Value::kNone) {
              Fail("line " + std::to_string(e.line) + ": slice indices must be integers");
            }
          }
        }
        return Slice(obj, parts[0], parts[1], parts[2], e.line);
      }
      case Expr::kCall: {
        std::vector<Value> args;
        for (size_t k = 1; k < e.args.size(); ++k) args.push_back(Eval(*e.args[k]));
        std::vector<std::pair<std::string, Value>> kwargs;
        for (const auto& [k, x] : e.kwargs) kwargs.emplace_back(k, Eval(*x));
        const Expr& callee = *e.args[0];
        if (callee.kind == Expr::kAttr) return Method(Eval(*callee.args[0]), callee.name, args, e.line);
        if (callee.kind == Expr::kName) return Global(callee.name, args, kwargs, e.line);
        Fail("line " + std::to_string(e.line) + ": this expression cannot be called");
      }
      case Expr::kFilter: {
        Value v = Eval(*e.args[0]);
        std::vector<Value> args;
        for (size_t k = 1; k < e.args.size(); ++k) args.push_back(Eval(*e.args[k]));
        std::vector<std::pair<std::string, Value>> kwargs;
        for (const auto& [k, x] : e.kwargs) kwargs.emplace_back(k, Eval(*x));
        return Filter(e.name, v, args, kwargs, e.line);
      }
      case Expr::kTest: {
        Value v = Eval(*e.args[0]);
        std::vector<Value> args;
        for (size_t k = 1; k < e.args.size(); ++k) args.push_back(Eval(*e.args[k]));
        return Value::Bool(Test(e.name, v, args, e.line) != e.negated);
      }
      case Expr::kUnary: {
        Value v = Eval(*e.args[0]);
        if (!v.is_number()) Fail("line " + std::to_string(e.line) + ": bad operand for unary " + e.name);
        if (e.name == "+") return v;
        return v.kind == Value::kFloat ? Value::Float(-v.f) : Value::Int(-(v.kind == Value::kBool ? v.b : v.i));
      }
      case Expr::kBinary: return Binary(e.name, Eval(*e.args[0]), Eval(*e.args[1]), e.line);
      case Expr::kConcat: {
        std::string a = ToString(Eval(*e.args[0]));
        std::string b = ToString(Eval(*e.args[1]));
        if (a.size() + b.size() > kMaxOutput) Fail("line " + std::to_string(e.line) + ": a string passed 64 MiB");
        return Value::Str(a + b);
      }
      case Expr::kAnd: {
        Value a = Eval(*e.args[0]);
        return Truthy(a) ? Eval(*e.args[1]) : a;
      }
      case Expr::kOr: {
        Value a = Eval(*e.args[0]);
        return Truthy(a) ? a : Eval(*e.args[1]);
      }
      case Expr::kNot: return Value::Bool(!Truthy(Eval(*e.args[0])));
      case Expr::kCond:
        if (Truthy(Eval(*e.args[1]))) return Eval(*e.args[0]);
        return e.args.size() > 2 ? Eval(*e.args[2]) : Value();
    }
    return Value();
  }

  std::vector<std::map<std::string, Value>> scopes_;
  std::vector<std::shared_ptr<Dict>> namespaces_;  // every namespace() this render made
  std::string out_;
  uint64_t steps_ = 0;
  int depth_ = 0;
};

}  // namespace

struct ChatTemplate::Program {
  std::vector<NodePtr> nodes;
};

StatusOr<ChatTemplate> ChatTemplate::Parse(const std::string& source, const std::string& name) {
  if (source.size() > (16u << 20)) return Status::InvalidArgument(name + ": the template is larger than 16 MiB");
  try {
    auto program = std::make_shared<Program>();
    Parser parser(Lex(source));
    program->nodes = parser.ParseAll();
    ChatTemplate t;
    t.program_ = std::move(program);
    t.name_ = name;
    return t;
  } catch (const TemplateError& e) {
    return Status(e.code, name + ": " + e.message);
  }
}

StatusOr<std::string> ChatTemplate::Render(const nlohmann::json& context) const {
  try {
    Renderer r(context);
    return r.Run(program_->nodes);
  } catch (const TemplateError& e) {
    return Status(e.code, name_ + ": " + e.message);
  }
}

StatusOr<std::string> ChatTemplate::Apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                          const std::string& bos_token, const std::string& eos_token) const {
  nlohmann::json m = nlohmann::json::array();
  for (const ChatMessage& msg : messages) m.push_back({{"role", msg.role}, {"content", msg.content}});
  return Render({{"messages", m}, {"add_generation_prompt", add_generation_prompt}, {"bos_token", bos_token},
                 {"eos_token", eos_token}});
}

}  // namespace llmflash

#include "cri/cni/template.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <variant>

#include <fmt/format.h>

#include "common/fs.h"
#include "cri/cni/result.h"

namespace berth::cri::cni {
namespace {

// ---- lexing: text and {{actions}} ----

struct Token {
  bool action = false;
  std::string text;  // text, or the action's inside with trim markers and blanks removed
  int line = 1;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

Result<std::vector<Token>> Lex(std::string_view in) {
  std::vector<Token> out;
  int line = 1;
  bool trim_next = false;
  size_t pos = 0;
  auto count_lines = [&](std::string_view s) {
    line += static_cast<int>(std::count(s.begin(), s.end(), '\n'));
  };
  while (pos <= in.size()) {
    size_t open = in.find("{{", pos);
    std::string_view text = in.substr(pos, open == std::string_view::npos ? in.npos : open - pos);
    int text_line = line;
    count_lines(text);
    bool trim_left = open != std::string_view::npos && open + 3 < in.size() &&
                     in[open + 2] == '-' && IsSpace(in[open + 3]);
    if (trim_next) {
      while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
    }
    if (trim_left) {
      while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
    }
    std::string t(text);
    if (!t.empty()) out.push_back(Token{.action = false, .text = std::move(t), .line = text_line});
    if (open == std::string_view::npos) break;

    // Find the closing braces, skipping quoted strings (only to report them as unsupported).
    size_t i = open + 2;
    char quote = 0;
    size_t close = std::string_view::npos;
    for (; i + 1 < in.size(); ++i) {
      char c = in[i];
      if (quote != 0) {
        if (c == '\\' && quote != '`') {
          ++i;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '"' || c == '`' || c == '\'') {
        quote = c;
      } else if (c == '}' && in[i + 1] == '}') {
        close = i;
        break;
      }
    }
    if (close == std::string_view::npos) {
      return InvalidArgument(fmt::format("template line {}: unclosed action", line));
    }
    std::string_view inner = in.substr(open + 2, close - open - 2);
    count_lines(inner);
    if (trim_left) inner.remove_prefix(2);
    trim_next = inner.size() >= 2 && inner.back() == '-' && IsSpace(inner[inner.size() - 2]);
    if (trim_next) inner.remove_suffix(2);
    while (!inner.empty() && IsSpace(inner.front())) inner.remove_prefix(1);
    while (!inner.empty() && IsSpace(inner.back())) inner.remove_suffix(1);
    if (!(inner.starts_with("/*") && inner.ends_with("*/") && inner.size() >= 4)) {
      out.push_back(Token{.action = true, .text = std::string(inner), .line = line});
    }
    pos = close + 2;
  }
  return out;
}

// ---- parsing ----

struct Operand {
  std::string var;    // "" for dot, "$" for the root, "$name"
  std::string field;  // "" or "PodCIDR", ...
};

struct Node {
  enum Kind { kText, kPrint, kIf, kRange } kind = kText;
  std::string text;
  Operand operand;
  std::string key_var, value_var;  // range declarations
  std::vector<Node> body, else_body;
  int line = 1;
};

Error Unsupported(const Token& t) {
  return InvalidArgument(
      fmt::format("template line {}: unsupported action {:?}", t.line, "{{" + t.text + "}}"));
}

bool IsIdent(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

// ".", ".Field", "$", "$name", "$.Field", "$name.Field".
std::optional<Operand> ParseOperand(std::string_view s) {
  Operand op;
  if (s.starts_with("$")) {
    size_t dot = s.find('.');
    op.var = std::string(s.substr(0, dot));
    if (op.var != "$" && !IsIdent(std::string_view(op.var).substr(1))) return std::nullopt;
    if (dot == std::string_view::npos) return op;
    s = s.substr(dot);
  }
  if (!s.starts_with(".")) return std::nullopt;
  if (s == ".") return op.var.empty() ? std::optional(op) : std::nullopt;
  op.field = std::string(s.substr(1));
  if (!IsIdent(op.field) || std::isupper(static_cast<unsigned char>(op.field[0])) == 0) {
    return std::nullopt;
  }
  return op;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Result<std::vector<Node>> Parse() {
    std::vector<Node> nodes;
    BERTH_ASSIGN_OR_RETURN(std::string end, List(nodes));
    if (!end.empty()) {
      return InvalidArgument(fmt::format("template line {}: unexpected {{{{{}}}}}", line_, end));
    }
    return nodes;
  }

 private:
  // Parses nodes until {{end}} or {{else}} (returned) or the input's end ("").
  Result<std::string> List(std::vector<Node>& nodes) {
    while (pos_ < tokens_.size()) {
      const Token& t = tokens_[pos_++];
      line_ = t.line;
      if (!t.action) {
        nodes.push_back(Node{.kind = Node::kText, .text = t.text, .line = t.line});
        continue;
      }
      std::string_view a = t.text;
      std::string_view word = a.substr(0, a.find_first_of(" \t\r\n"));
      std::string_view rest = a.substr(word.size());
      while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
      if (a == "end" || a == "else") return std::string(a);
      if (word == "if" || word == "range") {
        Node n{.kind = word == "if" ? Node::kIf : Node::kRange, .line = t.line};
        if (n.kind == Node::kRange) {
          if (auto decl = rest.find(":="); decl != std::string_view::npos) {
            std::string vars(rest.substr(0, decl));
            std::erase_if(vars, IsSpace);
            rest = rest.substr(decl + 2);
            while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
            auto comma = vars.find(',');
            n.value_var = comma == std::string::npos ? vars : vars.substr(comma + 1);
            if (comma != std::string::npos) n.key_var = vars.substr(0, comma);
            auto valid = [](std::string_view v) {
              return v.size() >= 2 && v[0] == '$' && IsIdent(v.substr(1));
            };
            if (!valid(n.value_var) || (comma != std::string::npos && !valid(n.key_var))) {
              return Unsupported(t);
            }
          }
        }
        auto op = ParseOperand(rest);
        if (!op) return Unsupported(t);
        n.operand = *op;
        BERTH_ASSIGN_OR_RETURN(std::string end, List(n.body));
        if (end == "else") {
          BERTH_ASSIGN_OR_RETURN(end, List(n.else_body));
        }
        if (end != "end") {
          return InvalidArgument(
              fmt::format("template line {}: missing {{{{end}}}} for {{{{{}}}}}", t.line, t.text));
        }
        nodes.push_back(std::move(n));
        continue;
      }
      auto op = ParseOperand(a);
      if (!op) return Unsupported(t);
      nodes.push_back(Node{.kind = Node::kPrint, .operand = *op, .line = t.line});
    }
    return std::string();
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int line_ = 1;
};

// ---- evaluation ----

using List = std::vector<std::string>;
using Value = std::variant<std::string, List, int64_t, const TemplateData*>;

std::string Print(const Value& v) {
  auto join = [](const List& l) {
    std::string s = "[";
    for (size_t i = 0; i < l.size(); ++i) s += (i > 0 ? " " : "") + l[i];
    return s + "]";
  };
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* l = std::get_if<List>(&v)) return join(*l);
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  const TemplateData* d = std::get<const TemplateData*>(v);
  return fmt::format("{{{} {} {}}}", d->pod_cidr, join(d->pod_cidr_ranges), join(d->routes));
}

bool Truth(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return !s->empty();
  if (const auto* l = std::get_if<List>(&v)) return !l->empty();
  if (const auto* i = std::get_if<int64_t>(&v)) return *i != 0;
  return true;
}

class Evaluator {
 public:
  explicit Evaluator(const TemplateData& data) { vars_.emplace_back("$", &data); }

  Status Run(const std::vector<Node>& nodes, const Value& dot, std::string& out) {
    for (const Node& n : nodes) {
      switch (n.kind) {
        case Node::kText:
          out += n.text;
          break;
        case Node::kPrint: {
          BERTH_ASSIGN_OR_RETURN(Value v, Eval(n.operand, dot, n.line));
          out += Print(v);
          break;
        }
        case Node::kIf: {
          BERTH_ASSIGN_OR_RETURN(Value v, Eval(n.operand, dot, n.line));
          BERTH_TRY(Run(Truth(v) ? n.body : n.else_body, dot, out));
          break;
        }
        case Node::kRange:
          BERTH_TRY(Range(n, dot, out));
          break;
      }
    }
    return Ok();
  }

 private:
  Status Range(const Node& n, const Value& dot, std::string& out) {
    BERTH_ASSIGN_OR_RETURN(Value v, Eval(n.operand, dot, n.line));
    const List* list = std::get_if<List>(&v);
    if (list == nullptr) {
      return InvalidArgument(
          fmt::format("template line {}: range can't iterate over {}", n.line, Print(v)));
    }
    if (list->empty()) return Run(n.else_body, dot, out);
    for (size_t i = 0; i < list->size(); ++i) {
      size_t mark = vars_.size();
      if (!n.key_var.empty()) vars_.emplace_back(n.key_var, static_cast<int64_t>(i));
      if (!n.value_var.empty()) vars_.emplace_back(n.value_var, (*list)[i]);
      Status st = Run(n.body, (*list)[i], out);
      vars_.resize(mark);
      BERTH_TRY(st);
    }
    return Ok();
  }

  Result<Value> Eval(const Operand& op, const Value& dot, int line) {
    Value base = dot;
    if (!op.var.empty()) {
      auto it = std::find_if(vars_.rbegin(), vars_.rend(),
                             [&](const auto& kv) { return kv.first == op.var; });
      if (it == vars_.rend()) {
        return InvalidArgument(
            fmt::format("template line {}: undefined variable {:?}", line, op.var));
      }
      base = it->second;
    }
    if (op.field.empty()) return base;
    const auto* d = std::get_if<const TemplateData*>(&base);
    if (d != nullptr && op.field == "PodCIDR") return Value((*d)->pod_cidr);
    if (d != nullptr && op.field == "PodCIDRRanges") return Value((*d)->pod_cidr_ranges);
    if (d != nullptr && op.field == "Routes") return Value((*d)->routes);
    return InvalidArgument(fmt::format("template line {}: can't evaluate field {} in type {}", line,
                                       op.field, d != nullptr ? "cniConfigTemplate" : "string"));
  }

  std::vector<std::pair<std::string, Value>> vars_;
};

}  // namespace

Result<TemplateData> TemplateDataFromCidrs(const std::vector<std::string>& pod_cidrs) {
  TemplateData data;
  bool v4 = false;
  bool v6 = false;
  for (std::string c : pod_cidrs) {
    c.erase(0, c.find_first_not_of(" \t"));
    c.erase(c.find_last_not_of(" \t") + 1);
    if (!IsCidr(c)) return InvalidArgument(fmt::format("get routes: invalid CIDR address: {}", c));
    (IsIpv4(c) ? v4 : v6) = true;
    data.pod_cidr_ranges.push_back(c);
  }
  if (data.pod_cidr_ranges.empty()) return InvalidArgument("no pod CIDR given");
  data.pod_cidr = data.pod_cidr_ranges.front();
  if (v4) data.routes.emplace_back("0.0.0.0/0");
  if (v6) data.routes.emplace_back("::/0");
  return data;
}

Result<std::string> RenderTemplate(std::string_view text, const TemplateData& data) {
  BERTH_ASSIGN_OR_RETURN(auto tokens, Lex(text));
  Parser parser(std::move(tokens));
  BERTH_ASSIGN_OR_RETURN(auto nodes, parser.Parse());
  std::string out;
  Evaluator ev(data);
  BERTH_TRY(ev.Run(nodes, Value(&data), out));
  return out;
}

Status WriteConfFromTemplate(const std::string& template_path, const std::string& conf_dir,
                             const std::vector<std::string>& pod_cidrs) {
  BERTH_ASSIGN_OR_RETURN(TemplateData data, TemplateDataFromCidrs(pod_cidrs));
  auto text = fs::ReadFile(template_path);
  if (!text) {
    return std::move(text).error().Wrap(
        fmt::format("failed to parse cni config template {:?}", template_path));
  }
  auto rendered = RenderTemplate(*text, data);
  if (!rendered) {
    return std::move(rendered).error().Wrap(fmt::format("cni config template {:?}", template_path));
  }
  BERTH_TRY(fs::MkdirAll(conf_dir, 0700));
  std::string path = conf_dir + "/" + std::string(kTemplateConfName);
  if (auto st = fs::WriteFileAtomic(path, *rendered, 0644); !st) {
    return std::move(st).error().Wrap(fmt::format("failed to generate cni config file {:?}", path));
  }
  return Ok();
}

}  // namespace berth::cri::cni

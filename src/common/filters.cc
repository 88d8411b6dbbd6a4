#include "common/filters.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "common/log.h"

// The scanner and parser keep containerd 1.6's behaviour (filters/scanner.go, parser.go,
// quote.go) down to its quirks, because error texts and positions reach clients: runes are
// decoded as Go's utf8 package does, whitespace is skipped only by Scan() (never by Peek()), and
// the first scanner error sticks for the whole parse.

namespace berth::filters {
namespace {

constexpr int32_t kEof = -1;
constexpr int32_t kIllegal = -2;
constexpr int32_t kRuneError = 0xFFFD;
constexpr int32_t kMaxRune = 0x10FFFF;

struct Decoded {
  int32_t rune;
  size_t width;  // 0 only for empty input
};

// Go's utf8.DecodeRuneInString: invalid or truncated encodings (overlong forms, surrogates,
// > U+10FFFF) decode as (kRuneError, 1).
Decoded DecodeRune(std::string_view s) {
  if (s.empty()) {
    return {kRuneError, 0};
  }
  const auto c0 = static_cast<uint8_t>(s[0]);
  if (c0 < 0x80) {
    return {c0, 1};
  }
  if (c0 < 0xC2 || c0 >= 0xF5) {  // continuation byte, overlong 2-byte form, or > U+10FFFF
    return {kRuneError, 1};
  }
  size_t n = 0;
  int32_t rune = 0;
  uint8_t lo = 0x80;
  uint8_t hi = 0xBF;
  if (c0 < 0xE0) {
    n = 2;
    rune = c0 & 0x1F;
  } else if (c0 < 0xF0) {
    n = 3;
    rune = c0 & 0x0F;
    lo = c0 == 0xE0 ? 0xA0 : lo;
    hi = c0 == 0xED ? 0x9F : hi;
  } else {
    n = 4;
    rune = c0 & 0x07;
    lo = c0 == 0xF0 ? 0x90 : lo;
    hi = c0 == 0xF4 ? 0x8F : hi;
  }
  if (s.size() < n) {
    return {kRuneError, 1};
  }
  for (size_t i = 1; i < n; ++i) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) {
      return {kRuneError, 1};
    }
    rune = (rune << 6) | (c & 0x3F);
  }
  return {rune, n};
}

// Go's utf8.EncodeRune: invalid runes (negative, surrogates, > U+10FFFF) become U+FFFD.
void AppendRune(std::string& out, int32_t rune) {
  if (rune < 0 || rune > kMaxRune || (rune >= 0xD800 && rune <= 0xDFFF)) {
    rune = kRuneError;
  }
  const auto r = static_cast<uint32_t>(rune);
  if (r < 0x80) {
    out.push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (r >> 6)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (r >> 12)));
    out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (r >> 18)));
    out.push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

std::string RuneString(int32_t rune) {
  std::string out;
  AppendRune(out, rune);
  return out;
}

// Go's unicode.IsSpace.
bool IsSpace(int32_t r) {
  constexpr std::array<int32_t, 14> kSpaces = {'\t',   '\n',   '\v',   '\f',   '\r',
                                               ' ',    0x85,   0xA0,   0x1680, 0x2028,
                                               0x2029, 0x202F, 0x205F, 0x3000};
  return (r >= 0x2000 && r <= 0x200A) ||
         std::find(kSpaces.begin(), kSpaces.end(), r) != kSpaces.end();
}

// Go's unicode.IsGraphic: letters, marks, numbers, punctuation, symbols and Zs spaces.
bool IsGraphic(int32_t r) {
  if (r < 0) {
    return false;
  }
  if (r < 0x80) {
    return r >= 0x20 && r < 0x7F;
  }
  static const RE2* const kGraphic = new RE2(R"([\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}])");
  return RE2::FullMatch(RuneString(r), *kGraphic);
}

bool IsFieldRune(int32_t r) {
  return r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9');
}
bool IsOperatorRune(int32_t r) { return r == '=' || r == '!' || r == '~'; }
bool IsQuoteRune(int32_t r) { return r == '/' || r == '|' || r == '"'; }
bool IsSeparatorRune(int32_t r) { return r == ',' || r == '.'; }
bool IsValueRune(int32_t r) { return r != ',' && !IsSpace(r) && IsGraphic(r); }

int DigitVal(int32_t r) {
  if (r >= '0' && r <= '9') {
    return r - '0';
  }
  if (r >= 'a' && r <= 'f') {
    return r - 'a' + 10;
  }
  if (r >= 'A' && r <= 'F') {
    return r - 'A' + 10;
  }
  return 16;  // larger than any digit of any base used here
}

// The byte a one-letter Go escape (\a \b \f \n \r \t \v \\) stands for; 0 for other runes.
char SimpleEscape(int32_t e) {
  constexpr std::string_view kLetters = "abfnrtv\\";
  constexpr std::string_view kBytes = "\a\b\f\n\r\t\v\\";
  const size_t i = e > 0 && e < 0x80 ? kLetters.find(static_cast<char>(e)) : std::string_view::npos;
  return i == std::string_view::npos ? '\0' : kBytes[i];
}

// How many hex digits follow \x, \u, \U; 0 for other runes.
int HexEscapeDigits(int32_t e) { return e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0; }

bool IsOctalDigit(int32_t r) { return r >= '0' && r <= '7'; }

// Go's regexp rejects \C (any byte), which RE2 accepts; \Q...\E quotes it.
bool HasAnyByteEscape(std::string_view pattern) {
  for (size_t i = 0; i + 1 < pattern.size(); ++i) {
    if (pattern[i] != '\\') {
      continue;
    }
    const char e = pattern[++i];
    if (e == 'C') {
      return true;
    }
    if (e == 'Q') {
      const size_t end = pattern.find("\\E", i + 1);
      if (end == std::string_view::npos) {
        return false;
      }
      i = end + 1;
    }
  }
  return false;
}

enum class TokenKind { kEof, kIllegal, kQuoted, kValue, kField, kSeparator, kOperator, kOther };

struct Token {
  TokenKind kind;
  size_t pos;             // byte offset of the token's first rune
  std::string_view text;  // empty for kEof, kIllegal (unquoted) and kOther
};

class Scanner {
 public:
  explicit Scanner(std::string_view input) : input_(input) {}

  // Consumes one rune; kEof at the end, kIllegal (with Err() set) for a bad or NUL rune.
  int32_t Next() {
    if (pos_ >= input_.size()) {
      return kEof;
    }
    pos_ = next_;
    const Decoded d = DecodeRune(input_.substr(next_));
    next_ += d.width;
    if (d.width == 0) {
      return kEof;
    }
    if (d.rune == kRuneError) {  // containerd also rejects a well-encoded U+FFFD
      SetError("rune error");
      return kIllegal;
    }
    if (d.rune == 0) {
      SetError("unexpected null");
      return kIllegal;
    }
    return d.rune;
  }

  // The next rune, not consumed and not skipping whitespace.
  int32_t Peek() {
    const size_t pos = pos_;
    const size_t next = next_;
    const int32_t ch = Next();
    pos_ = pos;
    next_ = next;
    return ch;
  }

  Token Scan() {
    int32_t ch = Next();
    size_t pos = pos_;
    while (ch >= 0 && IsSpace(ch)) {
      ch = Next();
      pos = pos_;
    }
    if (ch == kEof) {
      return {TokenKind::kEof, pos, {}};
    }
    if (ch == kIllegal) {
      return {TokenKind::kIllegal, pos, {}};
    }
    if (IsQuoteRune(ch)) {
      const bool ok = ScanQuoted(ch);
      return {ok ? TokenKind::kQuoted : TokenKind::kIllegal, pos, Since(pos)};
    }
    if (IsSeparatorRune(ch)) {
      value_ = false;
      return {TokenKind::kSeparator, pos, Since(pos)};
    }
    if (IsOperatorRune(ch)) {
      SkipWhile(IsOperatorRune);
      value_ = true;
      return {TokenKind::kOperator, pos, Since(pos)};
    }
    if (value_) {  // right after an operator, any other first rune starts a value
      SkipWhile(IsValueRune);
      value_ = false;
      return {TokenKind::kValue, pos, Since(pos)};
    }
    if (IsFieldRune(ch)) {
      SkipWhile(IsFieldRune);
      return {TokenKind::kField, pos, Since(pos)};
    }
    return {TokenKind::kOther, pos, {}};
  }

  // Offset just past the last consumed rune.
  size_t NextPos() const { return next_; }
  const std::string& Err() const { return err_; }

 private:
  std::string_view Since(size_t pos) const { return input_.substr(pos, next_ - pos); }

  void SkipWhile(bool (*pred)(int32_t)) {
    while (pred(Peek())) {
      Next();
    }
  }

  // Called after the opening quote; false (error set) when unterminated or badly escaped.
  bool ScanQuoted(int32_t quote) {
    bool illegal = false;
    int32_t ch = Next();
    while (ch != quote) {
      if (ch == '\n' || ch < 0) {
        SetError("quoted literal not terminated");
        return false;
      }
      if (ch == '\\') {
        bool legal = false;
        ch = ScanEscape(quote, &legal);
        illegal = illegal || !legal;
      } else {
        ch = Next();
      }
    }
    return !illegal;
  }

  // Called after a backslash; returns the rune following the escape sequence.
  int32_t ScanEscape(int32_t quote, bool* legal) {
    const int32_t ch = Next();
    if (SimpleEscape(ch) != '\0' || ch == quote) {
      *legal = true;
      return Next();
    }
    if (IsOctalDigit(ch)) {
      return ScanDigits(ch, 8, 3, legal);
    }
    if (const int n = HexEscapeDigits(ch); n > 0) {
      return ScanDigits(Next(), 16, n, legal);
    }
    SetError("illegal escape sequence");
    *legal = false;
    return ch;
  }

  int32_t ScanDigits(int32_t ch, int base, int n, bool* legal) {
    for (; n > 0 && DigitVal(ch) < base; --n) {
      ch = Next();
    }
    *legal = n == 0;
    if (!*legal) {
      SetError("illegal numeric escape sequence");
    }
    return ch;
  }

  void SetError(std::string_view msg) {
    if (err_.empty()) {
      err_ = msg;
    }
  }

  std::string_view input_;
  size_t pos_ = 0;   // start of the current rune
  size_t next_ = 0;  // start of the next rune
  bool value_ = false;
  std::string err_;
};

// containerd's quote.go: Go's strconv.Unquote with "/" and "|" accepted as double quotes. The
// scanner already checked the shape; this still rejects what it lets through (\777, \U00110000).
std::optional<std::string> UnquoteGo(std::string_view s) {
  if (s.size() < 2 || s.front() != s.back()) {
    return std::nullopt;
  }
  const char quote = s.front();
  std::string_view body = s.substr(1, s.size() - 2);
  if (body.find('\n') != std::string_view::npos) {
    return std::nullopt;
  }
  if (body.find('\\') == std::string_view::npos && body.find(quote) == std::string_view::npos) {
    return std::string(body);
  }
  std::string out;
  out.reserve(body.size());
  while (!body.empty()) {
    const auto c = static_cast<unsigned char>(body[0]);
    if (c == static_cast<unsigned char>(quote)) {
      return std::nullopt;
    }
    if (c >= 0x80) {
      const Decoded d = DecodeRune(body);
      AppendRune(out, d.rune);
      body.remove_prefix(d.width);
      continue;
    }
    if (c != '\\') {
      out.push_back(static_cast<char>(c));
      body.remove_prefix(1);
      continue;
    }
    if (body.size() <= 1) {
      return std::nullopt;
    }
    const char e = body[1];
    body.remove_prefix(2);
    if (const char b = SimpleEscape(e); b != '\0') {
      out.push_back(b);
    } else if (const int n = HexEscapeDigits(e); n > 0) {
      if (body.size() < static_cast<size_t>(n)) {
        return std::nullopt;
      }
      int64_t v = 0;
      for (int j = 0; j < n; ++j) {
        const int d = DigitVal(static_cast<unsigned char>(body[j]));
        if (d >= 16) {
          return std::nullopt;
        }
        v = (v << 4) | d;
      }
      body.remove_prefix(n);
      if (e == 'x') {
        out.push_back(static_cast<char>(v));  // one byte, possibly not UTF-8
      } else if (v > kMaxRune) {
        return std::nullopt;
      } else {
        AppendRune(out, static_cast<int32_t>(v));
      }
    } else if (IsOctalDigit(e)) {  // exactly three digits, at most \377
      if (body.size() < 2 || !IsOctalDigit(body[0]) || !IsOctalDigit(body[1])) {
        return std::nullopt;
      }
      const int v = ((e - '0') << 6) | ((body[0] - '0') << 3) | (body[1] - '0');
      body.remove_prefix(2);
      if (v > 255) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(v));
    } else if (e == quote) {  // \" inside "...", \/ inside /.../, \| inside |...|
      out.push_back(e);
    } else {
      return std::nullopt;
    }
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view input) : input_(input), scanner_(input) {}

  Result<std::vector<Selector>> Selectors() {
    std::vector<Selector> selectors;
    BERTH_ASSIGN_OR_RETURN(Selector first, ParseSelector());
    selectors.push_back(std::move(first));
    while (true) {
      const int32_t ch = scanner_.Peek();
      if (ch == kEof) {
        return selectors;
      }
      if (ch != ',') {
        return MakeError(scanner_.NextPos(), "unexpected input: " + RuneString(ch));
      }
      (void)scanner_.Scan();  // the ","
      BERTH_ASSIGN_OR_RETURN(Selector next, ParseSelector());
      selectors.push_back(std::move(next));
    }
  }

 private:
  Result<Selector> ParseSelector() {
    Selector selector;
    BERTH_ASSIGN_OR_RETURN(selector.fieldpath, Fieldpath());
    const int32_t ch = scanner_.Peek();
    if (ch == ',' || ch == kEof) {
      selector.op = Operator::kPresent;
      return selector;
    }
    BERTH_ASSIGN_OR_RETURN(selector.op, ParseOperator());
    BERTH_ASSIGN_OR_RETURN(selector.value, Value(selector.op == Operator::kMatches));
    if (selector.op == Operator::kMatches) {
      RE2::Options options;
      options.set_log_errors(false);
      auto re = std::make_shared<const RE2>(selector.value, options);
      if (re->ok() && !HasAnyByteEscape(selector.value)) {
        selector.regexp = std::move(re);
      } else {
        // containerd logs this at match time and matches nothing (filters/filter.go).
        log::L()
            .With("regexp", selector.value)
            .With("error", re->ok() ? "invalid escape sequence: \\C" : re->error())
            .Error("error compiling regexp");
      }
    }
    return selector;
  }

  Result<std::vector<std::string>> Fieldpath() {
    std::vector<std::string> fieldpath;
    BERTH_ASSIGN_OR_RETURN(std::string first, Field());
    fieldpath.push_back(std::move(first));
    while (scanner_.Peek() == '.') {
      (void)scanner_.Scan();  // the "."
      BERTH_ASSIGN_OR_RETURN(std::string next, Field());
      fieldpath.push_back(std::move(next));
    }
    return fieldpath;
  }

  Result<std::string> Field() {
    const Token tok = scanner_.Scan();
    switch (tok.kind) {
      case TokenKind::kField:
        return std::string(tok.text);
      case TokenKind::kQuoted:
        return Unquote(tok, /*allow_alt_quotes=*/false);
      case TokenKind::kIllegal:
        return MakeError(tok.pos, scanner_.Err());
      default:
        return MakeError(tok.pos, "expected field or quoted");
    }
  }

  Result<Operator> ParseOperator() {
    const Token tok = scanner_.Scan();
    switch (tok.kind) {
      case TokenKind::kOperator:
        if (tok.text == "==") {
          return Operator::kEqual;
        }
        if (tok.text == "!=") {
          return Operator::kNotEqual;
        }
        if (tok.text == "~=") {
          return Operator::kMatches;
        }
        return MakeError(tok.pos, fmt::format("unsupported operator \"{}\"", tok.text));
      case TokenKind::kIllegal:
        return MakeError(tok.pos, scanner_.Err());
      default:
        return MakeError(tok.pos, R"(expected an operator ("=="|"!="|"~="))");
    }
  }

  Result<std::string> Value(bool allow_alt_quotes) {
    const Token tok = scanner_.Scan();
    switch (tok.kind) {
      case TokenKind::kValue:
      case TokenKind::kField:
        return std::string(tok.text);
      case TokenKind::kQuoted:
        return Unquote(tok, allow_alt_quotes);
      case TokenKind::kIllegal:
        return MakeError(tok.pos, scanner_.Err());
      default:
        return MakeError(tok.pos, "expected value or quoted");
    }
  }

  Result<std::string> Unquote(const Token& tok, bool allow_alt_quotes) {
    if (!allow_alt_quotes && tok.text.front() != '"') {
      return MakeError(tok.pos, "invalid quote encountered");
    }
    std::optional<std::string> unquoted = UnquoteGo(tok.text);
    if (!unquoted) {
      return MakeError(tok.pos, "unquoting failed: quote syntax error");
    }
    return std::move(*unquoted);
  }

  // containerd's parseError: the byte at `pos` is marked, or nothing when `pos` is the end.
  Error MakeError(size_t pos, std::string_view msg) const {
    std::string where;
    if (pos < input_.size()) {
      where = fmt::format("[{} >|{}|< {}]", input_.substr(0, pos), input_.substr(pos, 1),
                          input_.substr(pos + 1));
    } else {
      where = fmt::format("[{}]", input_);
    }
    return InvalidArgument(fmt::format("filters: parse error: {}: {}", where, msg));
  }

  std::string_view input_;
  Scanner scanner_;
};

std::string Join(std::vector<std::string>::const_iterator begin,
                 std::vector<std::string>::const_iterator end) {
  std::string out;
  for (auto it = begin; it != end; ++it) {
    if (it != begin) {
      out += '.';
    }
    out += *it;
  }
  return out;
}

}  // namespace

bool Selector::Match(const Adaptor& adaptor) const {
  const std::optional<std::string> field = adaptor(fieldpath);
  switch (op) {
    case Operator::kPresent:
      return field.has_value();
    case Operator::kEqual:
      return field.has_value() && *field == value;
    case Operator::kNotEqual:
      return field.value_or("") != value;
    case Operator::kMatches:
      return regexp != nullptr && RE2::PartialMatch(field.value_or(""), *regexp);
  }
  return false;
}

bool Filter::Match(const Adaptor& adaptor) const {
  if (match_all_) {
    return true;
  }
  return std::any_of(any_of_.begin(), any_of_.end(), [&](const std::vector<Selector>& all_of) {
    return std::all_of(all_of.begin(), all_of.end(),
                       [&](const Selector& selector) { return selector.Match(adaptor); });
  });
}

Result<Filter> Parse(std::string_view one_filter) {
  Filter filter;
  if (one_filter.empty()) {
    return filter;
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<Selector> selectors, Parser(one_filter).Selectors());
  filter.match_all_ = false;
  filter.any_of_.push_back(std::move(selectors));
  return filter;
}

Result<Filter> ParseAll(const std::vector<std::string>& filters) {
  Filter all;
  all.match_all_ = filters.empty();
  for (const std::string& one : filters) {
    BERTH_ASSIGN_OR_RETURN(Filter filter, Parse(one));
    if (filter.match_all_) {
      all.match_all_ = true;
    }
    for (auto& selectors : filter.any_of_) {
      all.any_of_.push_back(std::move(selectors));
    }
  }
  if (all.match_all_) {
    all.any_of_.clear();
  }
  return all;
}

Adaptor MakeAdaptor(std::map<std::string, std::string> fields,
                    std::map<std::string, const std::map<std::string, std::string>*> maps,
                    EmptyField empty) {
  return [fields = std::move(fields), maps = std::move(maps),
          empty](const std::vector<std::string>& fieldpath) -> std::optional<std::string> {
    if (fieldpath.empty()) {
      return std::nullopt;
    }
    if (auto m = maps.find(fieldpath[0]); m != maps.end()) {
      // containerd's checkMap (metadata/adaptors.go): the rest of the path is the key.
      if (m->second == nullptr || m->second->empty()) {
        return std::nullopt;
      }
      auto kv = m->second->find(Join(fieldpath.begin() + 1, fieldpath.end()));
      if (kv == m->second->end()) {
        return std::nullopt;
      }
      return kv->second;
    }
    // A dotted key names the path element by element: a quoted "a.b" element is not a.b.
    for (const std::string& element : fieldpath) {
      if (element.find('.') != std::string::npos) {
        return std::nullopt;
      }
    }
    auto f = fields.find(Join(fieldpath.begin(), fieldpath.end()));
    if (f == fields.end() || (f->second.empty() && empty == EmptyField::kAbsent)) {
      return std::nullopt;
    }
    return f->second;
  };
}

}  // namespace berth::filters

#pragma once
// containerd's filter language (containerd 1.6 filters/), as used by every List/Walk/Subscribe
// request:
//
//   filter    := selector ("," selector)*      "," = AND; a request's several strings are OR-ed
//   selector  := fieldpath [op value]          no op: the field is present
//   fieldpath := field ("." field)*
//   field     := [A-Za-z0-9_]+ | "quoted"
//   op        := "==" | "!=" | "~="
//   value     := "quoted" | rune+              rune: any printable rune but "," and spaces; the
//                                              first must not be "." "," "=" "!" "~" or a quote
//
// Semantics (the adaptor reports a field's value, or absence):
//   fieldpath        present
//   fieldpath==v     present and equal
//   fieldpath!=v     not equal; an absent field counts as "" (so it matches unless v is "")
//   fieldpath~=re    Go/RE2 regexp, unanchored, against the value ("" when absent). A regexp that
//                    doesn't compile is no parse error: it matches nothing (as containerd).
//
// Quoting: "..." with Go escapes (\n \t \\ \" \x41 \101 \u00e9 \U0001F600 ...), for fields and
// values; after "~=" only, also /.../ and |...| (escape the delimiter: /a\/b/). After "=="/"!=" a
// value starting with "/" or "|" is "invalid quote encountered": write name=="/tasks/exit".
// Inside an unquoted value ". / : =" are plain (name==docker.io/library/a:1).
//
// Whitespace is skipped only where a token is scanned: before a selector, an operator or a value
// ("a == b, c"). Where containerd peeks instead it is an error, as in containerd: after a value
// ("a==b " -> unexpected input), before "." or "," ("a .b", "a ,b" -> expected an operator).
//
// Errors are InvalidArgument with containerd's text, the failing byte marked, e.g.
//   filters: parse error: [name== >|/|< x/]: invalid quote encountered
//   filters: parse error: [name==]: expected value or quoted       (position at end: no marker)
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace berth::filters {

// Looks up a field path (e.g. {"labels", "a.b"} or {"name"}); nullopt = the field is absent.
// `labels.a.b` reaches the adaptor as {"labels", "a", "b"}: map-valued fields join the rest of
// the path with "." (MakeAdaptor does).
using Adaptor =
    std::function<std::optional<std::string>(const std::vector<std::string>& fieldpath)>;

enum class Operator {
  kPresent,   // bare fieldpath
  kEqual,     // ==
  kNotEqual,  // !=
  kMatches,   // ~=
};

// One `fieldpath[op value]`, with its value unquoted.
struct Selector {
  std::vector<std::string> fieldpath;
  Operator op = Operator::kPresent;
  std::string value;
  // kMatches only: the compiled value; null when it failed to compile (then nothing matches).
  std::shared_ptr<const re2::RE2> regexp;

  bool Match(const Adaptor& adaptor) const;
};

// A parsed set of filters: OR over filter strings, AND over the selectors of one string.
// Default-constructed = matches everything. Cheap to copy; Match is safe from many threads.
class Filter {
 public:
  Filter() = default;

  bool Match(const Adaptor& adaptor) const;
  // True when parsed from no filters or from an empty string: every object matches, and callers
  // may skip building adaptors.
  bool MatchesAll() const { return match_all_; }
  // The alternatives (OR), each a conjunction (AND) of selectors; empty when MatchesAll().
  const std::vector<std::vector<Selector>>& AnyOf() const { return any_of_; }

 private:
  friend Result<Filter> Parse(std::string_view one_filter);
  friend Result<Filter> ParseAll(const std::vector<std::string>& filters);

  bool match_all_ = true;
  std::vector<std::vector<Selector>> any_of_;
};

// Parses one filter string; "" matches everything. InvalidArgument on a syntax error.
Result<Filter> Parse(std::string_view one_filter);
// Parses a request's filters, OR-ed; no strings (or any "") match everything. The first string
// that fails to parse is the error.
Result<Filter> ParseAll(const std::vector<std::string>& filters);

// How MakeAdaptor reports a field whose value is "".
enum class EmptyField {
  kAbsent,   // containerd's `len(v) > 0` rule: images, containers, leases, plugins
  kPresent,  // always present: snapshots (name, parent, kind), content (digest, ref), tasks
};

// The common adaptor: plain string fields plus string maps (containerd's metadata/adaptors.go).
// - `fields`: dotted field path -> value, e.g. {"name", ...}, {"target.digest", ...},
//   {"runtime.name", ...}. Fieldpath {"target", "digest"} finds "target.digest" (a quoted path
//   element containing "." never matches). A path not in `fields` is absent.
// - `maps`: top-level name -> map, e.g. {{"labels", &labels}, {"annotations", &annotations}}.
//   Fieldpath {name, k1, k2, ...} looks up key "k1.k2..." (rest joined by "."); a null or empty
//   map has no keys. Checked before `fields`. The maps must outlive the adaptor.
Adaptor MakeAdaptor(std::map<std::string, std::string> fields,
                    std::map<std::string, const std::map<std::string, std::string>*> maps = {},
                    EmptyField empty = EmptyField::kAbsent);

}  // namespace berth::filters

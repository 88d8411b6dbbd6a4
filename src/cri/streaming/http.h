#pragma once
// The HTTP/1.1 part of the streaming server: an incremental request-head parser and the refusals
// it answers with. Sans-I/O: the server feeds what it reads and writes what these return. Only
// request heads are parsed — every streaming request is an upgrade (reference/cri.md §12), so the
// parser stops at the blank line and hands back whatever followed it (the upgraded protocol's
// first bytes may arrive in the same read). A request body, if a client sent one, is among those
// leftover bytes; the server does not read bodies.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"

namespace berth::cri::streaming::http {

struct Header {
  std::string name;   // as the client spelled it
  std::string value;  // surrounding spaces and tabs removed
};

// Header fields in arrival order; repeated fields are kept. Names compare case-insensitively.
class Headers {
 public:
  void Add(std::string name, std::string value);
  // The first value of `name`, "" when absent (as Go's Header.Get).
  std::string_view Get(std::string_view name) const;
  bool Has(std::string_view name) const;
  // Every value of `name`, in order.
  std::vector<std::string_view> Values(std::string_view name) const;
  // Every value of `name` split at commas, each element trimmed, empty elements dropped:
  // `X: a, b` + `X: c` -> {a, b, c}.
  std::vector<std::string> ListValues(std::string_view name) const;
  // True if one of the comma-separated elements of `name` equals `token` case-insensitively
  // (`Connection: keep-alive, Upgrade` has the token "upgrade").
  bool HasToken(std::string_view name, std::string_view token) const;
  const std::vector<Header>& All() const { return fields_; }
  size_t Size() const { return fields_.size(); }

 private:
  std::vector<Header> fields_;
};

struct QueryParam {
  std::string key;
  std::string value;
};

struct Request {
  std::string method;             // "GET", "POST", ... (case-sensitive, as RFC 9110 says)
  std::string target;             // the request-target as sent
  std::string path;               // percent-decoded path ("/exec/abc")
  std::string raw_query;          // after '?', undecoded
  std::vector<QueryParam> query;  // decoded, in order, repeated keys kept
  int minor_version = 1;          // HTTP/1.<minor_version>
  Headers headers;

  // Every value of query key `key`, in order (`?port=80&port=443` -> {"80", "443"}).
  std::vector<std::string> QueryValues(std::string_view key) const;
};

// Percent-decodes `s`; `plus_is_space` for query components (form encoding). InvalidArgument on
// a '%' not followed by two hex digits.
Result<std::string> PercentDecode(std::string_view s, bool plus_is_space);
// Splits a raw query at '&' into decoded key/value pairs, as Go's url.Query(): a pair with a bad
// escape is dropped, empty pairs are skipped, a pair without '=' has the value "".
std::vector<QueryParam> ParseQuery(std::string_view raw_query);

struct ParserLimits {
  // Bytes from the request line to the blank line inclusive. Go's server allows 1 MiB; a
  // streaming request is a few hundred bytes, so a small cap keeps hostile clients cheap.
  size_t max_head_bytes = 16 * 1024;
  size_t max_headers = 100;
};

// Parses one request head from bytes fed in any chunking (byte by byte works). Accepts CRLF or
// bare LF line ends and ignores empty lines before the request line (RFC 9112 §2.2). Refuses,
// with InvalidArgument: a malformed request line, a version other than HTTP/1.0 or HTTP/1.1, a
// target that is neither origin-form ("/p?q") nor absolute-form ("http://h/p"), a bad percent
// escape in the path, a header line without a token name and ':', whitespace before the ':',
// obsolete line folding, control characters in a value. Refuses with ResourceExhausted: a head
// longer than max_head_bytes or with more than max_headers fields. After an error or once the
// head is complete, further Feed calls are refused (FailedPrecondition).
class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {});

  // Consumes `data`. true once the head is complete: then Request() is valid and Leftover() holds
  // the bytes after the blank line (from this and earlier calls). false: more bytes needed.
  Result<bool> Feed(std::string_view data);

  bool Done() const { return done_; }
  const http::Request& Request() const { return request_; }
  http::Request TakeRequest() { return std::move(request_); }
  const std::string& Leftover() const { return leftover_; }
  std::string TakeLeftover() { return std::move(leftover_); }

 private:
  Status ParseLine(std::string_view line);
  Status ParseRequestLine(std::string_view line);
  Status ParseHeaderLine(std::string_view line);

  ParserLimits limits_;
  std::string buffer_;   // bytes of the current, incomplete line
  size_t consumed_ = 0;  // head bytes consumed so far (complete lines)
  bool have_request_line_ = false;
  bool done_ = false;
  bool failed_ = false;
  http::Request request_;
  std::string leftover_;
};

// "Switching Protocols", "Bad Request", ...; "Unknown" for codes it does not list.
std::string_view StatusText(int status);

// An HTTP answer refusing a request: status, plain-text body and any extra header fields.
struct Refusal {
  int status = 400;
  std::string text;
  std::vector<Header> headers;

  // The response bytes, as Go's http.Error writes them: status line, the extra fields,
  // `Content-Type: text/plain; charset=utf-8`, `X-Content-Type-Options: nosniff`,
  // `Content-Length`, `Connection: close`, blank line, then `text` + "\n".
  std::string Bytes() const;
};

// The refusal for a RequestParser error: 431 for ResourceExhausted, else 400 (the error's text).
Refusal RefusalForParseError(const Error& error);

}  // namespace berth::cri::streaming::http

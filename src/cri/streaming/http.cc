#include "cri/streaming/http.h"

#include <fmt/format.h>

#include <algorithm>

namespace berth::cri::streaming::http {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualFold(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 §5.6.2 tchar.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A request-target may hold visible ASCII only (RFC 3986 characters; no spaces or controls).
bool IsTargetChar(char c) { return c > 0x20 && c < 0x7f; }

}  // namespace

void Headers::Add(std::string name, std::string value) {
  fields_.push_back(Header{.name = std::move(name), .value = std::move(value)});
}

std::string_view Headers::Get(std::string_view name) const {
  for (const auto& f : fields_) {
    if (EqualFold(f.name, name)) return f.value;
  }
  return {};
}

bool Headers::Has(std::string_view name) const {
  return std::any_of(fields_.begin(), fields_.end(),
                     [&](const Header& f) { return EqualFold(f.name, name); });
}

std::vector<std::string_view> Headers::Values(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& f : fields_) {
    if (EqualFold(f.name, name)) out.emplace_back(f.value);
  }
  return out;
}

std::vector<std::string> Headers::ListValues(std::string_view name) const {
  std::vector<std::string> out;
  for (std::string_view v : Values(name)) {
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view element = Trim(v.substr(0, comma));
      if (!element.empty()) out.emplace_back(element);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return out;
}

bool Headers::HasToken(std::string_view name, std::string_view token) const {
  auto elements = ListValues(name);
  return std::any_of(elements.begin(), elements.end(),
                     [&](const std::string& e) { return EqualFold(e, token); });
}

std::vector<std::string> Request::QueryValues(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& p : query) {
    if (p.key == key) out.push_back(p.value);
  }
  return out;
}

Result<std::string> PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || HexValue(s[i + 1]) < 0 || HexValue(s[i + 2]) < 0) {
        return InvalidArgument(fmt::format("invalid URL escape {:?}", s.substr(i, 3)));
      }
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<QueryParam> ParseQuery(std::string_view raw) {
  std::vector<QueryParam> out;
  while (!raw.empty()) {
    size_t amp = raw.find('&');
    std::string_view pair = raw.substr(0, amp);
    raw.remove_prefix(amp == std::string_view::npos ? raw.size() : amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto key = PercentDecode(pair.substr(0, eq), true);
    auto value = PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) continue;  // url.ParseQuery skips it; url.Query() ignores the error
    out.push_back(QueryParam{.key = std::move(*key), .value = std::move(*value)});
  }
  return out;
}

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {}

Result<bool> RequestParser::Feed(std::string_view data) {
  if (failed_ || done_) {
    return FailedPrecondition(failed_ ? "request parser failed earlier" : "request head complete");
  }
  while (!data.empty()) {
    size_t nl = data.find('\n');
    size_t take = nl == std::string_view::npos ? data.size() : nl + 1;
    // The limit counts every byte of the head, the line being assembled included, so a client
    // cannot make the buffer grow past it by never sending a newline.
    if (consumed_ + buffer_.size() + take > limits_.max_head_bytes) {
      failed_ = true;
      return Error(Errc::kResourceExhausted,
                   fmt::format("request head larger than {} bytes", limits_.max_head_bytes));
    }
    if (nl == std::string_view::npos) {
      buffer_.append(data);
      return false;
    }
    buffer_.append(data.substr(0, nl));
    data.remove_prefix(nl + 1);
    consumed_ += buffer_.size() + 1;
    std::string_view line = buffer_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      buffer_.clear();
      if (!have_request_line_) continue;  // empty lines before the request line are ignored
      done_ = true;
      leftover_.assign(data);
      return true;
    }
    Status st = ParseLine(line);
    buffer_.clear();
    if (!st) {
      failed_ = true;
      return std::move(st).error();
    }
  }
  return false;
}

Status RequestParser::ParseLine(std::string_view line) {
  if (!have_request_line_) {
    BERTH_TRY(ParseRequestLine(line));
    have_request_line_ = true;
    return Ok();
  }
  return ParseHeaderLine(line);
}

Status RequestParser::ParseRequestLine(std::string_view line) {
  // method SP request-target SP HTTP-version (RFC 9112 §3): exactly two single spaces.
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return InvalidArgument("malformed request line");
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return InvalidArgument("malformed request method");
  if (version == "HTTP/1.1") {
    request_.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    request_.minor_version = 0;
  } else {
    return InvalidArgument(fmt::format("unsupported HTTP version {:?}", version));
  }
  if (target.empty() || !std::all_of(target.begin(), target.end(), IsTargetChar)) {
    return InvalidArgument("malformed request target");
  }
  request_.method.assign(method);
  request_.target.assign(target);

  std::string_view path = target;
  for (std::string_view scheme : {"http://", "https://"}) {  // absolute-form: drop the authority
    if (path.size() >= scheme.size() && EqualFold(path.substr(0, scheme.size()), scheme)) {
      path.remove_prefix(scheme.size());
      size_t slash = path.find_first_of("/?");
      path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
      if (path.front() == '?') return InvalidArgument("malformed request target");
      break;
    }
  }
  if (path.front() != '/') return InvalidArgument("malformed request target");
  path = path.substr(0, path.find('#'));
  size_t q = path.find('?');
  if (q != std::string_view::npos) {
    request_.raw_query.assign(path.substr(q + 1));
    request_.query = ParseQuery(request_.raw_query);
    path = path.substr(0, q);
  }
  auto decoded = PercentDecode(path, false);
  if (!decoded) return std::move(decoded).error().Wrap("request path");
  request_.path = std::move(*decoded);
  return Ok();
}

Status RequestParser::ParseHeaderLine(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') {
    return InvalidArgument("obsolete header line folding");
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return InvalidArgument("malformed header line");
  std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) {  // also refuses "Name :" (RFC 9112 §5.1: whitespace before the colon)
    return InvalidArgument(fmt::format("malformed header name {:?}", name));
  }
  std::string_view value = Trim(line.substr(colon + 1));
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      return InvalidArgument(fmt::format("invalid character in header {:?}", name));
    }
  }
  if (request_.headers.Size() >= limits_.max_headers) {
    return Error(Errc::kResourceExhausted,
                 fmt::format("more than {} header fields", limits_.max_headers));
  }
  request_.headers.Add(std::string(name), std::string(value));
  return Ok();
}

std::string_view StatusText(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 426:
      return "Upgrade Required";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string Refusal::Bytes() const {
  std::string body = text + "\n";
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", status, StatusText(status));
  for (const auto& h : headers) out += fmt::format("{}: {}\r\n", h.name, h.value);
  out += fmt::format(
      "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
      "Content-Length: {}\r\nConnection: close\r\n\r\n",
      body.size());
  out += body;
  return out;
}

Refusal RefusalForParseError(const Error& error) {
  if (error.Is(Errc::kResourceExhausted)) {
    return Refusal{.status = 431, .text = error.What(), .headers = {}};
  }
  return Refusal{.status = 400, .text = error.What(), .headers = {}};
}

}  // namespace berth::cri::streaming::http

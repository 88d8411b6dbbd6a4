#pragma once
// A small HTTP client over libcurl for the registry client (internal to remotes/). One easy
// handle per call, so calls from several threads need no locking. Redirects are followed here
// (up to 10), dropping Authorization when the target host differs from the original.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/errdefs.h"

namespace berth::remotes {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct TlsConfig {
  // PEM CA bundle to verify with (system bundle + configured CAs); null: curl's default store.
  std::shared_ptr<const std::string> ca_pem;
  std::string client_cert;  // PEM file; "" = none
  std::string client_key;   // PEM file; "" = in client_cert
  bool skip_verify = false;
};

struct HttpRequest {
  std::string method = "GET";  // GET HEAD PUT POST PATCH DELETE
  std::string url;
  Headers headers;
  TlsConfig tls;
  std::string user_agent;
  // Request body: `read(offset, max_len)` returns the next bytes (empty at EOF); `body_size`
  // bytes in all. No `read`: no body.
  std::function<Result<std::string>(int64_t, size_t)> read;
  int64_t body_size = 0;
};

struct HttpResponse {
  long status = 0;
  std::string url;   // the final URL (after redirects)
  Headers headers;   // names lower-cased, in order
  std::string body;  // collected body (non-2xx, or 2xx without a sink)

  // First value of header `name` (lower-case), "" if absent.
  std::string Header(std::string_view name) const;
  std::vector<std::string> AllHeaders(std::string_view name) const;
};

// Receives 2xx body bytes with the response status; an error aborts the transfer with it.
using BodySink = std::function<Status(long status, std::string_view chunk)>;

// Performs `req`. The body of a 2xx response goes to `sink` if given, else (and for every other
// status) into HttpResponse::body, at most `max_body` bytes (more: ResourceExhausted).
// Connection failures are Unavailable naming the method, URL and curl's message.
Result<HttpResponse> Perform(const HttpRequest& req, const BodySink* sink, size_t max_body);

// "scheme://host[:port]" of an absolute URL ("" if not absolute).
std::string UrlOrigin(std::string_view url);
// Resolves a Location header against the URL it came from.
std::string ResolveUrl(std::string_view base, std::string_view location);
// Builds a TlsConfig: the system bundle plus `ca_files` (read now; error naming the file).
Result<TlsConfig> MakeTlsConfig(const std::vector<std::string>& ca_files,
                                const std::vector<std::pair<std::string, std::string>>& clients,
                                bool skip_verify);

}  // namespace berth::remotes

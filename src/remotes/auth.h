#pragma once
// Registry authentication pieces (containerd's remotes/docker/auth): WWW-Authenticate
// challenges, Basic credentials, bearer token requests and responses.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/base64.h"
#include "common/errdefs.h"

namespace berth::remotes {

struct Challenge {
  std::string scheme;                         // lower-cased: "basic", "bearer"
  std::map<std::string, std::string> params;  // keys lower-cased: realm, service, scope
};

// Parses one WWW-Authenticate header value: `Scheme k=v, k="quoted \" v", ...`, possibly
// several challenges ("Basic realm=x, Bearer realm=y"). Malformed parts are skipped; never fails.
std::vector<Challenge> ParseWwwAuthenticate(std::string_view header);

// "Basic base64(user:secret)"
std::string BasicAuthorization(std::string_view user, std::string_view secret);
// Base64 lives in common/base64.h; these names stay for existing callers.
using ::berth::Base64Decode;
using ::berth::Base64Encode;

// The token from a token server's JSON body: "token", else "access_token". InvalidArgument if
// neither is there or the body is not JSON.
Result<std::string> ParseTokenResponse(std::string_view body);

// Percent-encodes a query component (RFC 3986 unreserved kept).
std::string QueryEscape(std::string_view s);

// The token request URL: realm?service=..&scope=..&scope=.. (service/scope omitted if empty).
std::string TokenUrl(std::string_view realm, std::string_view service,
                     const std::vector<std::string>& scopes);

}  // namespace berth::remotes

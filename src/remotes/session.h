#pragma once
// Shared state of one Resolver (internal to remotes/): host configuration per registry,
// authentication state and tokens, and the request loop with the 401 retry.
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "remotes/auth.h"
#include "remotes/hosts.h"
#include "remotes/http.h"
#include "remotes/registry.h"

namespace berth::remotes {

inline constexpr size_t kMaxManifestSize = 4 << 20;  // as containerd's images.MaxManifestSize
inline constexpr size_t kMaxErrorBody = 64 << 10;

struct Endpoint {
  RegistryHost host;
  TlsConfig tls;
  std::string Url(std::string_view repo, std::string_view suffix) const {
    return host.BaseUrl() + "/" + std::string(repo) + "/" + std::string(suffix);
  }
};

// Manifest Accept header values, as containerd's resolver sends them.
extern const char* const kManifestAccept;
bool IsManifestType(std::string_view media_type);

class Session {
 public:
  explicit Session(ResolverOptions options) : options_(std::move(options)) {}
  const ResolverOptions& Options() const { return options_; }

  // The endpoints for registry `domain` ("host[:port]"), in order.
  Result<std::vector<Endpoint>> Hosts(std::string_view domain);

  // Sends `req` to `ep`, adding the host's headers and authorization for `scopes`
  // ("repository:<repo>:pull"); on 401 learns the challenge, authorizes and retries once.
  // `rewind` (optional) is called before the retry (to restart a request body).
  Result<HttpResponse> Do(const Endpoint& ep, HttpRequest req,
                          const std::vector<std::string>& scopes, const BodySink* sink,
                          size_t max_body);

 private:
  struct HostAuth {
    Challenge challenge;                        // scheme "" = none known yet
    std::map<std::string, std::string> tokens;  // scopes key -> bearer token
  };
  std::optional<Credentials> CredsFor(std::string_view host) const;
  // The Authorization header value for `host` and `scopes`, "" if none is known to be needed.
  // `refresh` forces a new bearer token.
  Result<std::string> Authorization(const Endpoint& ep, const std::vector<std::string>& scopes,
                                    bool refresh);

  ResolverOptions options_;
  std::mutex mu_;
  std::map<std::string, HostAuth, std::less<>> auth_;
  std::map<std::string, std::vector<Endpoint>, std::less<>> hosts_;
};

// An Error for a non-2xx response: "<METHOD> <url>: <status> <reason>[: <CODE>: <message>]",
// classed by status (404 NotFound, 401/403 PermissionDenied, 5xx Unavailable, ...).
Error HttpError(std::string_view method, const HttpResponse& resp);

}  // namespace berth::remotes

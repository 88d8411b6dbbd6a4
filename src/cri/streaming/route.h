#pragma once
// The streaming server's URLs (reference/cri.md §12): `/exec/<token>`, `/attach/<token>`,
// `/portforward/<token>`, each for GET and POST, where <token> is the one-time token the CRI
// Exec/Attach/PortForward rpc handed out.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/errdefs.h"
#include "cri/streaming/http.h"

namespace berth::cri::streaming {

enum class RouteKind { kExec, kAttach, kPortForward };

struct Route {
  RouteKind kind = RouteKind::kExec;
  std::string token;  // one path segment, non-empty; its validity is the token cache's business
};

// Routes a request by method and decoded path. Any other path (extra or missing segments, a
// trailing '/', an empty token) is 404 `404 page not found`; a known path with a method other
// than GET or POST is 405 `405: Method Not Allowed` (go-restful's texts). An unknown or used
// token is also 404, answered by the caller.
std::variant<Route, http::Refusal> ParseRoute(std::string_view method, std::string_view path);

// The ports of a WebSocket port-forward: every `port` query value, each a comma-separated list of
// decimal ports 1-65535 (kubelet's NewV4Options). InvalidArgument, which the server answers
// with 400 and the error's text, when there is none or one does not parse. SPDY port-forward
// ignores the query: its ports come in stream headers.
Result<std::vector<uint16_t>> ParsePortForwardPorts(const http::Request& request);

}  // namespace berth::cri::streaming

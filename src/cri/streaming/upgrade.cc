#include "cri/streaming/upgrade.h"

#include <fmt/format.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "common/base64.h"

namespace berth::cri::streaming {
namespace {

constexpr std::string_view kProtocolVersionHeader = "X-Stream-Protocol-Version";
constexpr std::string_view kAcceptedVersionsHeader = "X-Accepted-Stream-Protocol-Versions";

constexpr std::string_view kSpdyRemoteCommand[] = {"v4.channel.k8s.io", "v3.channel.k8s.io",
                                                   "v2.channel.k8s.io", "channel.k8s.io"};
constexpr std::string_view kSpdyPortForward[] = {"portforward.k8s.io"};
constexpr std::string_view kWebSocketRemoteCommand[] = {
    "v5.channel.k8s.io", "v4.channel.k8s.io",     "v4.base64.channel.k8s.io",
    "channel.k8s.io",    "base64.channel.k8s.io", ""};
constexpr std::string_view kWebSocketPortForward[] = {"v4.channel.k8s.io",
                                                      "v4.base64.channel.k8s.io", ""};

// Go's %v of a []string: "[a b c]".
template <class Range>
std::string GoList(const Range& items) {
  std::string out = "[";
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += ' ';
    out += item;
    first = false;
  }
  return out + "]";
}

// The first client protocol the server knows.
template <class Range>
const std::string* Negotiate(const Range& client, std::span<const std::string_view> server) {
  for (const auto& c : client) {
    if (std::find(server.begin(), server.end(), c) != server.end()) return &c;
  }
  return nullptr;
}

bool ContainsFold(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end();
}

std::variant<Upgrade, http::Refusal> NegotiateSpdy(const http::Request& req, RouteKind kind) {
  std::vector<std::string> client = req.headers.ListValues(kProtocolVersionHeader);
  if (client.empty()) {
    return http::Refusal{
        .status = 400,
        .text = fmt::format("unable to upgrade: {} is required", kProtocolVersionHeader),
        .headers = {}};
  }
  std::span<const std::string_view> server = SpdyProtocols(kind);
  const std::string* chosen = Negotiate(client, server);
  if (chosen == nullptr) {
    http::Refusal refusal{
        .status = 403,
        .text = fmt::format(
            "unable to upgrade: unable to negotiate protocol: client supports {}, server "
            "accepts {}",
            GoList(client), GoList(server)),
        .headers = {}};
    for (std::string_view p : server) {
      refusal.headers.push_back(
          {.name = std::string(kAcceptedVersionsHeader), .value = std::string(p)});
    }
    return refusal;
  }
  // spdy.responseUpgrader checks substrings of the first fields, as here.
  if (!ContainsFold(req.headers.Get("Connection"), "upgrade") ||
      !ContainsFold(req.headers.Get("Upgrade"), "spdy/3.1")) {
    return http::Refusal{.status = 400,
                         .text = "unable to upgrade: missing upgrade headers in request",
                         .headers = {}};
  }
  return Upgrade{
      .kind = UpgradeKind::kSpdy,
      .protocol = *chosen,
      .response = fmt::format("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                              "Upgrade: SPDY/3.1\r\n{}: {}\r\n\r\n",
                              kProtocolVersionHeader, *chosen)};
}

std::variant<Upgrade, http::Refusal> NegotiateWebSocket(const http::Request& req, RouteKind kind) {
  if (req.method != "GET") return http::Refusal{.status = 405, .text = "bad method", .headers = {}};
  if (req.headers.Get("Sec-WebSocket-Version") != "13") {
    return http::Refusal{.status = 400,
                         .text = "missing or bad WebSocket Version",
                         .headers = {{.name = "Sec-WebSocket-Version", .value = "13"}}};
  }
  std::string_view key = req.headers.Get("Sec-WebSocket-Key");
  auto nonce = Base64Decode(key);
  if (key.size() != 24 || !nonce || nonce->size() != 16) {  // RFC 6455 §4.1: 16 random bytes
    return http::Refusal{.status = 400, .text = "mismatch challenge/response", .headers = {}};
  }
  std::vector<std::string> client = req.headers.ListValues("Sec-WebSocket-Protocol");
  if (client.empty()) client.emplace_back();  // none offered: "" (wsstream's handshake)
  std::span<const std::string_view> server = WebSocketProtocols(kind);
  const std::string* chosen = Negotiate(client, server);
  if (chosen == nullptr) {
    std::vector<std::string> known(server.begin(), server.end() - 1);  // without ""
    return http::Refusal{
        .status = 403,
        .text = fmt::format("requested protocol(s) are not supported: {}; supports {}",
                            GoList(client), GoList(known)),
        .headers = {}};
  }
  std::string response = fmt::format(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: {}\r\n",
      WebSocketAccept(key));
  // x/net/websocket would echo an empty Sec-WebSocket-Protocol for ""; RFC 6455 §4.2.2 says a
  // server that selects none leaves the field out, which every client accepts.
  if (!chosen->empty()) response += fmt::format("Sec-WebSocket-Protocol: {}\r\n", *chosen);
  response += "\r\n";
  return Upgrade{.kind = UpgradeKind::kWebSocket, .protocol = *chosen, .response = response};
}

}  // namespace

std::span<const std::string_view> SpdyProtocols(RouteKind kind) {
  if (kind == RouteKind::kPortForward) return kSpdyPortForward;
  return kSpdyRemoteCommand;
}

std::span<const std::string_view> WebSocketProtocols(RouteKind kind) {
  if (kind == RouteKind::kPortForward) return kWebSocketPortForward;
  return kWebSocketRemoteCommand;
}

bool IsWebSocketRequest(const http::Request& request) {
  // wsstream.IsWebSocketRequest: Upgrade equals "websocket" (any case) and Connection lists
  // "upgrade".
  std::string_view upgrade = request.headers.Get("Upgrade");
  return upgrade.size() == std::string_view("websocket").size() &&
         ContainsFold(upgrade, "websocket") && request.headers.HasToken("Connection", "upgrade");
}

std::variant<Upgrade, http::Refusal> NegotiateUpgrade(const http::Request& request,
                                                      RouteKind kind) {
  if (IsWebSocketRequest(request)) return NegotiateWebSocket(request, kind);
  return NegotiateSpdy(request, kind);
}

std::string WebSocketAccept(std::string_view key) {
  std::string input = std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace berth::cri::streaming

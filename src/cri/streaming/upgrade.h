#pragma once
// Upgrade negotiation of a streaming request (reference/cri.md §12): pure functions from a parsed
// request to the bytes to answer. A request whose `Upgrade` is `websocket` and whose `Connection`
// lists `upgrade` is a WebSocket handshake (RFC 6455 §4.2); any other is taken as SPDY/3.1, as
// kubelet's streaming server does.
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "cri/streaming/http.h"
#include "cri/streaming/route.h"

namespace berth::cri::streaming {

enum class UpgradeKind { kSpdy, kWebSocket };

struct Upgrade {
  UpgradeKind kind = UpgradeKind::kSpdy;
  // The negotiated subprotocol: SPDY's X-Stream-Protocol-Version, WebSocket's
  // Sec-WebSocket-Protocol; "" for a WebSocket client that offered none (channel.k8s.io rules).
  std::string protocol;
  // The `101 Switching Protocols` head to write; the upgraded protocol follows it.
  std::string response;
};

// Protocols the server speaks, in its order (the client's order picks; see NegotiateUpgrade).
// SPDY exec/attach: v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io.
std::span<const std::string_view> SpdyProtocols(RouteKind kind);
// WebSocket exec/attach: v5.channel.k8s.io, v4.channel.k8s.io, v4.base64.channel.k8s.io,
// channel.k8s.io, base64.channel.k8s.io and "" (no Sec-WebSocket-Protocol). Port-forward:
// v4.channel.k8s.io, v4.base64.channel.k8s.io and "" (kubelet's portforward/websocket.go).
std::span<const std::string_view> WebSocketProtocols(RouteKind kind);

bool IsWebSocketRequest(const http::Request& request);

// Negotiates the upgrade of a routed request; either an Upgrade or the refusal to write before
// closing. The first client protocol the server knows wins.
//
// SPDY (apimachinery httpstream.Handshake, then spdy.UpgradeResponse), checked in this order:
//  - no X-Stream-Protocol-Version (repeated fields and comma lists both count) -> 400
//    `unable to upgrade: X-Stream-Protocol-Version is required`;
//  - none known -> 403 `unable to upgrade: unable to negotiate protocol: client supports [..],
//    server accepts [..]` plus one X-Accepted-Stream-Protocol-Versions per server protocol;
//  - Connection without `upgrade` or Upgrade without `SPDY/3.1` -> 400
//    `unable to upgrade: missing upgrade headers in request`;
//  - else 101 with `Connection: Upgrade`, `Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version`.
// WebSocket (golang.org/x/net/websocket's hybi server, kubelet's wsstream handshake):
//  - method not GET -> 405 `bad method`;
//  - Sec-WebSocket-Version not 13 -> 400 `missing or bad WebSocket Version` with
//    `Sec-WebSocket-Version: 13`;
//  - Sec-WebSocket-Key missing or not base64 of 16 bytes -> 400 `mismatch challenge/response`;
//  - no offered subprotocol known -> 403 `requested protocol(s) are not supported: [..];
//    supports [..]`;
//  - else 101 with `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept` and,
//    unless the chosen protocol is "", `Sec-WebSocket-Protocol`.
std::variant<Upgrade, http::Refusal> NegotiateUpgrade(const http::Request& request, RouteKind kind);

// RFC 6455 §4.2.2: base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
std::string WebSocketAccept(std::string_view key);

}  // namespace berth::cri::streaming

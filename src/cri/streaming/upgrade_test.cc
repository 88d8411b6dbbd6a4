#include "cri/streaming/upgrade.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cri/streaming/route.h"

namespace berth::cri::streaming {
namespace {

http::Request Parse(std::string_view head) {
  http::RequestParser parser;
  auto done = parser.Feed(head);
  EXPECT_TRUE(done && *done) << head;
  return parser.TakeRequest();
}

http::Request SpdyRequest(const std::vector<std::string>& version_fields,
                          std::string_view method = "POST") {
  std::string head = std::string(method) +
                     " /exec/tok HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                     "Upgrade: SPDY/3.1\r\n";
  for (const auto& v : version_fields) head += "X-Stream-Protocol-Version: " + v + "\r\n";
  return Parse(head + "\r\n");
}

http::Request WebSocketRequest(std::string_view protocols, std::string_view extra = {}) {
  std::string head =
      "GET /exec/tok?command=sh HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n"
      "Upgrade: WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n";
  if (!protocols.empty()) head += "Sec-WebSocket-Protocol: " + std::string(protocols) + "\r\n";
  return Parse(head + std::string(extra) + "\r\n");
}

// By value: callers hold the result of a temporary.
Upgrade Accepted(std::variant<Upgrade, http::Refusal> v) {
  if (const auto* r = std::get_if<http::Refusal>(&v)) {
    ADD_FAILURE() << "refused: " << r->status << " " << r->text;
    return Upgrade{};
  }
  return std::get<Upgrade>(std::move(v));
}

http::Refusal Refused(std::variant<Upgrade, http::Refusal> v) {
  if (const auto* u = std::get_if<Upgrade>(&v)) {
    ADD_FAILURE() << "accepted: " << u->protocol;
    return http::Refusal{};
  }
  return std::get<http::Refusal>(std::move(v));
}

TEST(StreamingRoute, ParsesTheThreeUrls) {
  auto exec = ParseRoute("POST", "/exec/AbCdEf12");
  ASSERT_TRUE(std::holds_alternative<Route>(exec));
  EXPECT_EQ(std::get<Route>(exec).kind, RouteKind::kExec);
  EXPECT_EQ(std::get<Route>(exec).token, "AbCdEf12");
  auto attach = ParseRoute("GET", "/attach/x_-y");
  ASSERT_TRUE(std::holds_alternative<Route>(attach));
  EXPECT_EQ(std::get<Route>(attach).kind, RouteKind::kAttach);
  auto pf = ParseRoute("GET", "/portforward/t");
  ASSERT_TRUE(std::holds_alternative<Route>(pf));
  EXPECT_EQ(std::get<Route>(pf).kind, RouteKind::kPortForward);
  EXPECT_EQ(std::get<Route>(pf).token, "t");
}

TEST(StreamingRoute, RefusesOtherPathsAndMethods) {
  for (std::string_view path : {"/", "/exec", "/exec/", "/exec/a/b", "/exec/a/", "/execx/a",
                                "/logs/a", "//exec/a", "/Exec/a", ""}) {
    auto r = ParseRoute("GET", path);
    ASSERT_TRUE(std::holds_alternative<http::Refusal>(r)) << path;
    EXPECT_EQ(std::get<http::Refusal>(r).status, 404) << path;
    EXPECT_EQ(std::get<http::Refusal>(r).text, "404 page not found");
  }
  for (std::string_view method : {"PUT", "DELETE", "get", "OPTIONS"}) {
    auto r = ParseRoute(method, "/exec/tok");
    ASSERT_TRUE(std::holds_alternative<http::Refusal>(r)) << method;
    EXPECT_EQ(std::get<http::Refusal>(r).status, 405);
  }
}

TEST(StreamingRoute, PortForwardPorts) {
  auto ports =
      ParsePortForwardPorts(Parse("GET /portforward/t?port=80&port=443,8080 HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(ports) << ports.error().ToString();
  EXPECT_EQ(*ports, (std::vector<uint16_t>{80, 443, 8080}));
  auto none = ParsePortForwardPorts(Parse("GET /portforward/t HTTP/1.1\r\n\r\n"));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().What(), "query parameter \"port\" is required");
  for (std::string_view q : {"port=", "port=0", "port=65536", "port=x", "port=80,", "port=-1",
                             "port=8%200", "port=1&port="}) {
    auto r =
        ParsePortForwardPorts(Parse("GET /portforward/t?" + std::string(q) + " HTTP/1.1\r\n\r\n"));
    EXPECT_FALSE(r) << q;
    if (!r) {
      EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << q;
    }
  }
  auto max = ParsePortForwardPorts(Parse("GET /portforward/t?port=65535 HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(max);
  EXPECT_EQ(max->front(), 65535);
}

TEST(SpdyUpgrade, RepeatedVersionFieldsFirstKnownWins) {
  auto v =
      NegotiateUpgrade(SpdyRequest({"v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io"}),
                       RouteKind::kExec);
  Upgrade u = Accepted(v);
  EXPECT_EQ(u.kind, UpgradeKind::kSpdy);
  EXPECT_EQ(u.protocol, "v4.channel.k8s.io");
  EXPECT_EQ(u.response,
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Connection: Upgrade\r\n"
            "Upgrade: SPDY/3.1\r\n"
            "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
            "\r\n");
}

TEST(SpdyUpgrade, CommaListedVersions) {
  auto v = NegotiateUpgrade(SpdyRequest({"bogus, v2.channel.k8s.io,v4.channel.k8s.io"}),
                            RouteKind::kAttach);
  EXPECT_EQ(Accepted(v).protocol, "v2.channel.k8s.io");
  auto old = NegotiateUpgrade(SpdyRequest({"channel.k8s.io"}, "GET"), RouteKind::kExec);
  EXPECT_EQ(Accepted(old).protocol, "channel.k8s.io");
  auto pf = NegotiateUpgrade(SpdyRequest({"portforward.k8s.io"}), RouteKind::kPortForward);
  EXPECT_EQ(Accepted(pf).protocol, "portforward.k8s.io");
  EXPECT_NE(Accepted(pf).response.find("X-Stream-Protocol-Version: portforward.k8s.io\r\n"),
            std::string::npos);
}

TEST(SpdyUpgrade, MissingVersionIs400) {
  http::Refusal r = Refused(NegotiateUpgrade(SpdyRequest({}), RouteKind::kExec));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.text, "unable to upgrade: X-Stream-Protocol-Version is required");
  // An empty field offers nothing either.
  EXPECT_EQ(Refused(NegotiateUpgrade(SpdyRequest({""}), RouteKind::kExec)).status, 400);
}

TEST(SpdyUpgrade, NoMatchIs403WithTheServersProtocols) {
  http::Refusal r =
      Refused(NegotiateUpgrade(SpdyRequest({"v9.channel.k8s.io", "x"}), RouteKind::kExec));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.text,
            "unable to upgrade: unable to negotiate protocol: client supports "
            "[v9.channel.k8s.io x], server accepts [v4.channel.k8s.io v3.channel.k8s.io "
            "v2.channel.k8s.io channel.k8s.io]");
  std::vector<std::string> accepted;
  for (const auto& h : r.headers) {
    EXPECT_EQ(h.name, "X-Accepted-Stream-Protocol-Versions");
    accepted.push_back(h.value);
  }
  EXPECT_EQ(accepted, (std::vector<std::string>{"v4.channel.k8s.io", "v3.channel.k8s.io",
                                                "v2.channel.k8s.io", "channel.k8s.io"}));
  std::string bytes = r.Bytes();
  EXPECT_EQ(bytes.rfind("HTTP/1.1 403 Forbidden\r\n", 0), 0u);
  EXPECT_NE(bytes.find("X-Accepted-Stream-Protocol-Versions: channel.k8s.io\r\n"),
            std::string::npos);

  http::Refusal pf =
      Refused(NegotiateUpgrade(SpdyRequest({"v4.channel.k8s.io"}), RouteKind::kPortForward));
  EXPECT_EQ(pf.status, 403);
  ASSERT_EQ(pf.headers.size(), 1u);
  EXPECT_EQ(pf.headers[0].value, "portforward.k8s.io");
}

TEST(SpdyUpgrade, MissingConnectionOrUpgradeIs400) {
  auto no_upgrade = Parse(
      "POST /exec/t HTTP/1.1\r\nConnection: Upgrade\r\n"
      "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n");
  http::Refusal r = Refused(NegotiateUpgrade(no_upgrade, RouteKind::kExec));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.text, "unable to upgrade: missing upgrade headers in request");
  auto no_connection = Parse(
      "POST /exec/t HTTP/1.1\r\nUpgrade: SPDY/3.1\r\n"
      "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n");
  EXPECT_EQ(Refused(NegotiateUpgrade(no_connection, RouteKind::kExec)).status, 400);
  auto other = Parse(
      "POST /exec/t HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n"
      "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n");
  EXPECT_EQ(Refused(NegotiateUpgrade(other, RouteKind::kExec)).status, 400);
  // Case does not matter.
  auto lower = Parse(
      "POST /exec/t HTTP/1.1\r\nconnection: upgrade\r\nupgrade: spdy/3.1\r\n"
      "x-stream-protocol-version: v4.channel.k8s.io\r\n\r\n");
  EXPECT_EQ(Accepted(NegotiateUpgrade(lower, RouteKind::kExec)).protocol, "v4.channel.k8s.io");
}

TEST(WebSocketUpgrade, AcceptKeyFromRfc6455) {
  EXPECT_EQ(WebSocketAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocketUpgrade, V5FirstAsKubectlOffers) {
  auto v = NegotiateUpgrade(
      WebSocketRequest("v5.channel.k8s.io, v4.channel.k8s.io, v4.base64.channel.k8s.io, "
                       "channel.k8s.io, base64.channel.k8s.io"),
      RouteKind::kExec);
  Upgrade u = Accepted(v);
  EXPECT_EQ(u.kind, UpgradeKind::kWebSocket);
  EXPECT_EQ(u.protocol, "v5.channel.k8s.io");
  EXPECT_EQ(u.response,
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
            "\r\n");
}

TEST(WebSocketUpgrade, ClientOrderAndRepeatedFields) {
  auto base64 = NegotiateUpgrade(
      WebSocketRequest("x.k8s.io", "Sec-WebSocket-Protocol: base64.channel.k8s.io\r\n"),
      RouteKind::kAttach);
  EXPECT_EQ(Accepted(base64).protocol, "base64.channel.k8s.io");
  auto v4 = NegotiateUpgrade(WebSocketRequest("v4.base64.channel.k8s.io,v4.channel.k8s.io"),
                             RouteKind::kExec);
  EXPECT_EQ(Accepted(v4).protocol, "v4.base64.channel.k8s.io");
}

TEST(WebSocketUpgrade, NoProtocolMeansChannelK8sIo) {
  Upgrade u = Accepted(NegotiateUpgrade(WebSocketRequest(""), RouteKind::kExec));
  EXPECT_EQ(u.protocol, "");
  EXPECT_EQ(u.response.find("Sec-WebSocket-Protocol"), std::string::npos);
  EXPECT_NE(u.response.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos);
}

TEST(WebSocketUpgrade, PortForwardProtocols) {
  auto v4 = NegotiateUpgrade(WebSocketRequest("v5.channel.k8s.io, v4.channel.k8s.io"),
                             RouteKind::kPortForward);
  EXPECT_EQ(Accepted(v4).protocol, "v4.channel.k8s.io");
  EXPECT_EQ(Accepted(NegotiateUpgrade(WebSocketRequest(""), RouteKind::kPortForward)).protocol, "");
  http::Refusal r =
      Refused(NegotiateUpgrade(WebSocketRequest("channel.k8s.io"), RouteKind::kPortForward));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.text,
            "requested protocol(s) are not supported: [channel.k8s.io]; supports "
            "[v4.channel.k8s.io v4.base64.channel.k8s.io]");
}

TEST(WebSocketUpgrade, Refusals) {
  http::Refusal unknown =
      Refused(NegotiateUpgrade(WebSocketRequest("v9.channel.k8s.io"), RouteKind::kExec));
  EXPECT_EQ(unknown.status, 403);

  auto post = Parse(
      "POST /exec/t HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  http::Refusal method = Refused(NegotiateUpgrade(post, RouteKind::kExec));
  EXPECT_EQ(method.status, 405);
  EXPECT_EQ(method.text, "bad method");

  auto v8 = Parse(
      "GET /exec/t HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
  http::Refusal version = Refused(NegotiateUpgrade(v8, RouteKind::kExec));
  EXPECT_EQ(version.status, 400);
  EXPECT_EQ(version.text, "missing or bad WebSocket Version");
  ASSERT_EQ(version.headers.size(), 1u);
  EXPECT_EQ(version.headers[0].name, "Sec-WebSocket-Version");
  EXPECT_EQ(version.headers[0].value, "13");

  for (std::string_view key : {"", "short", "dGhlIHNhbXBsZSBub25jZQ",
                               "dGhlIHNhbXBsZSBub25jZQ=="
                               "AAAA",
                               "dGhlIHNhbXBsZSBub25j*Q=="}) {
    std::string head =
        "GET /exec/t HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\n";
    if (!key.empty()) head += "Sec-WebSocket-Key: " + std::string(key) + "\r\n";
    http::Refusal r = Refused(NegotiateUpgrade(Parse(head + "\r\n"), RouteKind::kExec));
    EXPECT_EQ(r.status, 400) << key;
    EXPECT_EQ(r.text, "mismatch challenge/response") << key;
  }
}

TEST(WebSocketUpgrade, NeedsConnectionUpgradeElseTakenAsSpdy) {
  auto no_connection = Parse(
      "GET /exec/t HTTP/1.1\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  EXPECT_FALSE(IsWebSocketRequest(no_connection));
  http::Refusal r = Refused(NegotiateUpgrade(no_connection, RouteKind::kExec));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.text, "unable to upgrade: X-Stream-Protocol-Version is required");
  auto upgrade_list =
      Parse("GET /exec/t HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n");
  EXPECT_FALSE(IsWebSocketRequest(upgrade_list));
  EXPECT_TRUE(IsWebSocketRequest(WebSocketRequest("")));
}

}  // namespace
}  // namespace berth::cri::streaming

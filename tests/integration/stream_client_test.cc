// The streaming client (stream_client.h) against a small loopback server built from the
// streaming codecs (src/cri/streaming/): HTTP heads, upgrade negotiation, the server SPDY session
// and the server WebSocket connection. It proves the client's framing, stream opening, FIN/EOF,
// status parsing and channel handling, independently of the real streaming server.
//
// The fake server's behaviour is chosen by the URL token. Exec/attach tokens are flags, then an
// optional exit code: `i` stdin, `o` stdout, `e` stderr, `t` tty, `-x<code>` (default 0); e.g.
// `ioe`, `oe-x3`. Once every expected stream is open it writes "ready streams=<types in order>"
// on stdout and "warn\n" on stderr, echoes stdin to stdout and resize messages as "resize <json>",
// and ends at stdin EOF (WebSocket v4: stdin holding "quit"), or at once without stdin.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cri/streaming/channel.h"
#include "cri/streaming/http.h"
#include "cri/streaming/route.h"
#include "cri/streaming/spdy_session.h"
#include "cri/streaming/upgrade.h"
#include "cri/streaming/websocket.h"
#include "stream_client.h"

namespace berth::testing::stream {
namespace {

namespace cs = cri::streaming;
using namespace std::chrono_literals;
using Kind = spdy::Event::Kind;

struct ExecSpec {
  bool in = false, out = false, err = false, tty = false;
  int exit = 0;
};

ExecSpec ParseSpec(std::string_view token) {
  ExecSpec spec;
  size_t dash = token.find("-x");
  if (dash != std::string_view::npos) spec.exit = std::stoi(std::string(token.substr(dash + 2)));
  for (char c : token.substr(0, dash)) {
    spec.in |= c == 'i';
    spec.out |= c == 'o';
    spec.err |= c == 'e';
    spec.tty |= c == 't';
  }
  return spec;
}

int Version(std::string_view protocol) {
  return protocol.size() > 2 && protocol[0] == 'v' && protocol[2] == '.' ? protocol[1] - '0' : 1;
}

// What the error stream carries at the end, as kubelet writes it.
std::string ErrorText(int exit, int version) {
  if (version >= 4) {
    if (exit == 0) return R"({"metadata":{},"status":"Success"})";
    return fmt::format(
        R"({{"metadata":{{}},"status":"Failure","message":"command terminated with non-zero )"
        R"(exit code: error executing command [sh], exit code {0}","reason":"NonZeroExitCode",)"
        R"("details":{{"causes":[{{"reason":"ExitCode","message":"{0}"}}]}}}})",
        exit);
  }
  if (exit == 0) return "";
  return fmt::format("command terminated with non-zero exit code: exit code {}", exit);
}

class FakeServer {
 public:
  FakeServer() {
    listen_ = fs::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    BERTH_CHECK(::bind(listen_.Get(), reinterpret_cast<sockaddr*>(&addr), len) == 0, "bind");
    BERTH_CHECK(::listen(listen_.Get(), 16) == 0, "listen");
    BERTH_CHECK(::getsockname(listen_.Get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0,
                "getsockname");
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }

  ~FakeServer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    ::shutdown(listen_.Get(), SHUT_RDWR);  // wakes accept()
    acceptor_.join();
    for (auto& t : workers_) t.join();
  }

  std::string Url(std::string_view path) const {
    return fmt::format("http://127.0.0.1:{}{}", port_, path);
  }

  // Waits until a connection ended the way `note` says ("eof", "reset").
  bool WaitNote(const std::string& note, Millis timeout = 2s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return notes_.contains(note); });
  }

 private:
  void Note(const std::string& note) {
    std::lock_guard lock(mu_);
    notes_.insert(note);
    cv_.notify_all();
  }

  void Accept() {
    while (true) {
      int fd = ::accept4(listen_.Get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0 && errno == EINTR) continue;
      std::lock_guard lock(mu_);
      if (fd < 0 || stopping_) {
        if (fd >= 0) ::close(fd);
        return;
      }
      open_.insert(fd);
      workers_.emplace_back([this, fd] {
        Serve(fd);
        std::lock_guard lock(mu_);
        open_.erase(fd);
        ::close(fd);
      });
    }
  }

  // Next bytes into `out`; false at EOF or error (noted).
  bool ReadChunk(int fd, std::string& out) {
    char buf[64 * 1024];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      Note(n == 0 ? "eof" : errno == ECONNRESET ? "reset" : "error");
      return false;
    }
    out.assign(buf, static_cast<size_t>(n));
    return true;
  }

  // After the server's part: FIN, then wait for the client to close.
  void Linger(int fd) {
    ::shutdown(fd, SHUT_WR);
    std::string ignored;
    while (ReadChunk(fd, ignored)) {
    }
  }

  void Serve(int fd) {
    cs::http::RequestParser parser;
    std::string bytes;
    while (true) {
      if (!ReadChunk(fd, bytes)) return;
      auto done = parser.Feed(bytes);
      if (!done) {
        (void)SendAll(fd, cs::http::RefusalForParseError(done.error()).Bytes());
        return;
      }
      if (*done) break;
    }
    cs::http::Request request = parser.TakeRequest();
    std::string rest = parser.TakeLeftover();
    auto route = cs::ParseRoute(request.method, request.path);
    if (auto* refusal = std::get_if<cs::http::Refusal>(&route)) {
      (void)SendAll(fd, refusal->Bytes());
      return;
    }
    const cs::Route& r = std::get<cs::Route>(route);
    if (r.token.starts_with("unknown")) {
      (void)SendAll(fd, cs::http::Refusal{.status = 404, .text = "404 page not found"}.Bytes());
      return;
    }
    if (r.token == "badaccept") {
      (void)SendAll(
          fd,
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
          "Connection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n");
      return;
    }
    auto negotiated = cs::NegotiateUpgrade(request, r.kind);
    if (auto* refusal = std::get_if<cs::http::Refusal>(&negotiated)) {
      (void)SendAll(fd, refusal->Bytes());
      return;
    }
    const cs::Upgrade& up = std::get<cs::Upgrade>(negotiated);
    if (!SendAll(fd, up.response)) return;
    const bool forward = r.kind == cs::RouteKind::kPortForward;
    if (up.kind == cs::UpgradeKind::kSpdy) {
      forward ? SpdyPortForward(fd, rest) : SpdyExec(fd, rest, ParseSpec(r.token), up.protocol);
    } else {
      forward ? WsPortForward(fd, rest, request, up.protocol)
              : WsExec(fd, rest, ParseSpec(r.token), up.protocol);
    }
  }

  void SpdyExec(int fd, std::string bytes, const ExecSpec& spec, const std::string& protocol) {
    const int version = Version(protocol);
    const size_t expected =
        1 + spec.in + spec.out + (spec.err && !spec.tty) + (spec.tty && version >= 3);
    spdy::Session s;
    std::map<std::string, uint32_t> ids;
    std::string order;
    bool done = false;
    auto id = [&](const std::string& type) { return ids.contains(type) ? ids[type] : 0u; };
    auto finish = [&] {
      for (const char* type : {"stdout", "stderr"}) {
        if (id(type) == 0) continue;
        // A failing command's output streams are reset, as upstream does with unfinished ones.
        (void)(spec.exit == 0 ? s.SendData(id(type), "", true)
                              : s.Reset(id(type), spdy::RstStatus::kCancel));
      }
      (void)s.SendData(id("error"), ErrorText(spec.exit, version), true);
      s.GoAway();
      done = true;
    };
    auto start = [&] {
      if (id("stdout") != 0) (void)s.SendData(id("stdout"), "ready streams=" + order + "\n");
      if (id("stderr") != 0) (void)s.SendData(id("stderr"), "warn\n");
      if (!spec.in) finish();
    };
    do {
      const bool failed = !s.Feed(bytes);
      for (auto& e : s.TakeEvents()) {
        if (done) break;
        if (e.kind == Kind::kStreamOpened) {
          std::string type(e.headers.Get("streamtype").value_or("?"));
          ids[type] = e.stream_id;
          order += (order.empty() ? "" : ",") + type;
          (void)s.Reply(e.stream_id);
          if (ids.size() == expected) start();
        } else if (e.kind == Kind::kData && e.stream_id == id("stdin")) {
          (void)s.SendData(id("stdout"), e.data);
        } else if (e.kind == Kind::kData && e.stream_id == id("resize")) {
          (void)s.SendData(id("stdout"), "resize " + e.data);
        } else if (e.kind == Kind::kPeerFinished && e.stream_id == id("stdin")) {
          finish();
        }
      }
      if (!SendAll(fd, s.TakeOutput())) return;
      if (failed) break;
    } while (!done && ReadChunk(fd, bytes));
    Linger(fd);
  }

  void SpdyPortForward(int fd, std::string bytes) {
    struct Stream {
      std::string type, request;
    };
    spdy::Session s;
    std::map<uint32_t, Stream> streams;
    std::map<std::string, uint32_t> error_of;  // requestid -> error stream
    do {
      const bool failed = !s.Feed(bytes);
      for (auto& e : s.TakeEvents()) {
        const uint32_t sid = e.stream_id;
        if (e.kind == Kind::kStreamOpened) {
          std::string type(e.headers.Get("streamtype").value_or(""));
          std::string request(e.headers.Get("requestid").value_or(""));
          int port = std::atoi(std::string(e.headers.Get("port").value_or("0")).c_str());
          if ((type != "error" && type != "data") || port <= 0 || port > 65535) {
            (void)s.Reset(sid, spdy::RstStatus::kCancel);
            continue;
          }
          (void)s.Reply(sid);
          streams[sid] = {type, request};
          if (type == "error") {
            error_of[request] = sid;
          } else if (port == 1) {
            (void)s.SendData(error_of[request], "dial tcp 127.0.0.1:1: connection refused", true);
            (void)s.SendData(sid, "", true);
          } else {
            (void)s.SendData(sid, fmt::format("port={}\n", port));
          }
        } else if (e.kind == Kind::kData && streams[sid].type == "data") {
          (void)s.SendData(sid, e.data);
        } else if (e.kind == Kind::kPeerFinished && streams[sid].type == "data") {
          (void)s.SendData(sid, "", true);
          (void)s.SendData(error_of[streams[sid].request], "", true);
        }
      }
      if (!SendAll(fd, s.TakeOutput())) return;
      if (failed) break;
    } while (ReadChunk(fd, bytes));
  }

  void WsExec(int fd, std::string bytes, const ExecSpec& spec, const std::string& protocol) {
    ws::Connection c;
    const cs::ChannelProtocol cp = *cs::ChannelProtocolFor(protocol);
    auto send = [&](uint8_t channel, std::string_view data) {
      std::string m = cs::EncodeChannelMessage(cp, channel, data);
      (void)(cp.base64 ? c.SendText(m) : c.SendBinary(m));
    };
    bool ended = false;
    auto finish = [&] {
      std::string status = ErrorText(spec.exit, Version(protocol));
      if (!status.empty()) send(cs::kErrorChannel, status);
      c.Close(ws::kCloseNormal);
      ended = true;
    };
    send(cs::kStdoutChannel, "ready\n");
    if (spec.err) send(cs::kStderrChannel, "warn\n");
    if (!spec.in) finish();
    while (true) {
      std::vector<ws::Message> messages;
      Status st = c.Feed(bytes, messages);
      for (auto& m : messages) {
        auto decoded = cs::DecodeChannelMessage(cp, m.data);
        if (ended || !decoded || !decoded->has_value()) continue;
        cs::ChannelMessage& cm = **decoded;
        if (cm.kind == cs::ChannelMessage::Kind::kClose) {
          if (cm.channel == cs::kStdinChannel) finish();
        } else if (cm.channel == cs::kStdinChannel) {
          send(cs::kStdoutChannel, cm.data);
          if (cm.data.find("quit") != std::string::npos) finish();
        } else if (cm.channel == cs::kResizeChannel) {
          send(cs::kStdoutChannel, "resize " + cm.data);
        }
      }
      if (!SendAll(fd, c.TakeOutput())) return;
      if (!st || c.Closed()) break;
      if (!ReadChunk(fd, bytes)) return;
    }
    Linger(fd);
  }

  void WsPortForward(int fd, std::string bytes, const cs::http::Request& request,
                     const std::string& protocol) {
    auto ports = cs::ParsePortForwardPorts(request);
    if (!ports) return;
    ws::Connection c;
    const cs::ChannelProtocol cp = *cs::ChannelProtocolFor(protocol);
    auto send = [&](uint8_t channel, std::string_view data) {
      std::string m = cs::EncodeChannelMessage(cp, channel, data);
      (void)(cp.base64 ? c.SendText(m) : c.SendBinary(m));
    };
    for (size_t i = 0; i < ports->size(); ++i) {
      auto [data, error] = cs::PortForwardChannels(i);
      send(data, cs::PortPrefix((*ports)[i]));
      send(error, cs::PortPrefix((*ports)[i]));
      if ((*ports)[i] == 1) send(error, "dial tcp 127.0.0.1:1: connection refused");
    }
    while (true) {
      std::vector<ws::Message> messages;
      Status st = c.Feed(bytes, messages);
      for (auto& m : messages) {
        auto decoded = cs::DecodeChannelMessage(cp, m.data);
        if (!decoded || !decoded->has_value()) continue;
        cs::ChannelMessage& cm = **decoded;
        if (cm.kind == cs::ChannelMessage::Kind::kData && cm.channel % 2 == 0) {
          send(cm.channel, cm.data);
        }
      }
      if (!SendAll(fd, c.TakeOutput())) return;
      if (!st || c.Closed()) break;
      if (!ReadChunk(fd, bytes)) return;
    }
    Linger(fd);
  }

  fs::UniqueFd listen_;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::set<int> open_;
  std::vector<std::thread> workers_;
  std::set<std::string> notes_;
};

// ---------------------------------------------------------------------------------------------

TEST(StreamClient, ParsesUrls) {
  auto u = ParseUrl("http://127.0.0.1:10010/exec/abc?x=1");
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 10010);
  EXPECT_EQ(u->target, "/exec/abc?x=1");
  auto v6 = ParseUrl("http://[::1]:8080");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->target, "/");
  EXPECT_EQ(v6->HostPort(), "[::1]:8080");
  EXPECT_TRUE(ParseUrl("https://x/").error().Is(Errc::kNotImplemented));
  EXPECT_FALSE(ParseUrl("http://x:99999/"));
}

TEST(StreamClient, RawRequestsGetTheServersRefusals) {
  FakeServer server;
  auto not_found = RawRequest(server.Url(""), "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(not_found) << not_found.error().ToString();
  EXPECT_EQ(not_found->status, 404);
  EXPECT_EQ(not_found->body, "404 page not found\n");
  EXPECT_EQ(not_found->Header("content-type"), "text/plain; charset=utf-8");

  auto garbage = RawRequest(server.Url(""), "NOT HTTP\r\n\r\n");
  ASSERT_TRUE(garbage) << garbage.error().ToString();
  EXPECT_EQ(garbage->status, 400);

  // An upgrade without X-Stream-Protocol-Version, built from the client's own request head.
  auto url = ParseUrl(server.Url("/exec/ioe"));
  ASSERT_TRUE(url);
  auto missing = RawRequest(server.Url(""), SpdyUpgradeRequest(*url, {}));
  ASSERT_TRUE(missing) << missing.error().ToString();
  EXPECT_EQ(missing->status, 400);
  EXPECT_EQ(missing->body, "unable to upgrade: X-Stream-Protocol-Version is required\n");

  // The raw socket helpers: a request in two pieces, then the server's close.
  auto fd = ConnectTcp(url->host, url->port);
  ASSERT_TRUE(fd) << fd.error().ToString();
  ASSERT_TRUE(SendAll(fd->Get(), "GET /exec/unknown1 HTT"));
  ASSERT_TRUE(SendAll(fd->Get(), "P/1.1\r\nHost: x\r\n\r\n"));
  auto reply = ReadReply(fd->Get());
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->status, 404);
  auto rest = ReadUntilClosed(fd->Get(), 2s);
  ASSERT_TRUE(rest) << rest.error().ToString();
  EXPECT_EQ(*rest, "");
}

TEST(StreamClient, SpdyDialRefusals) {
  FakeServer server;
  HttpReply refused;
  auto bad_protocol = SpdyConn::Dial(server.Url("/exec/ioe"), {"v9.channel.k8s.io"}, &refused);
  ASSERT_FALSE(bad_protocol);
  EXPECT_TRUE(bad_protocol.error().Is(Errc::kPermissionDenied)) << bad_protocol.error().ToString();
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.HeaderValues("X-Accepted-Stream-Protocol-Versions"),
            (std::vector<std::string>{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                                      "channel.k8s.io"}));

  auto unknown = SpdyConn::Dial(server.Url("/exec/unknown"), {"v4.channel.k8s.io"}, &refused);
  ASSERT_FALSE(unknown);
  EXPECT_TRUE(unknown.error().Is(Errc::kNotFound)) << unknown.error().ToString();
  EXPECT_EQ(refused.status, 404);
}

TEST(StreamClient, SpdyExecEchoesStdinAndEndsWithSuccess) {
  FakeServer server;
  auto rc = RemoteCommand::Start(server.Url("/exec/ioe"), {.stdin = true});
  ASSERT_TRUE(rc) << rc.error().ToString();
  RemoteCommand& cmd = **rc;
  EXPECT_EQ(cmd.Protocol(), "v4.channel.k8s.io");
  // client-go's order, odd ids.
  EXPECT_EQ(cmd.StreamId("error"), 1u);
  EXPECT_EQ(cmd.StreamId("stdin"), 3u);
  EXPECT_EQ(cmd.StreamId("stdout"), 5u);
  EXPECT_EQ(cmd.StreamId("stderr"), 7u);
  EXPECT_EQ(cmd.StreamId("resize"), 0u);
  auto ready = cmd.ReadStdoutUntil("\n");
  ASSERT_TRUE(ready) << ready.error().ToString();
  EXPECT_EQ(*ready, "ready streams=error,stdin,stdout,stderr\n");

  ASSERT_TRUE(cmd.WriteStdin("hello\n"));
  auto echoed = cmd.ReadStdoutUntil("hello\n");
  ASSERT_TRUE(echoed) << echoed.error().ToString();
  // Bigger than one 32 KiB frame.
  std::string big(100 * 1024, 'x');
  ASSERT_TRUE(cmd.WriteStdin(big + "|"));
  ASSERT_TRUE(cmd.ReadStdoutUntil("|"));
  ASSERT_TRUE(cmd.CloseStdin());

  auto outcome = cmd.Wait();
  ASSERT_TRUE(outcome) << outcome.error().ToString();
  EXPECT_TRUE(outcome->success);
  EXPECT_EQ(outcome->exit_code, 0);
  EXPECT_EQ(outcome->stdout_data, "ready streams=error,stdin,stdout,stderr\nhello\n" + big + "|");
  EXPECT_EQ(outcome->stderr_data, "warn\n");
  EXPECT_EQ(outcome->error_data, R"({"metadata":{},"status":"Success"})");

  EXPECT_TRUE(cmd.Spdy()->WaitClosed(2s));
  ASSERT_TRUE(cmd.Spdy()->GoAwayReceived());
  EXPECT_EQ(cmd.Spdy()->GoAwayReceived()->status, 0u);
  EXPECT_EQ(cmd.Spdy()->GoAwayReceived()->last_good_stream_id, 7u);
  EXPECT_FALSE(cmd.Spdy()->ConnectionError());
}

TEST(StreamClient, SpdyExecNonZeroExitFromTheStatus) {
  FakeServer server;
  auto rc = RemoteCommand::Start(server.Url("/exec/oe-x3"));
  ASSERT_TRUE(rc) << rc.error().ToString();
  auto outcome = (*rc)->Wait();
  ASSERT_TRUE(outcome) << outcome.error().ToString();
  EXPECT_FALSE(outcome->success);
  EXPECT_EQ(outcome->exit_code, 3);
  EXPECT_EQ(outcome->reason, "NonZeroExitCode");
  EXPECT_NE(outcome->error_data.find(R"("reason":"ExitCode")"), std::string::npos);
  // stdout and stderr were reset, not finished: the data before counts, the RST ends them.
  EXPECT_EQ(outcome->stdout_data, "ready streams=error,stdout,stderr\n");
  EXPECT_EQ(outcome->stderr_data, "warn\n");
  EXPECT_TRUE((*rc)->Spdy()->State((*rc)->StreamId("stdout")).reset);
}

TEST(StreamClient, SpdyExecTtyResize) {
  FakeServer server;
  auto rc = RemoteCommand::Start(server.Url("/exec/iot"), {.stdin = true, .tty = true});
  ASSERT_TRUE(rc) << rc.error().ToString();
  RemoteCommand& cmd = **rc;
  ASSERT_TRUE(cmd.ReadStdoutUntil("streams=error,stdin,stdout,resize\n"));
  ASSERT_TRUE(cmd.Resize(80, 24));
  auto resized = cmd.ReadStdoutUntil("}\n");
  ASSERT_TRUE(resized) << resized.error().ToString();
  EXPECT_NE(resized->find("resize {\"Width\":80,\"Height\":24}\n"), std::string::npos);
  ASSERT_TRUE(cmd.CloseStdin());
  auto outcome = cmd.Wait();
  ASSERT_TRUE(outcome) << outcome.error().ToString();
  EXPECT_TRUE(outcome->success);
}

TEST(StreamClient, SpdyExecOlderProtocols) {
  FakeServer server;
  // v2: no resize stream even with a tty.
  auto v2 = RemoteCommand::Start(server.Url("/exec/iot"),
                                 {.protocols = {"v2.channel.k8s.io"}, .stdin = true, .tty = true});
  ASSERT_TRUE(v2) << v2.error().ToString();
  EXPECT_EQ((*v2)->Protocol(), "v2.channel.k8s.io");
  ASSERT_TRUE((*v2)->ReadStdoutUntil("streams=error,stdin,stdout\n"));
  EXPECT_TRUE((*v2)->Resize(1, 1).error().Is(Errc::kFailedPrecondition));
  ASSERT_TRUE((*v2)->CloseStdin());
  auto ok = (*v2)->Wait();
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_TRUE(ok->success);
  EXPECT_EQ(ok->error_data, "");

  // v3: the error stream is plain text; no exit code to read from it.
  auto v3 = RemoteCommand::Start(server.Url("/exec/oe-x2"), {.protocols = {"v3.channel.k8s.io"}});
  ASSERT_TRUE(v3) << v3.error().ToString();
  auto failed = (*v3)->Wait();
  ASSERT_TRUE(failed) << failed.error().ToString();
  EXPECT_FALSE(failed->success);
  EXPECT_FALSE(failed->exit_code);
  EXPECT_EQ(failed->message, "command terminated with non-zero exit code: exit code 2");
}

TEST(StreamClient, SpdyConnLowLevel) {
  FakeServer server;
  auto conn = SpdyConn::Dial(server.Url("/exec/ioe"), {"v4.channel.k8s.io"});
  ASSERT_TRUE(conn) << conn.error().ToString();
  SpdyConn& c = **conn;
  ASSERT_TRUE(c.Ping(2s));
  // An even id from the client: the session resets it.
  ASSERT_TRUE(c.SendFrame(spdy::SynStream{.stream_id = 2, .headers = {{"streamtype", "x"}}}));
  Status reply = c.WaitReply(2, 2s);
  ASSERT_FALSE(reply);
  EXPECT_TRUE(reply.error().Is(Errc::kAborted)) << reply.error().ToString();
  EXPECT_EQ(c.State(2).reset_status, static_cast<uint32_t>(spdy::RstStatus::kProtocolError));
  // Unknown control type 10: a connection error; GOAWAY PROTOCOL_ERROR, then the close.
  ASSERT_TRUE(c.SendRaw(std::string("\x80\x03\x00\x0a\x00\x00\x00\x00", 8)));
  EXPECT_TRUE(c.WaitClosed(2s));
  ASSERT_TRUE(c.GoAwayReceived());
  EXPECT_EQ(c.GoAwayReceived()->status, static_cast<uint32_t>(spdy::GoAwayStatus::kProtocolError));
  auto after = c.OpenStream({{"streamtype", "error"}}, false, 1s);
  EXPECT_FALSE(after);
}

TEST(StreamClient, AbortResetsTheConnection) {
  FakeServer server;
  auto rc = RemoteCommand::Start(server.Url("/exec/io"), {.stdin = true, .stderr = false});
  ASSERT_TRUE(rc) << rc.error().ToString();
  ASSERT_TRUE((*rc)->ReadStdoutUntil("ready"));
  (*rc)->Abort();
  EXPECT_TRUE(server.WaitNote("reset"));
  EXPECT_FALSE((*rc)->WriteStdin("x"));
  auto out = (*rc)->Wait(1s);  // reads end: the connection is gone
  ASSERT_TRUE(out) << out.error().ToString();
}

TEST(StreamClient, WebSocketExecV5ClosesStdin) {
  FakeServer server;
  auto rc = RemoteCommand::Start(server.Url("/exec/ioe"),
                                 {.transport = RemoteCommandOptions::Transport::kWebSocket,
                                  .protocols = {"v5.channel.k8s.io", "v4.channel.k8s.io"},
                                  .stdin = true});
  ASSERT_TRUE(rc) << rc.error().ToString();
  RemoteCommand& cmd = **rc;
  EXPECT_EQ(cmd.Protocol(), "v5.channel.k8s.io");
  ASSERT_TRUE(cmd.ReadStdoutUntil("ready\n"));
  ASSERT_TRUE(cmd.WriteStdin("hi there\n"));
  ASSERT_TRUE(cmd.Resize(120, 40));
  ASSERT_TRUE(cmd.ReadStdoutUntil("\"Height\":40}\n"));
  ASSERT_TRUE(cmd.CloseStdin());
  auto outcome = cmd.Wait();
  ASSERT_TRUE(outcome) << outcome.error().ToString();
  EXPECT_TRUE(outcome->success);
  EXPECT_EQ(outcome->stdout_data, "ready\nhi there\nresize {\"Width\":120,\"Height\":40}\n");
  EXPECT_EQ(outcome->stderr_data, "warn\n");
  EXPECT_EQ(cmd.WebSocket()->PeerCloseCode(), ws::kCloseNormal);
  EXPECT_TRUE(cmd.WebSocket()->WaitClosed(2s));
}

TEST(StreamClient, WebSocketExecBase64V4) {
  FakeServer server;
  auto rc = RemoteCommand::Start(server.Url("/exec/ioe-x7"),
                                 {.transport = RemoteCommandOptions::Transport::kWebSocket,
                                  .protocols = {"v4.base64.channel.k8s.io"},
                                  .stdin = true});
  ASSERT_TRUE(rc) << rc.error().ToString();
  RemoteCommand& cmd = **rc;
  EXPECT_EQ(cmd.Protocol(), "v4.base64.channel.k8s.io");
  EXPECT_TRUE(cmd.CloseStdin().error().Is(Errc::kFailedPrecondition));
  ASSERT_TRUE(cmd.WriteStdin(std::string("bin\0\xff quit\n", 11)));
  auto outcome = cmd.Wait();
  ASSERT_TRUE(outcome) << outcome.error().ToString();
  EXPECT_FALSE(outcome->success);
  EXPECT_EQ(outcome->exit_code, 7);
  EXPECT_EQ(outcome->stdout_data, "ready\n" + std::string("bin\0\xff quit\n", 11));
}

TEST(StreamClient, WebSocketDialChecks) {
  FakeServer server;
  auto bad_accept = WsConn::Dial(server.Url("/exec/badaccept"), {"v4.channel.k8s.io"});
  ASSERT_FALSE(bad_accept);
  EXPECT_TRUE(bad_accept.error().Is(Errc::kFailedPrecondition)) << bad_accept.error().ToString();

  HttpReply refused;
  auto bad_protocol = WsConn::Dial(server.Url("/exec/ioe"), {"v9.channel.k8s.io"}, &refused);
  ASSERT_FALSE(bad_protocol);
  EXPECT_EQ(refused.status, 403);

  // No subprotocol offered: none chosen ("" = channel.k8s.io rules).
  auto none = WsConn::Dial(server.Url("/exec/o"), {});
  ASSERT_TRUE(none) << none.error().ToString();
  EXPECT_EQ((*none)->Protocol(), "");
  auto first = (*none)->ReadMessage(2s);
  ASSERT_TRUE(first) << first.error().ToString();
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->data, std::string("\x01ready\n"));
  // Without stdin the command ends at once: the server's close frame, answered by the codec.
  while (true) {
    auto m = (*none)->ReadMessage(2s);
    ASSERT_TRUE(m) << m.error().ToString();
    if (!m->has_value()) break;
  }
  EXPECT_EQ((*none)->PeerCloseCode(), ws::kCloseNormal);
  EXPECT_TRUE((*none)->Close().error().Is(Errc::kFailedPrecondition));
  EXPECT_TRUE((*none)->WaitClosed(2s));
}

TEST(StreamClient, SpdyPortForwardInParallel) {
  FakeServer server;
  auto pf = PortForwardSpdy::Dial(server.Url("/portforward/tok"));
  ASSERT_TRUE(pf) << pf.error().ToString();
  EXPECT_EQ((*pf)->Conn().Protocol(), "portforward.k8s.io");
  constexpr int kThreads = 4;
  std::vector<std::string> failures(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        const uint16_t port = static_cast<uint16_t>(8000 + i);
        auto s = (*pf)->Open(port);
        if (!s) {
          failures[i] = s.error().ToString();
          return;
        }
        std::string data(70 * 1024 + i, static_cast<char>('a' + i));
        if (!s->Write(data) || !s->CloseWrite()) {
          failures[i] = "write failed";
          return;
        }
        auto got = s->ReadAll();
        auto error = s->ErrorText();
        if (!got || *got != fmt::format("port={}\n", port) + data) {
          failures[i] =
              fmt::format("port {}: wrong echo ({} bytes)", port, got ? got->size() : size_t{0});
        } else if (!error || !error->empty()) {
          failures[i] = fmt::format("port {}: error text", port);
        }
      });
    }
  }
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(failures[i], "") << "thread " << i;

  auto refused = (*pf)->Open(1);
  ASSERT_TRUE(refused) << refused.error().ToString();
  auto error = refused->ErrorText(2s);
  ASSERT_TRUE(error) << error.error().ToString();
  EXPECT_EQ(*error, "dial tcp 127.0.0.1:1: connection refused");
  auto data = refused->ReadAll(2s);
  ASSERT_TRUE(data);
  EXPECT_EQ(*data, "");
  EXPECT_EQ(refused->RequestId(), static_cast<uint32_t>(kThreads));

  // A data stream without a port: reset by the server.
  auto bad = (*pf)->Conn().OpenStream({{"streamtype", "data"}}, false, 2s);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kAborted)) << bad.error().ToString();
}

TEST(StreamClient, WebSocketPortForward) {
  FakeServer server;
  auto pf = PortForwardWs::Dial(server.Url("/portforward/tok?port=8080&port=1"));
  ASSERT_TRUE(pf) << pf.error().ToString();
  EXPECT_EQ((*pf)->Ports(), (std::vector<uint16_t>{8080, 1}));
  auto error = (*pf)->ErrorText(1);
  ASSERT_TRUE(error) << error.error().ToString();
  EXPECT_EQ(*error, "dial tcp 127.0.0.1:1: connection refused");
  ASSERT_TRUE((*pf)->Write(0, "abc"));
  auto echoed = (*pf)->Read(0);
  ASSERT_TRUE(echoed) << echoed.error().ToString();
  ASSERT_TRUE(echoed->has_value());
  EXPECT_EQ(**echoed, "abc");
  EXPECT_FALSE((*pf)->ProtocolError()) << (*pf)->ProtocolError()->ToString();
  EXPECT_TRUE((*pf)->Write(2, "x").error().Is(Errc::kOutOfRange));
  ASSERT_TRUE((*pf)->Conn().Close());
  auto rest = (*pf)->ReadAll(0, 2s);
  ASSERT_TRUE(rest) << rest.error().ToString();
  EXPECT_EQ(*rest, "");
}

}  // namespace
}  // namespace berth::testing::stream

// The CRI streaming server (src/cri/streaming/server.h) on loopback with a fake Runtime: tokens,
// refusals, the remotecommand and portforward sessions, timeouts, and clients that misbehave,
// flood or vanish — without containers, so the limits can be short and every outcome observed.
// The same server under berthd with real containers: cri_streaming_test.cc.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "cri/streaming/server.h"
#include "stream_client.h"

namespace berth::testing {
namespace {

namespace cs = cri::streaming;
using stream::Millis;
using Transport = stream::RemoteCommandOptions::Transport;

// Runtime whose commands are scripted by their argv:
//   echo      stdin back on stdout, resizes as "resize WxH\n", stdin EOF ends it with exit 0
//   exit N    ends at once with exit N, after "bye\n" on stdout and "err\n" on stderr
//   fail      ends with an error
//   hang      nothing, until cancelled
//   spew      writes 1 MiB pieces for as long as the session lasts
class FakeRuntime : public cs::Runtime {
 public:
  FakeRuntime() = default;

  std::atomic<int> live{0};       // commands not destroyed yet
  std::atomic<int> started{0};    // Exec/Attach calls
  std::atomic<int> cancelled{0};  // Cancel calls
  uint16_t echo_port = 0;         // DialPort's target for any port but 1

  class Command : public cs::RemoteCommand {
   public:
    Command(FakeRuntime& rt, std::vector<std::string> argv, cs::CommandOutput out)
        : rt_(rt), argv_(std::move(argv)), out_(std::move(out)) {
      ++rt_.live;
      ++rt_.started;
    }
    ~Command() override { --rt_.live; }

    void Begin() {
      const std::string& what = argv_.empty() ? std::string() : argv_[0];
      if (what == "exit") {
        out_.write(1, "bye\n");
        out_.write(2, "err\n");
        out_.finish({.exit_code = std::stoi(argv_.at(1))});
      } else if (what == "fail") {
        out_.finish({.error = Unknown("it broke")});
      } else if (what == "spew") {
        Spew();
      }
    }
    void Stdin(std::string data, std::function<void()> done) override {
      out_.write(1, data);
      done();
    }
    void StdinEof() override { out_.finish({.exit_code = 0}); }
    void Resize(uint16_t w, uint16_t h) override {
      out_.write(1, fmt::format("resize {}x{}\n", w, h));
    }
    void Cancel() override {
      ++rt_.cancelled;
      *stop_ = true;
    }

   private:
    void Spew() {
      auto stop = stop_;
      auto out = out_;
      // From another thread, as container output comes.
      rt_.Spawn([stop, out, &halt = rt_.halt_] {
        std::string chunk(1024 * 1024, 's');
        for (int i = 0; i < 4096 && !*stop && !halt; ++i) {
          out.write(1, chunk);
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      });
    }
    FakeRuntime& rt_;
    std::vector<std::string> argv_;
    cs::CommandOutput out_;
    std::shared_ptr<std::atomic<bool>> stop_ = std::make_shared<std::atomic<bool>>(false);
  };

  std::unique_ptr<cs::RemoteCommand> Exec(const cs::ExecRequest& r,
                                          cs::CommandOutput out) override {
    auto c = std::make_unique<Command>(*this, r.cmd, std::move(out));
    c->Begin();
    return c;
  }
  std::unique_ptr<cs::RemoteCommand> Attach(const cs::AttachRequest&,
                                            cs::CommandOutput out) override {
    return std::make_unique<Command>(*this, std::vector<std::string>{"echo"}, std::move(out));
  }
  void DialPort(const std::string&, uint16_t port, std::function<void(Result<int>)> done) override {
    Spawn([target = echo_port, port, done = std::move(done)] {
      if (port == 1) return done(Unavailable("dial tcp4 127.0.0.1:1: connection refused"));
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(target);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        ::close(fd);
        return done(Unavailable("connect to the echo server"));
      }
      done(fd);
    });
  }
  // The threads that stand for container output and dials post to the io_context: they must be
  // done before it goes.
  void JoinThreads() {
    halt_ = true;
    std::lock_guard lock(threads_mu_);
    threads_.clear();
  }

 private:
  template <class Fn>
  void Spawn(Fn fn) {
    std::lock_guard lock(threads_mu_);
    threads_.emplace_back(std::move(fn));
  }

  std::atomic<bool> halt_{false};
  std::mutex threads_mu_;
  std::vector<std::jthread> threads_;
};

// A TCP echo server on loopback (the "pod" side of port-forward): one thread per connection.
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::jthread([this](std::stop_token st) {
      while (!st.stop_requested()) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        std::thread([c] {
          char buf[65536];
          while (true) {
            ssize_t n = ::read(c, buf, sizeof(buf));
            if (n <= 0) break;
            if (::write(c, buf, static_cast<size_t>(n)) != n) break;
          }
          ::close(c);
        }).detach();
      }
    });
  }
  ~EchoServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
  }
  uint16_t Port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::jthread thread_;
};

class StreamServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void TearDown() override { Stop(); }

  void Start(cs::ServerOptions options) {
    Stop();
    io_ = std::make_unique<asio::io_context>();
    work_.emplace(asio::make_work_guard(*io_));
    runtime_ = std::make_unique<FakeRuntime>();
    runtime_->echo_port = echo_.Port();
    auto s = cs::Server::Start(*io_, std::move(options), runtime_.get());
    ASSERT_TRUE(s) << s.error().ToString();
    server_ = std::move(*s);
    thread_ = std::thread([io = io_.get()] { io->run(); });
  }
  void Stop() {
    if (!io_) return;
    std::promise<void> done;
    asio::post(*io_, [&] {
      server_.reset();
      done.set_value();
    });
    done.get_future().wait();
    runtime_->JoinThreads();
    work_.reset();
    io_->stop();
    thread_.join();
    // Handlers still queued hold connections, and with them the runtime's commands: they go
    // with the io_context, before the runtime they point into.
    io_.reset();
    runtime_.reset();
  }

  std::string Exec(std::vector<std::string> cmd, bool in = true, bool tty = false) {
    auto u = server_->GetExecUrl({.container_id = "c",
                                  .cmd = std::move(cmd),
                                  .tty = tty,
                                  .stdin = in,
                                  .stdout = true,
                                  .stderr = !tty});
    EXPECT_TRUE(u) << u.error().ToString();
    return u ? *u : "";
  }
  std::string PortForward() {
    auto u = server_->GetPortForwardUrl({.pod_sandbox_id = "p"});
    EXPECT_TRUE(u);
    return u ? *u : "";
  }
  bool WaitFor(const std::function<bool()>& cond, Millis limit = Millis(10000)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (cond()) return true;
      std::this_thread::sleep_for(Millis(10));
    }
    return cond();
  }

  EchoServer echo_;
  std::unique_ptr<asio::io_context> io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<FakeRuntime> runtime_;
  std::unique_ptr<cs::Server> server_;
  std::thread thread_;
};

TEST(RequestCacheTest, TokensAreEightCharsSingleUseExpireAndAreBounded) {
  auto now = std::chrono::steady_clock::now();
  cs::RequestCache cache(3, std::chrono::seconds(60), [&] { return now; });
  auto a = cache.Insert(cs::ExecRequest{.container_id = "a"});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size(), 8u);
  EXPECT_EQ(
      a->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos)
      << *a;
  auto got = cache.Consume(*a);
  ASSERT_TRUE(got);
  EXPECT_EQ(std::get<cs::ExecRequest>(*got).container_id, "a");
  EXPECT_FALSE(cache.Consume(*a));  // used
  EXPECT_FALSE(cache.Consume("nope"));

  ASSERT_TRUE(cache.Insert(cs::AttachRequest{}));
  auto b = cache.Insert(cs::AttachRequest{});
  ASSERT_TRUE(cache.Insert(cs::PortForwardRequest{}));
  auto full = cache.Insert(cs::AttachRequest{});
  ASSERT_FALSE(full);
  EXPECT_TRUE(full.error().Is(Errc::kResourceExhausted));
  EXPECT_EQ(full.error().What(), "maximum number of in-flight requests exceeded");
  now += std::chrono::seconds(61);
  EXPECT_FALSE(cache.Consume(*b));                 // expired
  EXPECT_TRUE(cache.Insert(cs::AttachRequest{}));  // the expired ones made room
}

TEST(StatusJsonTest, AsKubeletWritesIt) {
  EXPECT_EQ(cs::StatusJson({}), R"({"metadata":{},"status":"Success"})");
  auto nz = nlohmann::json::parse(cs::StatusJson({.exit_code = 42}));
  EXPECT_EQ(nz["status"], "Failure");
  EXPECT_EQ(nz["reason"], "NonZeroExitCode");
  EXPECT_EQ(nz["details"]["causes"][0]["reason"], "ExitCode");
  EXPECT_EQ(nz["details"]["causes"][0]["message"], "42");
  auto ie = nlohmann::json::parse(cs::StatusJson({.error = Unknown("boom")}));
  EXPECT_EQ(ie["reason"], "InternalError");
  EXPECT_EQ(ie["code"], 500);
  EXPECT_EQ(ie["message"], "Internal error occurred: boom");
  EXPECT_EQ(cs::StatusText({}), "");
}

TEST_F(StreamServerTest, RefusalsSpeakHttp) {
  std::string url = Exec({"echo"});
  auto u = stream::ParseUrl(url);
  ASSERT_TRUE(u);
  // Unknown token, wrong kind of URL for a token, used token: 404.
  stream::HttpReply r;
  EXPECT_FALSE(stream::SpdyConn::Dial(url.substr(0, url.rfind('/')) + "/xxxxxxxx",
                                      {"v4.channel.k8s.io"}, &r));
  EXPECT_EQ(r.status, 404);
  std::string token = url.substr(url.rfind('/') + 1);
  EXPECT_FALSE(stream::SpdyConn::Dial(fmt::format("http://{}/attach/{}", u->HostPort(), token),
                                      {"v4.channel.k8s.io"}, &r));
  EXPECT_EQ(r.status, 404);
  EXPECT_FALSE(stream::SpdyConn::Dial(url, {"v4.channel.k8s.io"}, &r));  // consumed above
  EXPECT_EQ(r.status, 404);
  // No protocol the server knows: 403 with the accepted ones.
  EXPECT_FALSE(stream::SpdyConn::Dial(Exec({"echo"}), {"v9.channel.k8s.io"}, &r));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.HeaderValues("X-Accepted-Stream-Protocol-Versions").size(), 4u);
  // Garbage instead of a request: 400, and a method the routes do not take: 405.
  auto junk = stream::RawRequest(url, "GARBAGE\r\n\r\n");
  ASSERT_TRUE(junk) << junk.error().ToString();
  EXPECT_EQ(junk->status, 400);
  auto put = stream::RawRequest(url, "PUT /exec/x HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
  // A head that never ends is cut off.
  auto huge = stream::RawRequest(url, "GET /exec/x HTTP/1.1\r\nX: " + std::string(64 * 1024, 'x'));
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 431);
  EXPECT_EQ(runtime_->started, 0);
}

TEST_F(StreamServerTest, ExecOverSpdyAndWebSocket) {
  for (Transport t : {Transport::kSpdy, Transport::kWebSocket}) {
    SCOPED_TRACE(t == Transport::kSpdy ? "SPDY" : "WebSocket");
    std::vector<std::string> protocols;
    if (t == Transport::kWebSocket) protocols = {"v5.channel.k8s.io"};
    auto rc = stream::RemoteCommand::Start(Exec({"echo"}),
                                           {.transport = t, .protocols = protocols, .stdin = true});
    ASSERT_TRUE(rc) << rc.error().ToString();
    // The server answers pings on both transports.
    if (t == Transport::kSpdy) {
      auto pong = (*rc)->Spdy()->Ping();
      EXPECT_TRUE(pong) << pong.error().ToString();
    } else {
      EXPECT_TRUE((*rc)->WebSocket()->SendPing("hi"));
    }
    ASSERT_TRUE((*rc)->WriteStdin("ping\n"));
    ASSERT_TRUE((*rc)->ReadStdoutUntil("ping\n"));
    ASSERT_TRUE((*rc)->CloseStdin());
    auto out = (*rc)->Wait();
    ASSERT_TRUE(out) << out.error().ToString();
    EXPECT_TRUE(out->success) << out->error_data;
    EXPECT_EQ(out->exit_code, 0);

    auto bad = stream::RemoteCommand::Start(Exec({"exit", "9"}, false),
                                            {.transport = t, .protocols = protocols});
    ASSERT_TRUE(bad) << bad.error().ToString();
    auto b = (*bad)->Wait();
    ASSERT_TRUE(b) << b.error().ToString();
    EXPECT_EQ(b->exit_code, 9) << b->error_data;
    EXPECT_EQ(b->stdout_data, "bye\n");
    EXPECT_EQ(b->stderr_data, "err\n");

    auto broken = stream::RemoteCommand::Start(Exec({"fail"}, false),
                                               {.transport = t, .protocols = protocols});
    ASSERT_TRUE(broken) << broken.error().ToString();
    auto f = (*broken)->Wait();
    ASSERT_TRUE(f) << f.error().ToString();
    EXPECT_EQ(f->reason, "InternalError") << f->error_data;
  }
  EXPECT_TRUE(WaitFor([&] { return runtime_->live == 0; }));
  EXPECT_TRUE(WaitFor([&] { return server_->Connections() == 0; }));
}

TEST_F(StreamServerTest, TerminalResizeReachesTheCommand) {
  auto rc = stream::RemoteCommand::Start(
      Exec({"echo"}, true, true), {.stdin = true, .stdout = true, .stderr = false, .tty = true});
  ASSERT_TRUE(rc) << rc.error().ToString();
  ASSERT_TRUE((*rc)->Resize(120, 40));
  EXPECT_TRUE((*rc)->ReadStdoutUntil("resize 120x40\n"));
  ASSERT_TRUE((*rc)->Resize(0, 10));  // ignored
  ASSERT_TRUE((*rc)->Resize(7, 8));
  auto all = (*rc)->ReadStdoutUntil("resize 7x8\n");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->find("resize 0x10"), std::string::npos);
}

TEST_F(StreamServerTest, StreamsThatNeverComeTimeOut) {
  Start({.stream_creation_timeout = Millis(500)});
  // The upgrade, then only the error stream of the four expected.
  auto conn = stream::SpdyConn::Dial(Exec({"echo"}), {"v4.channel.k8s.io"});
  ASSERT_TRUE(conn) << conn.error().ToString();
  ASSERT_TRUE((*conn)->OpenStream({{"streamtype", "error"}}));
  EXPECT_TRUE((*conn)->WaitClosed(Millis(5000)));
  EXPECT_EQ(runtime_->started, 0);
  // A client that connects and never sends its request.
  auto u = stream::ParseUrl(Exec({"echo"}));
  auto fd = stream::ConnectTcp(u->host, u->port);
  ASSERT_TRUE(fd);
  auto rest = stream::ReadUntilClosed(fd->Get(), Millis(5000));
  EXPECT_TRUE(rest) << rest.error().ToString();
  // A port-forward pair that never completes gets its error text.
  auto pf = stream::SpdyConn::Dial(PortForward(), {"portforward.k8s.io"});
  ASSERT_TRUE(pf);
  auto err = (*pf)->OpenStream({{"streamtype", "error"}, {"port", "80"}, {"requestid", "0"}});
  ASSERT_TRUE(err);
  auto text = (*pf)->ReadAll(*err, Millis(5000));
  ASSERT_TRUE(text) << text.error().ToString();
  EXPECT_NE(text->find("timed out"), std::string::npos) << *text;
}

TEST_F(StreamServerTest, IdleSessionsAreClosedAndTheirCommandsCancelled) {
  Start({.idle_timeout = Millis(500)});
  auto rc = stream::RemoteCommand::Start(Exec({"hang"}), {.stdin = true});
  ASSERT_TRUE(rc) << rc.error().ToString();
  EXPECT_TRUE((*rc)->Spdy()->WaitClosed(Millis(5000)));
  EXPECT_TRUE(WaitFor([&] { return runtime_->cancelled == 1 && runtime_->live == 0; }));
}

TEST_F(StreamServerTest, ClientThatVanishesCancelsItsCommand) {
  for (Transport t : {Transport::kSpdy, Transport::kWebSocket}) {
    int before = runtime_->cancelled;
    auto rc = stream::RemoteCommand::Start(Exec({"hang"}), {.transport = t, .stdin = true});
    ASSERT_TRUE(rc) << rc.error().ToString();
    ASSERT_TRUE(WaitFor([&] { return runtime_->live == 1; }));
    (*rc)->Abort();
    EXPECT_TRUE(WaitFor([&] { return runtime_->cancelled == before + 1 && runtime_->live == 0; }));
  }
  EXPECT_TRUE(WaitFor([&] { return server_->Connections() == 0; }));
}

TEST_F(StreamServerTest, MalformedFramesFloodsAndBombsCloseOnlyTheirConnection) {
  auto good = stream::RemoteCommand::Start(Exec({"echo"}), {.stdin = true});
  ASSERT_TRUE(good) << good.error().ToString();
  {
    // A control frame of an unknown version.
    auto conn = stream::SpdyConn::Dial(Exec({"echo"}), {"v4.channel.k8s.io"});
    ASSERT_TRUE(conn);
    ASSERT_TRUE((*conn)->SendRaw(std::string("\x80\x07\x00\x01\x00\x00\x00\x00", 8)));
    EXPECT_TRUE((*conn)->WaitClosed(Millis(5000)));
    EXPECT_TRUE((*conn)->GoAwayReceived().has_value());
  }
  {
    // A header block that inflates far past the limit (a few KiB on the wire).
    auto conn = stream::SpdyConn::Dial(Exec({"echo"}), {"v4.channel.k8s.io"});
    ASSERT_TRUE(conn);
    stream::spdy::SynStream syn{.stream_id = 1};
    syn.headers.Add("streamtype", "error");
    syn.headers.Add("x-bomb", std::string(4 * 1024 * 1024, 'a'));
    (void)(*conn)->SendFrame(syn);
    EXPECT_TRUE((*conn)->WaitClosed(Millis(5000)));
  }
  {
    // More streams than allowed at once.
    auto conn = stream::SpdyConn::Dial(PortForward(), {"portforward.k8s.io"});
    ASSERT_TRUE(conn);
    for (int i = 0; i < 1100; ++i) {
      if (!(*conn)->StartStream(
              {{"streamtype", "error"}, {"port", "80"}, {"requestid", std::to_string(i)}})) {
        break;
      }
    }
    EXPECT_TRUE((*conn)->WaitClosed(Millis(5000)));
  }
  {
    // WebSocket: an unmasked client frame.
    auto ws = stream::WsConn::Dial(Exec({"echo"}), {"v4.channel.k8s.io"});
    ASSERT_TRUE(ws) << ws.error().ToString();
    ASSERT_TRUE((*ws)->SendRaw(std::string("\x82\x02\x00x", 4)));
    EXPECT_TRUE((*ws)->WaitClosed(Millis(5000)));
  }
  ASSERT_TRUE((*good)->WriteStdin("alive\n"));
  EXPECT_TRUE((*good)->ReadStdoutUntil("alive\n"));
  ASSERT_TRUE((*good)->CloseStdin());
  EXPECT_TRUE((*good)->Wait());
  EXPECT_TRUE(WaitFor([&] { return runtime_->live == 0; }));
}

TEST_F(StreamServerTest, ClientThatStopsReadingIsDropped) {
  auto rc = stream::RemoteCommand::Start(Exec({"spew"}, false), {});
  ASSERT_TRUE(rc) << rc.error().ToString();
  // The client reads nothing more; the server must give up on it rather than buffer gigabytes:
  // the command is cancelled...
  (*rc)->Spdy()->SetPaused(true);
  EXPECT_TRUE(WaitFor([&] { return runtime_->cancelled == 1; }));
  // ...and the connection closed: reading again, what it had sent ends in EOF.
  (*rc)->Spdy()->SetPaused(false);
  EXPECT_TRUE((*rc)->Spdy()->WaitClosed(Millis(30000)));
}

TEST_F(StreamServerTest, PortForwardManyConnectionsOverOneSession) {
  auto pf = stream::PortForwardSpdy::Dial(PortForward());
  ASSERT_TRUE(pf) << pf.error().ToString();
  constexpr int kConns = 20;
  std::vector<std::string> got(kConns), errs(kConns);
  std::vector<std::thread> threads;
  for (int i = 0; i < kConns; ++i) {
    threads.emplace_back([&, i] {
      auto s = (*pf)->Open(8000 + i);
      if (!s) {
        errs[i] = s.error().ToString();
        return;
      }
      std::string payload = fmt::format("conn {} ", i) + std::string(100 * 1024, 'a' + i % 26);
      if (auto w = s->Write(payload); !w) errs[i] = w.error().ToString();
      if (auto c = s->CloseWrite(); !c) errs[i] = c.error().ToString();
      auto all = s->ReadAll(Millis(30000));
      if (!all) {
        errs[i] = all.error().ToString();
        return;
      }
      got[i] = *all == payload ? "ok" : fmt::format("got {} bytes", all->size());
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kConns; ++i) {
    EXPECT_EQ(errs[i], "") << i;
    EXPECT_EQ(got[i], "ok") << i;
  }
  auto refused = (*pf)->Open(1);
  ASSERT_TRUE(refused);
  auto text = refused->ErrorText(Millis(10000));
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("error forwarding port 1 to pod p"), std::string::npos) << *text;

  auto ws = stream::PortForwardWs::Dial(PortForward() + "?port=9000&port=1");
  ASSERT_TRUE(ws) << ws.error().ToString();
  ASSERT_TRUE((*ws)->Write(0, "over websocket"));
  std::string echoed;
  while (echoed.size() < 14) {
    auto r = (*ws)->Read(0, Millis(10000));
    ASSERT_TRUE(r && r->has_value());
    echoed += **r;
  }
  EXPECT_EQ(echoed, "over websocket");
  auto err = (*ws)->ErrorText(1, Millis(10000));
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("connection refused"), std::string::npos) << *err;
}

TEST_F(StreamServerTest, StoppingTheServerCancelsLiveSessions) {
  auto a = stream::RemoteCommand::Start(Exec({"hang"}), {.stdin = true});
  auto b = stream::PortForwardSpdy::Dial(PortForward());
  ASSERT_TRUE(a && b);
  auto s = (*b)->Open(9001);
  ASSERT_TRUE(s);
  ASSERT_TRUE(WaitFor([&] { return runtime_->live == 1; }));
  Stop();
  EXPECT_TRUE((*a)->Spdy()->WaitClosed(Millis(5000)));
  EXPECT_TRUE((*b)->Conn().WaitClosed(Millis(5000)));
}

}  // namespace
}  // namespace berth::testing

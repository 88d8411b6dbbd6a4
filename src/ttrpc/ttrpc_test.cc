#include "ttrpc/ttrpc.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "ttrpc/ttrpc.pb.h"

namespace berth::ttrpc {
namespace {

using namespace std::chrono_literals;
using google::protobuf::StringValue;

constexpr std::string_view kSvc = "berth.test.Echo";

// The longest a test waits for something that should happen at once (a call arriving, an answer,
// a close): past it the test fails instead of hanging.
constexpr auto kWait = 30s;

template <typename T>
bool Ready(std::future<T>& f) {
  return f.wait_for(kWait) == std::future_status::ready;
}

// For waits on the fixture's io thread: if it is stuck, nothing after can run safely (the
// posted work refers to this frame), so the test fails and the process stops here.
template <typename T>
void ReadyOrAbort(std::future<T>& f, const char* what) {
  if (Ready(f)) return;
  ADD_FAILURE() << "the io thread did not " << what << " within " << kWait.count() << " s";
  std::fflush(stdout);
  std::abort();
}

// An io_context run by one thread for the test's lifetime, plus a temp dir for sockets.
class TtrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("berth-ttrpc-test-");
    ASSERT_TRUE(dir) << dir.error().ToString();
    dir_.emplace(std::move(*dir));
    socket_ = dir_->Path() + "/t.sock";
    server_ = std::make_unique<Server>(io_);
  }
  void TearDown() override {
    // Destroy the server on the io thread, then stop.
    std::promise<void> done;
    asio::post(io_, [&] {
      server_.reset();
      done.set_value();
    });
    auto f = done.get_future();
    ReadyOrAbort(f, "destroy the server");
    work_.reset();
    io_.stop();
    thread_.join();
  }

  void Serve() {
    auto fd = Server::Listen(socket_);
    ASSERT_TRUE(fd) << fd.error().ToString();
    ASSERT_TRUE(server_->Serve(std::move(*fd)));
  }
  std::shared_ptr<Client> Dial() {
    auto c = Client::Connect(io_, socket_, 5s);
    EXPECT_TRUE(c) << c.error().ToString();
    return c ? *c : nullptr;
  }
  // Runs fn on the io thread and waits for it.
  void OnIo(std::function<void()> fn) {
    std::promise<void> done;
    asio::post(io_, [&] {
      fn();
      done.set_value();
    });
    auto f = done.get_future();
    ReadyOrAbort(f, "run the posted function");
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  std::thread thread_{[this] { io_.run(); }};
  std::optional<fs::TempDir> dir_;
  std::string socket_;
  std::unique_ptr<Server> server_;
};

// A raw connection for speaking the wire by hand.
class RawConn {
 public:
  explicit RawConn(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    // A read that gets nothing within kWait fails (ReadFull false) instead of hanging.
    timeval tv{.tv_sec = kWait.count(), .tv_usec = 0};
    ok_ = ok_ && ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0;
  }
  ~RawConn() { ::close(fd_); }
  bool Ok() const { return ok_; }
  bool Write(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n <= 0) {
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool ReadFull(void* buf, size_t n) {
    auto* p = static_cast<char*>(buf);
    while (n > 0) {
      ssize_t r = ::read(fd_, p, n);
      if (r <= 0) {
        return false;
      }
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  void SendFrame(uint32_t stream, MessageType type, const std::string& body, uint32_t length) {
    uint8_t h[kHeaderLength];
    EncodeHeader({.length = length, .stream_id = stream, .type = type}, h);
    ASSERT_TRUE(Write(std::string_view(reinterpret_cast<char*>(h), kHeaderLength)));
    ASSERT_TRUE(Write(body));
  }
  void SendRequest(uint32_t stream, std::string_view service, std::string_view method) {
    wire::Request req;
    req.set_service(std::string(service));
    req.set_method(std::string(method));
    std::string body = req.SerializeAsString();
    SendFrame(stream, MessageType::kRequest, body, static_cast<uint32_t>(body.size()));
  }
  // Reads one frame; returns its header and decoded response.
  std::pair<FrameHeader, wire::Response> ReadResponse() {
    uint8_t h[kHeaderLength];
    EXPECT_TRUE(ReadFull(h, kHeaderLength));
    FrameHeader header = DecodeHeader(h);
    std::string body(header.length, '\0');
    EXPECT_TRUE(ReadFull(body.data(), body.size()));
    wire::Response resp;
    EXPECT_TRUE(resp.ParseFromString(body));
    return {header, resp};
  }
  int Fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

TEST(Codec, HeaderRoundTripIsBigEndian) {
  uint8_t buf[kHeaderLength];
  EncodeHeader({.length = 0x01020304,
                .stream_id = 0x0a0b0c0d,
                .type = MessageType::kResponse,
                .flags = 0x05},
               buf);
  const uint8_t want[kHeaderLength] = {1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 2, 5};
  EXPECT_EQ(0, std::memcmp(buf, want, kHeaderLength));
  FrameHeader h = DecodeHeader(buf);
  EXPECT_EQ(h.length, 0x01020304u);
  EXPECT_EQ(h.stream_id, 0x0a0b0c0du);
  EXPECT_EQ(h.type, MessageType::kResponse);
  EXPECT_EQ(h.flags, 5);
}

TEST(Codec, RequestFieldNumbersMatchTheWire) {
  // service=1 "s", method=2 "m", payload=3 "p", timeout_nano=4 5, metadata=5 {k,v}
  wire::Request req;
  req.set_service("s");
  req.set_method("m");
  req.set_payload("p");
  req.set_timeout_nano(5);
  auto* kv = req.add_metadata();
  kv->set_key("k");
  kv->set_value("v");
  std::string want =
      std::string("\x0a\x01s\x12\x01m\x1a\x01p\x20\x05\x2a\x06\x0a\x01k\x12\x01v", 19);
  EXPECT_EQ(req.SerializeAsString(), want);
}

TEST(Codec, MetadataLowercasesKeys) {
  Metadata md;
  md.Add("Containerd-Namespace-TTRPC", "default");
  md.Add("x", "1");
  md.Add("X", "2");
  EXPECT_EQ(md.Get(kNamespaceKey), "default");
  EXPECT_EQ(md.Get("X"), "1");
  EXPECT_EQ(md.Entries().size(), 3u);
  EXPECT_EQ(md.Entries()[0].first, "containerd-namespace-ttrpc");
  EXPECT_FALSE(md.Get("missing"));
}

TEST_F(TtrpcTest, UnaryRoundTripWithMetadata) {
  server_->RegisterUnary<StringValue, StringValue>(
      std::string(kSvc), "Echo",
      [](const CallContext& ctx, const StringValue& req) -> Result<StringValue> {
        StringValue resp;
        resp.set_value(req.value() + "/" + ctx.metadata.Get(kNamespaceKey).value_or("-") + "/" +
                       ctx.service + "/" + ctx.method);
        return resp;
      });
  Serve();
  auto c = Dial();
  ASSERT_TRUE(c);
  Metadata md;
  md.Add(kNamespaceKey, "ns1");
  StringValue req;
  req.set_value("hi");
  auto resp = c->Call<StringValue>(kSvc, "Echo", req, md, 5s);
  ASSERT_TRUE(resp) << resp.error().ToString();
  EXPECT_EQ(resp->value(), "hi/ns1/berth.test.Echo/Echo");
  // Empty payload both ways.
  server_->Register(std::string(kSvc), "Empty", [](CallContext, std::string payload, Responder r) {
    EXPECT_TRUE(payload.empty());
    r.Reply("");
  });
  auto empty = c->Call(kSvc, "Empty", "", {}, 0ms);
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_EQ(*empty, "");
}

TEST_F(TtrpcTest, ErrorsMapToErrdefsClasses) {
  server_->RegisterUnary<StringValue, StringValue>(
      std::string(kSvc), "Fail",
      [](const CallContext&, const StringValue& req) -> Result<StringValue> {
        return NotFound("container \"" + req.value() + "\"");
      });
  Serve();
  auto c = Dial();
  ASSERT_TRUE(c);
  StringValue req;
  req.set_value("web");
  auto r = c->Call<StringValue>(kSvc, "Fail", req, {}, 5s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().Code(), Errc::kNotFound);
  EXPECT_EQ(r.error().What(), "container \"web\"");

  auto svc = c->Call("no.such.Service", "X", "", {}, 5s);
  ASSERT_FALSE(svc);
  EXPECT_EQ(svc.error().Code(), Errc::kNotImplemented);
  EXPECT_EQ(svc.error().What(), "service no.such.Service");
  auto method = c->Call(kSvc, "Nope", "", {}, 5s);
  ASSERT_FALSE(method);
  EXPECT_EQ(method.error().Code(), Errc::kNotImplemented);
  EXPECT_EQ(method.error().What(), "method Nope");
}

TEST_F(TtrpcTest, ConcurrentCallsAnsweredOutOfOrder) {
  // Holds every Responder until all N calls arrived, then answers them in reverse order from
  // another thread.
  constexpr int kCalls = 16;
  std::mutex mu;
  std::vector<std::pair<std::string, Responder>> held;
  std::condition_variable cv;
  server_->Register(std::string(kSvc), "Hold", [&](CallContext, std::string payload, Responder r) {
    std::lock_guard lock(mu);
    held.emplace_back(std::move(payload), std::move(r));
    cv.notify_all();
  });
  Serve();
  auto c = Dial();
  ASSERT_TRUE(c);
  std::vector<std::future<Result<std::string>>> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.push_back(std::async(std::launch::async, [&c, i] {
      return c->Call(kSvc, "Hold", "call-" + std::to_string(i), {}, 0ms);
    }));
  }
  std::thread answerer([&] {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return held.size() == kCalls; });
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      it->second.Reply("re:" + it->first);
    }
  });
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(Ready(calls[i])) << "call-" << i << " got no answer within " << kWait.count()
                                 << " s";
    auto r = calls[i].get();
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(*r, "re:call-" + std::to_string(i));
  }
  answerer.join();
}

TEST_F(TtrpcTest, DroppedResponderRepliesUnknown) {
  server_->Register(std::string(kSvc), "Drop", [](CallContext, std::string, Responder) {});
  Serve();
  auto c = Dial();
  ASSERT_TRUE(c);
  auto r = c->Call(kSvc, "Drop", "", {}, 5s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().Code(), Errc::kUnknown);
  EXPECT_EQ(r.error().What(), "no response");
}

TEST_F(TtrpcTest, DeadlinePropagatesAndClientTimesOut) {
  std::optional<std::chrono::steady_clock::time_point> seen;
  std::optional<Responder> parked;
  server_->Register(std::string(kSvc), "Slow", [&](CallContext ctx, std::string, Responder r) {
    seen = ctx.deadline;
    parked.emplace(std::move(r));  // never answered in time
  });
  server_->Register(
      std::string(kSvc), "NoDeadline",
      [&](CallContext ctx, std::string, Responder r) { r.Reply(ctx.deadline ? "yes" : "no"); });
  Serve();
  auto c = Dial();
  ASSERT_TRUE(c);
  auto before = std::chrono::steady_clock::now();
  auto r = c->Call(kSvc, "Slow", "", {}, 200ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().Code(), Errc::kDeadlineExceeded);
  EXPECT_EQ(r.error().ToString(), "ttrpc: /berth.test.Echo/Slow: context deadline exceeded");
  OnIo([&] {
    ASSERT_TRUE(seen.has_value());
    EXPECT_GT(*seen, before);
    EXPECT_LE(*seen, std::chrono::steady_clock::now() + 200ms);
    parked->Reply("late");  // dropped by the client: unknown stream
    parked.reset();
  });
  auto none = c->Call(kSvc, "NoDeadline", "", {}, 0ms);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, "no");
}

TEST_F(TtrpcTest, OversizeRequestIsRefusedOnItsStream) {
  server_->Register(std::string(kSvc), "Echo",
                    [](CallContext, std::string p, Responder r) { r.Reply(std::move(p)); });
  Serve();
  // The client refuses to send more than 4 MiB itself.
  auto c = Dial();
  ASSERT_TRUE(c);
  auto big = c->Call(kSvc, "Echo", std::string(kMaxMessageLength, 'x'), {}, 5s);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().Code(), Errc::kResourceExhausted);
  // A raw peer that sends one anyway gets ResourceExhausted on that stream, and the connection
  // keeps working.
  RawConn raw(socket_);
  ASSERT_TRUE(raw.Ok());
  uint32_t len = kMaxMessageLength + 1;
  raw.SendFrame(7, MessageType::kRequest, std::string(len, 'y'), len);
  auto [h, resp] = raw.ReadResponse();
  EXPECT_EQ(h.stream_id, 7u);
  EXPECT_EQ(h.type, MessageType::kResponse);
  EXPECT_EQ(resp.status().code(), 8);
  EXPECT_EQ(resp.status().message(),
            "message length 4194305 exceed maximum message size of 4194304");
  raw.SendRequest(9, kSvc, "Echo");
  auto [h2, resp2] = raw.ReadResponse();
  EXPECT_EQ(h2.stream_id, 9u);
  EXPECT_EQ(resp2.status().code(), 0);
  // Just under the limit still works through the client.
  auto ok = c->Call(kSvc, "Echo", std::string(kMaxMessageLength - 64, 'z'), {}, 5s);
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->size(), kMaxMessageLength - 64);
}

TEST_F(TtrpcTest, ProtocolViolations) {
  server_->Register(std::string(kSvc), "Echo",
                    [](CallContext, std::string p, Responder r) { r.Reply(std::move(p)); });
  Serve();
  RawConn raw(socket_);
  ASSERT_TRUE(raw.Ok());
  // Even stream id.
  raw.SendRequest(2, kSvc, "Echo");
  auto [h, resp] = raw.ReadResponse();
  EXPECT_EQ(h.stream_id, 2u);
  EXPECT_EQ(resp.status().code(), 3);
  EXPECT_EQ(resp.status().message(), "StreamID must be odd for client initiated streams");
  // Garbage request body.
  raw.SendFrame(3, MessageType::kRequest, "\xff\xff\xff", 3);
  auto [h2, resp2] = raw.ReadResponse();
  EXPECT_EQ(h2.stream_id, 3u);
  EXPECT_EQ(resp2.status().code(), 3);
  EXPECT_TRUE(resp2.status().message().starts_with("unmarshal request error"));
  // Non-request frames are ignored; the next request is answered.
  raw.SendFrame(5, MessageType::kData, "abc", 3);
  raw.SendFrame(5, MessageType::kResponse, "", 0);
  raw.SendRequest(7, kSvc, "Echo");
  auto [h3, resp3] = raw.ReadResponse();
  EXPECT_EQ(h3.stream_id, 7u);
  EXPECT_EQ(resp3.status().code(), 0);
}

TEST_F(TtrpcTest, ConnectionLossFailsPendingAndRunsOnClose) {
  std::optional<Responder> parked;
  std::promise<void> arrived;
  server_->Register(std::string(kSvc), "Park", [&](CallContext, std::string, Responder r) {
    parked.emplace(std::move(r));
    arrived.set_value();
  });
  Serve();
  auto c = Dial();
  ASSERT_TRUE(c);
  std::promise<void> closed;
  c->OnClose([&] { closed.set_value(); });
  auto call = std::async(std::launch::async, [&] { return c->Call(kSvc, "Park", "", {}, 0ms); });
  auto arrived_f = arrived.get_future();
  ASSERT_TRUE(Ready(arrived_f)) << "the Park call did not reach the server";
  // Kill the server side: every connection goes away.
  OnIo([&] {
    server_.reset();
    parked.reset();  // its answer has no connection to go to
  });
  ASSERT_TRUE(Ready(call)) << "the pending call did not fail when the connection was lost";
  auto r = call.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().Code(), Errc::kUnavailable);
  EXPECT_EQ(r.error().What(), "ttrpc: closed");
  auto closed_f = closed.get_future();
  ASSERT_TRUE(Ready(closed_f)) << "OnClose did not run after the connection was lost";
  EXPECT_TRUE(c->Closed());
  // Calls after the loss fail at once; OnClose set now runs at once.
  auto after = c->Call(kSvc, "Park", "", {}, 0ms);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().What(), "ttrpc: closed");
  std::promise<void> again;
  c->OnClose([&] { again.set_value(); });
  auto again_f = again.get_future();
  ASSERT_TRUE(Ready(again_f)) << "OnClose set on a closed client did not run";
}

TEST_F(TtrpcTest, CloseFailsPendingWithoutOnClose) {
  std::promise<void> arrived;
  std::optional<Responder> parked;
  server_->Register(std::string(kSvc), "Park", [&](CallContext, std::string, Responder r) {
    parked.emplace(std::move(r));
    arrived.set_value();
  });
  Serve();
  auto c = Dial();
  ASSERT_TRUE(c);
  bool on_close_ran = false;
  c->OnClose([&] { on_close_ran = true; });
  auto call = std::async(std::launch::async, [&] { return c->Call(kSvc, "Park", "", {}, 0ms); });
  auto arrived_f = arrived.get_future();
  ASSERT_TRUE(Ready(arrived_f)) << "the Park call did not reach the server";
  c->Close();
  ASSERT_TRUE(Ready(call)) << "the pending call did not fail on Close()";
  auto r = call.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().What(), "ttrpc: closed");
  OnIo([&] {
    EXPECT_FALSE(on_close_ran);
    parked.reset();  // answering on a closed connection is dropped
  });
}

TEST_F(TtrpcTest, ShutdownWaitsForInFlightCalls) {
  std::promise<void> arrived;
  std::optional<Responder> parked;
  server_->Register(std::string(kSvc), "Park", [&](CallContext, std::string, Responder r) {
    parked.emplace(std::move(r));
    arrived.set_value();
  });
  server_->Register(std::string(kSvc), "Echo",
                    [](CallContext, std::string p, Responder r) { r.Reply(std::move(p)); });
  Serve();
  auto busy = Dial();
  auto idle = Dial();
  ASSERT_TRUE(busy && idle);
  ASSERT_TRUE(idle->Call(kSvc, "Echo", "x", {}, 5s));  // make sure it is accepted
  std::promise<void> idle_closed;
  idle->OnClose([&] { idle_closed.set_value(); });
  auto call = std::async(std::launch::async, [&] { return busy->Call(kSvc, "Park", "", {}, 0ms); });
  auto arrived_f = arrived.get_future();
  ASSERT_TRUE(Ready(arrived_f)) << "the Park call did not reach the server";
  std::promise<void> all_closed;
  server_->Shutdown([&] { all_closed.set_value(); });
  // The idle connection closes at once; the busy one only after its answer went out.
  auto idle_closed_f = idle_closed.get_future();
  ASSERT_TRUE(Ready(idle_closed_f)) << "Shutdown did not close the idle connection";
  EXPECT_FALSE(busy->Closed());
  OnIo([&] { parked->Reply("done"); });
  ASSERT_TRUE(Ready(call)) << "the in-flight call got no answer during Shutdown";
  auto r = call.get();
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(*r, "done");
  auto all_closed_f = all_closed.get_future();
  ASSERT_TRUE(Ready(all_closed_f)) << "Shutdown's callback did not run after the last answer";
  // No new connections.
  auto late = Client::Connect(io_, socket_, 0ms);
  if (late) {
    EXPECT_FALSE((*late)->Call(kSvc, "Echo", "x", {}, 5s));
  }
}

TEST_F(TtrpcTest, ListenReplacesStaleSocketButNotLiveOne) {
  Serve();
  auto again = Server::Listen(socket_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().Code(), Errc::kAlreadyExists);
  // A stale socket file (bound, nobody listening) is replaced.
  std::string stale = dir_->Path() + "/sub/stale.sock";
  {
    auto fd = Server::Listen(stale);
    ASSERT_TRUE(fd) << fd.error().ToString();
  }
  ASSERT_TRUE(std::filesystem::exists(stale));
  auto fd = Server::Listen(stale);
  ASSERT_TRUE(fd) << fd.error().ToString();
  EXPECT_EQ(std::filesystem::status(stale).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(TtrpcTest, ConnectRetriesUntilTheSocketAppearsOrTimesOut) {
  auto missing = Client::Connect(io_, dir_->Path() + "/never.sock", 50ms);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().Code(), Errc::kNotFound);
  auto late = std::async(std::launch::async, [&] { return Client::Connect(io_, socket_, 30s); });
  // Usually lets the dial start before the socket exists (the test holds either way).
  std::this_thread::sleep_for(50ms);
  server_->Register(std::string(kSvc), "Echo",
                    [](CallContext, std::string p, Responder r) { r.Reply(std::move(p)); });
  Serve();
  ASSERT_EQ(late.wait_for(kWait + 30s), std::future_status::ready)
      << "Connect(..., 30s) did not return";
  auto c = late.get();
  ASSERT_TRUE(c) << c.error().ToString();
  auto r = (*c)->Call(kSvc, "Echo", "x", {}, 5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "x");
}

TEST_F(TtrpcTest, AbstractSocketAddress) {
  std::string name = "@berth-ttrpc-test-" + std::to_string(::getpid());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data() + 1, name.size() - 1);
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(fd, 8), 0);
  server_->Register(std::string(kSvc), "Echo",
                    [](CallContext, std::string p, Responder r) { r.Reply(std::move(p)); });
  ASSERT_TRUE(server_->Serve(fs::UniqueFd(fd)));
  auto c = Client::Connect(io_, name, 5s);
  ASSERT_TRUE(c) << c.error().ToString();
  auto r = (*c)->Call(kSvc, "Echo", "abs", {}, 5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "abs");
}

TEST_F(TtrpcTest, PeersWithOtherCredentialsAreRefused) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root to connect as another uid";
  }
  server_->Register(std::string(kSvc), "Echo",
                    [](CallContext, std::string p, Responder r) { r.Reply(std::move(p)); });
  Serve();
  ASSERT_EQ(::chmod(socket_.c_str(), 0666), 0);  // let uid 65534 reach the socket at all
  ASSERT_EQ(::chmod(dir_->Path().c_str(), 0755), 0);
  // Request frame for Echo on stream 1, built before forking (the child only makes syscalls).
  wire::Request req;
  req.set_service(std::string(kSvc));
  req.set_method("Echo");
  std::string body = req.SerializeAsString();
  std::string frame(kHeaderLength, '\0');
  EncodeHeader({.length = static_cast<uint32_t>(body.size()), .stream_id = 1},
               reinterpret_cast<uint8_t*>(frame.data()));
  frame += body;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_.c_str(), sizeof(addr.sun_path) - 1);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(2);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) ::_exit(3);
    // The server may already have closed the refused connection: no SIGPIPE for the child.
    (void)!::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
    ::alarm(30);  // neither answered nor closed: SIGALRM kills the child, the test fails
    char c;
    ssize_t n = ::read(fd, &c, 1);
    ::_exit(n <= 0 ? 0 : 1);  // closed without an answer: refused
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status)
                                 << " (SIGALRM: no answer and no close within 30 s)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1 = answered, 2 = setuid failed, 3 = connect failed";
  // Our own uid is served.
  auto c = Dial();
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->Call(kSvc, "Echo", "me", {}, 5s));
}

}  // namespace
}  // namespace berth::ttrpc

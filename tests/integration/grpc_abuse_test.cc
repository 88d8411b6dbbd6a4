// Hostile HTTP/2 clients against berthd's memory (issue 13, point 1): a client that opens streams
// and resets each at once (CVE-2023-44487, "rapid reset") and one that opens streams past any
// limit. berthd must stay under 100 MB while it happens, keep answering other clients, and come
// back near its idle size afterwards. The attacker is our own raw HTTP/2 writer (frames by hand,
// HPACK literals), as fast as the socket takes it. And requests the services must refuse by their
// own validation, which gRPC's defaults would otherwise cut short: metadata past 8 KiB (point 4)
// and strings that are not UTF-8 (point 3).
#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cri/api/api.grpc.pb.h"
#include "harness.h"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr long kLimitKb = 100 * 1024;  // the bound: below 100 MB under attack
// Under ASan freed memory sits in its quarantine (256 MB) and shadow memory adds to VmRSS: the
// memory bounds mean nothing there, the rest of each test still holds.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kMemoryMeasurable = false;
#else
constexpr bool kMemoryMeasurable = true;
#endif

long RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Samples a process's VmRSS every 50 ms on its own thread; Stop() returns the largest.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid)
      : thread_([this, pid] {
          while (!stop_) {
            max_ = std::max(max_.load(), RssKb(pid));
            std::this_thread::sleep_for(50ms);
          }
        }) {}
  ~RssSampler() { Stop(); }
  long Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return max_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<long> max_{0};
  std::thread thread_;
};

void AppendFrame(std::string& out, uint8_t type, uint8_t flags, uint32_t stream,
                 std::string_view payload) {
  auto n = static_cast<uint32_t>(payload.size());
  out += {static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n),
          static_cast<char>(type), static_cast<char>(flags)};
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>(stream >> shift);
  out += payload;
}

// An HPACK literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2).
void AppendLiteral(std::string& out, std::string_view name, std::string_view value) {
  auto length = [&out](size_t n) {  // 7-bit prefix integer
    if (n < 127) {
      out += static_cast<char>(n);
      return;
    }
    out += static_cast<char>(127);
    for (n -= 127; n >= 128; n >>= 7) out += static_cast<char>((n & 0x7f) | 0x80);
    out += static_cast<char>(n);
  };
  out += '\0';
  length(name.size());
  out += name;
  length(value.size());
  out += value;
}

struct Attack {
  std::string method = "/containerd.services.version.v1.Version/Version";
  bool data = false;  // DATA with one empty gRPC message after the HEADERS
  bool reset = true;  // RST_STREAM(CANCEL) right after
  int streams = 20000;
};

struct AttackResult {
  int sent = 0;         // streams whose frames the socket took
  bool closed = false;  // the server closed the connection
  bool goaway = false;  // ... after a GOAWAY
};

// One connection: preface, SETTINGS, then `streams` times HEADERS [+ DATA] [+ RST_STREAM] as fast
// as the socket takes them, until all are sent, the server hangs up, or `budget` passes. The
// server's SETTINGS and PINGs are acknowledged, as a real client would.
AttackResult RunAttack(const std::string& socket_path, const Attack& attack,
                       std::chrono::milliseconds budget) {
  AttackResult result;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ADD_FAILURE() << "connect " << socket_path << ": " << std::strerror(errno);
    ::close(fd);
    return result;
  }
  std::string block;
  AppendLiteral(block, ":method", "POST");
  AppendLiteral(block, ":scheme", "http");
  AppendLiteral(block, ":path", attack.method);
  AppendLiteral(block, ":authority", "localhost");
  AppendLiteral(block, "content-type", "application/grpc");
  AppendLiteral(block, "te", "trailers");
  AppendLiteral(block, "containerd-namespace", "default");

  size_t per_stream = 9 + block.size() + (attack.data ? 9 + 5 : 0) + (attack.reset ? 9 + 4 : 0);
  std::string out = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  AppendFrame(out, 4, 0, 0, "");
  size_t control = out.size();  // bytes of frames that are not the streams'
  size_t sent_bytes = 0;
  std::string in;
  uint32_t stream = 1;
  int queued = 0;
  auto deadline = Clock::now() + budget;
  while (Clock::now() < deadline && !result.closed) {
    // Keep ~64 KiB of frames ready.
    while (out.size() < 64 * 1024 && queued < attack.streams) {
      AppendFrame(out, 1, 0x4, stream, block);  // END_HEADERS; the request stays open
      if (attack.data) AppendFrame(out, 0, attack.reset ? 0 : 1, stream, std::string(5, '\0'));
      if (attack.reset) AppendFrame(out, 3, 0, stream, std::string("\0\0\0\x08", 4));
      stream += 2;
      queued++;
    }
    pollfd p{.fd = fd, .events = static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT))};
    if (::poll(&p, 1, 20) < 0) break;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        result.closed = true;
      } else if (n > 0) {
        in.append(buf, static_cast<size_t>(n));
        while (in.size() >= 9) {  // acknowledge SETTINGS and PING; note GOAWAY
          size_t len = (static_cast<uint8_t>(in[0]) << 16) | (static_cast<uint8_t>(in[1]) << 8) |
                       static_cast<uint8_t>(in[2]);
          if (in.size() < 9 + len) break;
          auto type = static_cast<uint8_t>(in[3]);
          bool ack = (in[4] & 1) != 0;
          size_t before = out.size();
          if (type == 4 && !ack) AppendFrame(out, 4, 1, 0, "");
          if (type == 6 && !ack) AppendFrame(out, 6, 1, 0, in.substr(9, len));
          control += out.size() - before;
          if (type == 7) result.goaway = true;
          in.erase(0, 9 + len);
        }
      }
    }
    if (!out.empty() && !result.closed) {
      ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out.erase(0, static_cast<size_t>(n));
        sent_bytes += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        result.closed = true;
      }
    }
    if (out.empty() && queued >= attack.streams) break;
  }
  result.sent = static_cast<int>(sent_bytes > control ? (sent_bytes - control) / per_stream : 0);
  ::close(fd);
  return result;
}

class GrpcAbuseIT : public ::testing::Test {
 protected:
  void SetUp() override {
    d_ = Daemon::Create();
    ASSERT_TRUE(d_ && d_->Start()) << (d_ ? d_->Log() : "");
    channel_ = grpc::CreateChannel("unix:" + d_->Socket(), grpc::InsecureChannelCredentials());
    ASSERT_TRUE(VersionCall(5s)) << "warm-up";
    std::this_thread::sleep_for(500ms);
    idle_kb_ = RssKb(d_->Pid());
    ASSERT_GT(idle_kb_, 0);
  }

  // A Version call on the test's own connection; returns its latency if it succeeded in time.
  std::optional<std::chrono::microseconds> VersionCall(std::chrono::milliseconds timeout) {
    auto stub = containerd::services::version::v1::Version::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    google::protobuf::Empty req;
    containerd::services::version::v1::VersionResponse resp;
    auto start = Clock::now();
    grpc::Status st = stub->Version(&ctx, req, &resp);
    if (!st.ok()) {
      ADD_FAILURE() << "Version: " << st.error_message();
      return std::nullopt;
    }
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  }

  // Runs `attacks` (one connection each) for up to `budget`, making Version calls on another
  // connection meanwhile. Expects berthd under the limit throughout and every call answered.
  std::vector<AttackResult> UnderAttack(const std::vector<Attack>& attacks,
                                        std::chrono::milliseconds budget) {
    RssSampler rss(d_->Pid());
    std::vector<AttackResult> results(attacks.size());
    std::vector<std::thread> attackers;
    for (size_t i = 0; i < attacks.size(); i++) {
      attackers.emplace_back([&, i] { results[i] = RunAttack(d_->Socket(), attacks[i], budget); });
    }
    std::chrono::microseconds slowest{0};
    int calls = 0;
    auto end = Clock::now() + budget;
    while (Clock::now() < end) {
      std::this_thread::sleep_for(200ms);
      auto latency = VersionCall(5s);
      if (!latency) break;
      slowest = std::max(slowest, *latency);
      calls++;
    }
    for (auto& t : attackers) t.join();
    long peak = rss.Stop();
    std::printf("idle %ld kB, peak under attack %ld kB; %d Version calls, slowest %lld us\n",
                idle_kb_, peak, calls, static_cast<long long>(slowest.count()));
    if (kMemoryMeasurable) {
      EXPECT_LT(peak, kLimitKb) << "berthd's VmRSS under attack";
    }
    EXPECT_GT(calls, 0);
    return results;
  }

  // Waits (up to 10 s) for berthd to come back within `slack_kb` of its idle VmRSS.
  void ExpectBackNearIdle(long slack_kb = 16 * 1024) {
    long rss = 0;
    auto deadline = Clock::now() + 10s;
    auto start = Clock::now();
    while (Clock::now() < deadline) {
      rss = RssKb(d_->Pid());
      if (rss <= idle_kb_ + slack_kb || !kMemoryMeasurable) break;
      std::this_thread::sleep_for(250ms);
    }
    std::printf(
        "after the attack: %ld kB (idle %ld kB) within %lld ms\n", rss, idle_kb_,
        static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()));
    if (kMemoryMeasurable) {
      EXPECT_LE(rss, idle_kb_ + slack_kb) << "berthd keeps what the attack made it allocate";
    }
    EXPECT_TRUE(VersionCall(5s)) << "still answering";
  }

  std::unique_ptr<Daemon> d_;
  std::shared_ptr<grpc::Channel> channel_;
  long idle_kb_ = 0;
};

// Unguarded (gRPC 1.51 alone), one HEADERS+RST connection took berthd from 30 MB to 430 MB in two
// seconds, and these four to 1.5 GB within this test's six, all of it kept after they left.
TEST_F(GrpcAbuseIT, RapidResetKeepsMemoryBoundedAndOtherClientsAnswered) {
  std::vector<Attack> attacks = {
      {},              // HEADERS + RST_STREAM
      {.data = true},  // HEADERS + DATA + RST_STREAM
      {.method = "/containerd.services.events.v1.Events/Subscribe", .data = true},
      {.method = "/containerd.services.content.v1.Content/Read"},
  };
  auto results = UnderAttack(attacks, 6s);
  int sent = 0;
  for (const auto& r : results) sent += r.sent;
  std::printf("streams sent and reset: %d\n", sent);
  EXPECT_GT(sent, 1000) << "the attack did not get going";
  ExpectBackNearIdle();
}

// A client that opens streams (HEADERS, no message) as fast as it can, ignoring
// SETTINGS_MAX_CONCURRENT_STREAMS: disconnected with GOAWAY. Unguarded: 450 MB, still connected.
TEST_F(GrpcAbuseIT, StreamFloodIsDisconnected) {
  auto results = UnderAttack({{.reset = false}}, 4s);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].closed) << "sent " << results[0].sent << " streams and still connected";
  EXPECT_TRUE(results[0].goaway);
  ExpectBackNearIdle();
}

// Request metadata far past gRPC's 8 KiB default (issue 13, point 4): accepted up to containerd's
// 16 MiB, so the services' own validation answers. A 100,000-byte namespace is InvalidArgument
// naming the limit, from ctr (Go's HTTP/2 client honours the advertised header list size) and from
// the C++ client alike; a large header the services do not read is no obstacle.
TEST_F(GrpcAbuseIT, LargeMetadataMeetsTheServicesOwnValidation) {
  const std::string huge_ns(100000, 'a');
  auto r = d_->Ctr({"images", "ls"}, huge_ns);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("greater than maximum length (76 characters)"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("header list size"), std::string::npos) << r.err;

  auto images = containerd::services::images::v1::Images::NewStub(channel_);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ctx.AddMetadata("containerd-namespace", huge_ns);
    containerd::services::images::v1::ListImagesRequest req;
    containerd::services::images::v1::ListImagesResponse resp;
    grpc::Status st = images->List(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("greater than maximum length"), std::string::npos)
        << st.error_message().substr(0, 200);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ctx.AddMetadata("containerd-namespace", "default");
    ctx.AddMetadata("x-padding", std::string(1 << 20, 'p'));
    containerd::services::images::v1::ListImagesRequest req;
    containerd::services::images::v1::ListImagesResponse resp;
    grpc::Status st = images->List(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_TRUE(VersionCall(5s)) << "still answering";
}

// A request whose string field is not valid UTF-8 (issue 13, point 3): InvalidArgument naming
// the field, on unary and streaming calls alike, and on the CRI; nothing is created. (The C++
// client sends such strings as they are; it only logs.)
TEST_F(GrpcAbuseIT, InvalidUtf8IsInvalidArgumentNamingTheField) {
  const std::string bad = "\xff\xfe";
  auto expect_invalid = [](const grpc::Status& st, const std::string& field) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find("field " + field + " "), std::string::npos)
        << st.error_message();
    EXPECT_NE(st.error_message().find("not valid UTF-8"), std::string::npos) << st.error_message();
  };
  auto context = [](grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    ctx.AddMetadata("containerd-namespace", "default");
  };

  // Content.Write (bidi): the first message, and a later one.
  auto content = containerd::services::content::v1::Content::NewStub(channel_);
  {
    grpc::ClientContext ctx;
    context(ctx);
    auto stream = content->Write(&ctx);
    containerd::services::content::v1::WriteContentRequest req;
    req.set_action(containerd::services::content::v1::STAT);
    req.set_ref(bad);
    stream->Write(req);
    containerd::services::content::v1::WriteContentResponse resp;
    EXPECT_FALSE(stream->Read(&resp)) << "answered a ref that is not UTF-8";
    expect_invalid(stream->Finish(), "ref");
  }
  {
    grpc::ClientContext ctx;
    context(ctx);
    auto stream = content->Write(&ctx);
    containerd::services::content::v1::WriteContentRequest req;
    req.set_action(containerd::services::content::v1::WRITE);
    req.set_ref("utf8-probe");
    req.set_data("abc");
    ASSERT_TRUE(stream->Write(req));
    containerd::services::content::v1::WriteContentResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    req.Clear();
    req.set_action(containerd::services::content::v1::COMMIT);
    req.set_ref("utf8-probe");
    (*req.mutable_labels())["note"] = bad;
    stream->Write(req);
    EXPECT_FALSE(stream->Read(&resp));
    expect_invalid(stream->Finish(), "labels[\"note\"]");
  }
  // Unary: images, leases (nothing created).
  {
    auto images = containerd::services::images::v1::Images::NewStub(channel_);
    grpc::ClientContext ctx;
    context(ctx);
    containerd::services::images::v1::GetImageRequest req;
    req.set_name(bad);
    containerd::services::images::v1::GetImageResponse resp;
    expect_invalid(images->Get(&ctx, req, &resp), "name");
  }
  auto leases = containerd::services::leases::v1::Leases::NewStub(channel_);
  {
    grpc::ClientContext ctx;
    context(ctx);
    containerd::services::leases::v1::CreateRequest req;
    req.set_id("utf8-lease");
    (*req.mutable_labels())["k"] = bad;
    containerd::services::leases::v1::CreateResponse resp;
    expect_invalid(leases->Create(&ctx, req, &resp), "labels[\"k\"]");
  }
  {
    grpc::ClientContext ctx;
    context(ctx);
    containerd::services::leases::v1::ListRequest req;
    containerd::services::leases::v1::ListResponse resp;
    ASSERT_TRUE(leases->List(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.leases_size(), 0) << "the refused Create made a lease";
  }
  // The CRI.
  {
    auto cri = runtime::v1::ImageService::NewStub(channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    runtime::v1::ImageStatusRequest req;
    req.mutable_image()->set_image(bad);
    runtime::v1::ImageStatusResponse resp;
    expect_invalid(cri->ImageStatus(&ctx, req, &resp), "image.image");
  }
  EXPECT_TRUE(VersionCall(5s)) << "still answering";
}

}  // namespace
}  // namespace berth::testing

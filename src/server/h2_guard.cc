#include "server/h2_guard.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/log.h"

namespace berth::server {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kFrameHeader = 9;
// Frame types and flags (RFC 9113 §6).
constexpr uint8_t kData = 0x0;
constexpr uint8_t kHeaders = 0x1;
constexpr uint8_t kRstStream = 0x3;
constexpr uint8_t kGoaway = 0x7;
constexpr uint8_t kEndStream = 0x1;
constexpr uint32_t kEnhanceYourCalm = 0xb;
// Bytes held per direction and connection before the relay stops reading that side.
constexpr size_t kMaxBuffered = size_t{128} * 1024;
// Quiet time after the last throttled or refused client before the heap is trimmed.
constexpr auto kTrimDelay = std::chrono::seconds(1);

uint32_t Be32(const char* p) {
  auto b = [p](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

void AppendBe32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

}  // namespace

bool TokenBucket::Ready(Clock::time_point now) {
  if (now > last_) {
    tokens_ =
        std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }
  return tokens_ >= 1;
}

TokenBucket::Clock::duration TokenBucket::Until(Clock::time_point now, double want) const {
  want = std::min(want, burst_);
  double tokens = tokens_;
  if (now > last_) tokens += rate_ * std::chrono::duration<double>(now - last_).count();
  if (tokens >= want) return Clock::duration::zero();
  return std::chrono::ceil<Clock::duration>(std::chrono::duration<double>((want - tokens) / rate_));
}

size_t H2Meter::FromClient(std::string_view data, Clock::time_point now, Verdict* verdict) {
  *verdict = Verdict::kForward;
  size_t pos = 0;
  while (pos < data.size()) {
    if (client_.opaque) return data.size();
    size_t avail = data.size() - pos;
    if (client_.preface_left > 0) {
      size_t n = std::min(client_.preface_left, avail);
      if (data.substr(pos, n) != kPreface.substr(kPreface.size() - client_.preface_left, n)) {
        client_.opaque = true;  // not HTTP/2: gRPC answers it and closes
      }
      pos += n;
      client_.preface_left -= n;
      continue;
    }
    if (client_.payload_left > 0) {
      size_t n = std::min<size_t>(client_.payload_left, avail);
      pos += n;
      client_.payload_left -= static_cast<uint32_t>(n);
      continue;
    }
    if (avail < kFrameHeader) break;
    const char* p = data.data() + pos;
    Header h{.length = Be32(p) >> 8,
             .type = static_cast<uint8_t>(p[3]),
             .flags = static_cast<uint8_t>(p[4]),
             .stream_id = Be32(p + 5) & 0x7fffffffu};
    if (Verdict v = OnClientFrame(h, now); v != Verdict::kForward) {
      *verdict = v;
      break;
    }
    pos += kFrameHeader;
    client_.payload_left = h.length;
  }
  return pos;
}

size_t H2Meter::FromServer(std::string_view data) {
  size_t pos = 0;
  while (pos < data.size()) {
    size_t avail = data.size() - pos;
    if (server_.payload_left > 0) {
      size_t n = std::min<size_t>(server_.payload_left, avail);
      pos += n;
      server_.payload_left -= static_cast<uint32_t>(n);
      continue;
    }
    if (avail < kFrameHeader) break;
    const char* p = data.data() + pos;
    Header h{.length = Be32(p) >> 8,
             .type = static_cast<uint8_t>(p[3]),
             .flags = static_cast<uint8_t>(p[4]),
             .stream_id = Be32(p + 5) & 0x7fffffffu};
    OnServerFrame(h);
    pos += kFrameHeader;
    server_.payload_left = h.length;
  }
  return pos;
}

H2Meter::Verdict H2Meter::OnClientFrame(const Header& h, Clock::time_point now) {
  switch (h.type) {
    case kHeaders:
      // A client opens streams with odd, increasing ids; HEADERS on an older id are trailers
      // (or a protocol error gRPC reports).
      if (h.stream_id % 2 == 1 && h.stream_id > last_client_stream_) {
        last_client_stream_ = h.stream_id;
        open_.insert(h.stream_id);
        if (open_.size() > limits_.max_open_streams) return Verdict::kRefuse;
      }
      break;
    case kRstStream:
      if (open_.contains(h.stream_id)) {
        if (!conn_.Ready(now) || !total_.Ready(now)) return Verdict::kWait;
        conn_.Take();
        total_.Take();
        open_.erase(h.stream_id);
        ++premature_resets_;
      }
      break;
    default:
      break;
  }
  return Verdict::kForward;
}

void H2Meter::OnServerFrame(const Header& h) {
  if (h.type == kRstStream || ((h.type == kHeaders || h.type == kData) && (h.flags & kEndStream))) {
    open_.erase(h.stream_id);
  }
}

H2Meter::Clock::duration H2Meter::Until(Clock::time_point now) const {
  constexpr double kBatch = 16;
  return std::max(conn_.Until(now, kBatch), total_.Until(now, kBatch));
}

// One relay thread: epoll over the listener, a wake eventfd and both ends of every connection.
struct H2Guard::Impl {
  using Clock = std::chrono::steady_clock;
  struct Conn;
  struct Tag {
    enum Kind { kWake, kListener, kClient, kGrpc } kind;
    Conn* conn = nullptr;
  };
  struct Conn {
    Conn(const H2GuardLimits& limits, TokenBucket& total, Clock::time_point now)
        : meter(limits, total, now) {}
    fs::UniqueFd client;
    fs::UniqueFd grpc;  // our end of the socketpair; gRPC owns the other
    H2Meter meter;
    std::string up;  // client -> gRPC; [0, up_ok) let through
    size_t up_ok = 0;
    std::string down;  // gRPC -> client; [0, down_ok) let through
    size_t down_ok = 0;
    bool waiting = false;  // a premature reset waits for a token
    bool throttled_once = false;
    bool closed = false;
    uint32_t client_events = 0;  // as registered with epoll
    uint32_t grpc_events = 0;
    Tag client_tag{Tag::kClient, this};
    Tag grpc_tag{Tag::kGrpc, this};
  };

  Impl(fs::UniqueFd l, grpc::Server& s, H2GuardLimits lim)
      : server(s),
        limits(lim),
        total(lim.total_resets_per_second, lim.total_reset_burst, Clock::now()),
        listener(std::move(l)) {}

  grpc::Server& server;
  const H2GuardLimits limits;
  TokenBucket total;
  fs::UniqueFd listener;
  fs::UniqueFd epoll;
  fs::UniqueFd wake;
  Tag wake_tag{Tag::kWake};
  Tag listener_tag{Tag::kListener};
  std::mutex accept_mu;  // StopAccepting() vs the thread's accept
  bool accepting = true;
  std::optional<Clock::time_point> accept_resume;  // out of descriptors: retry then
  // A second after the last throttled or refused client: give the heap gRPC churned back.
  std::optional<Clock::time_point> trim_at;
  std::atomic<bool> stop{false};
  std::thread thread;
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns;
  std::unordered_set<Conn*> waiting;        // conns whose premature reset waits for a token
  std::vector<std::unique_ptr<Conn>> dead;  // closed during this round of events
  std::vector<char> scratch = std::vector<char>(kMaxBuffered);

  bool Add(int fd, uint32_t events, Tag* tag) {
    epoll_event ev{.events = events, .data = {.ptr = tag}};
    return ::epoll_ctl(epoll.Get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  }

  void Run() {
    std::vector<epoll_event> events(64);
    while (!stop.load()) {
      int n = ::epoll_wait(epoll.Get(), events.data(), static_cast<int>(events.size()), Timeout());
      if (n < 0) {
        if (errno == EINTR) continue;
        log::L().With("error", std::strerror(errno)).Error("grpc guard: epoll_wait failed");
        break;
      }
      for (int i = 0; i < n; i++) {
        auto* tag = static_cast<Tag*>(events[i].data.ptr);
        switch (tag->kind) {
          case Tag::kWake: {
            uint64_t v;
            (void)!::read(wake.Get(), &v, sizeof v);
            break;
          }
          case Tag::kListener: {
            std::lock_guard lock(accept_mu);
            if (accepting) Accept();
            break;
          }
          case Tag::kClient:
            if (!tag->conn->closed) OnClient(*tag->conn, events[i].events);
            break;
          case Tag::kGrpc:
            if (!tag->conn->closed) OnGrpc(*tag->conn, events[i].events);
            break;
        }
      }
      Timers();
      dead.clear();
    }
    std::vector<Conn*> all;
    for (auto& [p, c] : conns) all.push_back(p);
    for (Conn* c : all) Close(*c);
    dead.clear();
  }

  // Milliseconds until the next timer (a waiting client's tokens, accept retry, heap trim), or -1.
  int Timeout() {
    auto now = Clock::now();
    std::optional<Clock::duration> next;
    auto consider = [&](Clock::duration d) { next = next ? std::min(*next, d) : d; };
    for (Conn* c : waiting) consider(c->meter.Until(now));
    if (accept_resume) consider(*accept_resume - now);
    if (trim_at) consider(*trim_at - now);
    if (!next) return -1;
    return static_cast<int>(
        std::clamp<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(*next).count(), 1, 1000));
  }

  void Timers() {
    auto now = Clock::now();
    std::vector<Conn*> due(waiting.begin(), waiting.end());
    for (Conn* c : due) {
      if (c->closed || c->meter.Until(now) > Clock::duration::zero()) continue;
      Admit(*c, now);
      if (c->closed) continue;
      FlushUp(*c);
      if (!c->closed) Watch(*c);
    }
    if (trim_at && now >= *trim_at) {
      if (waiting.empty()) {
        // The reset calls gRPC retired were freed to glibc's per-thread arenas, which keep
        // them (tens of MB); hand the free pages back now that the flood is over.
        ::malloc_trim(0);
        trim_at.reset();
      } else {
        trim_at = now + kTrimDelay;
      }
    }
    if (accept_resume && now >= *accept_resume) {
      std::lock_guard lock(accept_mu);
      accept_resume.reset();
      if (accepting) Add(listener.Get(), EPOLLIN, &listener_tag);
    }
  }

  void Accept() {
    for (;;) {
      int fd = ::accept4(listener.Get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        // Out of descriptors (or worse): stop polling the listener for a moment, not spin.
        log::L().With("error", std::strerror(errno)).Warn("grpc guard: accept failed");
        ::epoll_ctl(epoll.Get(), EPOLL_CTL_DEL, listener.Get(), nullptr);
        accept_resume = Clock::now() + std::chrono::milliseconds(100);
        return;
      }
      fs::UniqueFd client(fd);
      int pair[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
        log::L().With("error", std::strerror(errno)).Warn("grpc guard: socketpair failed");
        continue;
      }
      auto conn = std::make_unique<Conn>(limits, total, Clock::now());
      conn->client = std::move(client);
      conn->grpc.Reset(pair[0]);
      grpc::AddInsecureChannelFromFd(&server, pair[1]);  // gRPC owns pair[1] from here
      if (!Add(conn->client.Get(), EPOLLIN, &conn->client_tag) ||
          !Add(conn->grpc.Get(), EPOLLIN, &conn->grpc_tag)) {
        log::L().With("error", std::strerror(errno)).Warn("grpc guard: epoll_ctl failed");
        continue;  // both closed: gRPC sees its end hang up
      }
      conn->client_events = conn->grpc_events = EPOLLIN;
      Conn* key = conn.get();
      conns.emplace(key, std::move(conn));
    }
  }

  enum class ReadResult { kOk, kClosed };
  ReadResult ReadInto(int fd, std::string& buf) {
    size_t room = kMaxBuffered - std::min(kMaxBuffered, buf.size());
    if (room == 0) return ReadResult::kOk;
    ssize_t n = ::read(fd, scratch.data(), room);
    if (n > 0) {
      buf.append(scratch.data(), static_cast<size_t>(n));
      return ReadResult::kOk;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      return ReadResult::kOk;
    }
    return ReadResult::kClosed;
  }

  // Writes the let-through prefix of `buf`; false if the peer is gone.
  static bool Flush(int fd, std::string& buf, size_t& ok) {
    size_t sent = 0;
    while (sent < ok) {
      ssize_t n = ::send(fd, buf.data() + sent, ok - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return false;
    }
    buf.erase(0, sent);
    ok -= sent;
    return true;
  }
  void FlushUp(Conn& c) {
    if (!Flush(c.grpc.Get(), c.up, c.up_ok)) Close(c);
  }
  void FlushDown(Conn& c) {
    if (!Flush(c.client.Get(), c.down, c.down_ok)) Close(c);
  }

  void OnClient(Conn& c, uint32_t events) {
    if (events & EPOLLOUT) {
      FlushDown(c);
      if (c.closed) return;
    }
    bool reading = (c.client_events & EPOLLIN) != 0;
    if (reading && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
      if (ReadInto(c.client.Get(), c.up) == ReadResult::kClosed) {
        Close(c);  // gRPC sees its end close and cancels the client's calls
        return;
      }
      Admit(c, Clock::now());
      if (c.closed) return;
    } else if (events & (EPOLLHUP | EPOLLERR)) {
      Close(c);  // hung up while not read: gone all the same
      return;
    }
    FlushUp(c);
    if (!c.closed) Watch(c);
  }

  void OnGrpc(Conn& c, uint32_t events) {
    if (events & EPOLLOUT) {
      FlushUp(c);
      if (c.closed) return;
    }
    bool reading = (c.grpc_events & EPOLLIN) != 0;
    if ((reading && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) ||
        (events & (EPOLLHUP | EPOLLERR))) {
      if (!reading || ReadInto(c.grpc.Get(), c.down) == ReadResult::kClosed) {
        // gRPC closed the connection (GOAWAY sent, shutdown): pass on what it said, then close.
        c.down_ok = c.down.size();
        Flush(c.client.Get(), c.down, c.down_ok);
        Close(c);
        return;
      }
      c.down_ok += c.meter.FromServer(std::string_view(c.down).substr(c.down_ok));
    }
    FlushDown(c);
    if (!c.closed) Watch(c);
  }

  void Admit(Conn& c, Clock::time_point now) {
    H2Meter::Verdict verdict;
    c.up_ok += c.meter.FromClient(std::string_view(c.up).substr(c.up_ok), now, &verdict);
    c.waiting = verdict == H2Meter::Verdict::kWait;
    if (verdict != H2Meter::Verdict::kForward) trim_at = now + kTrimDelay;
    if (c.waiting) {
      waiting.insert(&c);
    } else {
      waiting.erase(&c);
    }
    if (c.waiting && !c.throttled_once) {
      c.throttled_once = true;
      log::L()
          .With("premature_resets", static_cast<long long>(c.meter.PrematureResets()))
          .Warn("grpc guard: client resets streams faster than allowed, throttling it");
    }
    if (verdict == H2Meter::Verdict::kRefuse) Refuse(c);
  }

  void Refuse(Conn& c) {
    log::L()
        .With("open_streams", static_cast<long long>(c.meter.OpenStreams()))
        .With("max_open_streams", static_cast<long long>(limits.max_open_streams))
        .Warn("grpc guard: client opened too many streams, disconnecting it");
    if (c.meter.ServerAtFrameBoundary() && c.down_ok == c.down.size()) {
      std::string goaway = {0, 0, 8, static_cast<char>(kGoaway), 0, 0, 0, 0, 0};
      AppendBe32(goaway, c.meter.LastClientStream());
      AppendBe32(goaway, kEnhanceYourCalm);
      c.down += goaway;
      c.down_ok = c.down.size();
    }
    Flush(c.client.Get(), c.down, c.down_ok);
    Close(c);
  }

  // Registers what each end waits for: read the client unless a reset waits for a token or its
  // bytes are not yet taken by gRPC; write where bytes are let through.
  void Watch(Conn& c) {
    uint32_t client_events = 0;
    uint32_t grpc_events = 0;
    if (!c.waiting && c.up.size() < kMaxBuffered) client_events |= EPOLLIN;
    if (c.down_ok > 0) client_events |= EPOLLOUT;
    if (c.down.size() < kMaxBuffered) grpc_events |= EPOLLIN;
    if (c.up_ok > 0) grpc_events |= EPOLLOUT;
    auto mod = [this](int fd, uint32_t want, uint32_t& have, Tag* tag) {
      if (want == have) return;
      epoll_event ev{.events = want, .data = {.ptr = tag}};
      ::epoll_ctl(epoll.Get(), EPOLL_CTL_MOD, fd, &ev);
      have = want;
    };
    mod(c.client.Get(), client_events, c.client_events, &c.client_tag);
    mod(c.grpc.Get(), grpc_events, c.grpc_events, &c.grpc_tag);
  }

  void Close(Conn& c) {
    if (c.closed) return;
    c.closed = true;
    ::epoll_ctl(epoll.Get(), EPOLL_CTL_DEL, c.client.Get(), nullptr);
    ::epoll_ctl(epoll.Get(), EPOLL_CTL_DEL, c.grpc.Get(), nullptr);
    c.client.Reset();
    c.grpc.Reset();
    c.waiting = false;
    waiting.erase(&c);
    auto it = conns.find(&c);
    if (it != conns.end()) {
      dead.push_back(std::move(it->second));
      conns.erase(it);
    }
  }
};

Result<std::unique_ptr<H2Guard>> H2Guard::Start(fs::UniqueFd listener, grpc::Server& server,
                                                H2GuardLimits limits) {
  auto impl = std::make_unique<Impl>(std::move(listener), server, limits);
  impl->epoll.Reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!impl->epoll.Valid()) return ErrnoError(errno, "epoll_create1");
  impl->wake.Reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!impl->wake.Valid()) return ErrnoError(errno, "eventfd");
  int flags = ::fcntl(impl->listener.Get(), F_GETFL);
  if (flags < 0 || ::fcntl(impl->listener.Get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoError(errno, "set the grpc socket non-blocking");
  }
  if (!impl->Add(impl->wake.Get(), EPOLLIN, &impl->wake_tag) ||
      !impl->Add(impl->listener.Get(), EPOLLIN, &impl->listener_tag)) {
    return ErrnoError(errno, "epoll_ctl");
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    ::pthread_setname_np(::pthread_self(), "h2-guard");
    raw->Run();
  });
  return std::unique_ptr<H2Guard>(new H2Guard(std::move(impl)));
}

H2Guard::H2Guard(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

H2Guard::~H2Guard() { Shutdown(); }

void H2Guard::StopAccepting() {
  std::lock_guard lock(impl_->accept_mu);
  if (!impl_->accepting) return;
  impl_->accepting = false;
  ::epoll_ctl(impl_->epoll.Get(), EPOLL_CTL_DEL, impl_->listener.Get(), nullptr);
  impl_->listener.Reset();
}

void H2Guard::Shutdown() {
  StopAccepting();
  if (!impl_->thread.joinable()) return;
  impl_->stop = true;
  uint64_t one = 1;
  (void)!::write(impl_->wake.Get(), &one, sizeof one);
  impl_->thread.join();
}

}  // namespace berth::server

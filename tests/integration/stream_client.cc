#include "stream_client.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "common/base64.h"
#include "cri/streaming/upgrade.h"
#include "stream_client_io.h"

namespace berth::testing::stream {

using io::Clock;

namespace {

constexpr size_t kMaxHead = 64 * 1024;

// Milliseconds left until `deadline`, for poll(): at least 0.
int PollMillis(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, INT32_MAX));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

namespace io {

Error Deadline(std::string what) { return Error(Errc::kDeadlineExceeded, std::move(what)); }

Millis Left(Clock::time_point deadline) {
  return std::max(Millis(0), std::chrono::duration_cast<Millis>(deadline - Clock::now()));
}

bool EqualFold(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

Status SendAllUntil(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Unavailable(fmt::format("send: {}", std::strerror(errno)));
    }
    pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
    int r = ::poll(&p, 1, PollMillis(deadline));
    if (r < 0 && errno != EINTR) return ErrnoError(errno, "poll");
    if (r == 0) {
      return Deadline(
          fmt::format("send: the server took no data in time ({} bytes left)", data.size()));
    }
  }
  return Ok();
}

Result<size_t> RecvSome(int fd, std::string& buf, Clock::time_point deadline) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  while (true) {
    int r = ::poll(&p, 1, PollMillis(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError(errno, "poll");
    if (r == 0) return Deadline("no data from the server in time");
    break;
  }
  char chunk[16 * 1024];
  while (true) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable(fmt::format("recv: {}", std::strerror(errno)));
    buf.append(chunk, static_cast<size_t>(n));
    return static_cast<size_t>(n);
  }
}

}  // namespace io

using io::Deadline;
using io::EqualFold;
using io::RecvSome;
using io::SendAllUntil;

namespace {

// Reads until `buf` holds a whole response head; returns the head's length (blank line
// included); the bytes after it stay in `buf`.
Result<size_t> ReadHead(int fd, std::string& buf, Clock::time_point deadline) {
  while (true) {
    size_t crlf = buf.find("\r\n\r\n");
    size_t lf = buf.find("\n\n");
    if (crlf != std::string::npos && (lf == std::string::npos || crlf < lf)) return crlf + 4;
    if (lf != std::string::npos) return lf + 2;
    if (buf.size() > kMaxHead) return InvalidArgument("response head over 64 KiB");
    BERTH_ASSIGN_OR_RETURN(size_t n, RecvSome(fd, buf, deadline));
    if (n == 0) {
      return Unavailable(fmt::format("connection closed before a response head (got {:?})", buf));
    }
  }
}

// The reply's body from `buf` and `fd`: Content-Length bytes, else until EOF.
Status ReadBody(int fd, std::string& buf, HttpReply& reply, Clock::time_point deadline) {
  if (reply.status / 100 == 1 || reply.status == 204 || reply.status == 304) return Ok();
  std::string length = reply.Header("Content-Length");
  if (!length.empty()) {
    size_t want = 0;
    auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), want);
    if (ec != std::errc() || end != length.data() + length.size()) {
      return InvalidArgument(fmt::format("bad Content-Length {:?}", length));
    }
    while (buf.size() < want) {
      BERTH_ASSIGN_OR_RETURN(size_t n, RecvSome(fd, buf, deadline));
      if (n == 0) break;
    }
    reply.body = buf.substr(0, std::min(want, buf.size()));
    buf.erase(0, reply.body.size());
    return Ok();
  }
  while (true) {
    auto n = RecvSome(fd, buf, deadline);
    if (!n && n.error().Is(Errc::kUnavailable)) break;  // reset after the body: keep what came
    BERTH_TRY(n);
    if (*n == 0) break;
  }
  reply.body = std::exchange(buf, {});
  return Ok();
}

}  // namespace

namespace io {

Result<Dialed> DialUpgrade(const Url& url, std::string_view request, Clock::time_point deadline,
                           HttpReply* refused) {
  BERTH_ASSIGN_OR_RETURN(fs::UniqueFd fd, ConnectTcp(url.host, url.port));
  BERTH_TRY(SendAllUntil(fd.Get(), request, deadline));
  std::string buf;
  BERTH_ASSIGN_OR_RETURN(size_t head, ReadHead(fd.Get(), buf, deadline));
  BERTH_ASSIGN_OR_RETURN(HttpReply reply, ParseResponseHead(std::string_view(buf).substr(0, head)));
  buf.erase(0, head);
  if (reply.status != 101) {
    (void)ReadBody(fd.Get(), buf, reply, deadline);  // best effort: the status says enough
    Error error = RefusalError(reply);
    if (refused != nullptr) *refused = std::move(reply);
    return error;
  }
  return Dialed{.fd = std::move(fd), .reply = std::move(reply), .rest = std::move(buf)};
}

}  // namespace io

// ---------------------------------------------------------------------------------------------
// Socket

Socket::Socket(fs::UniqueFd fd)
    : fd_(std::move(fd)), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  BERTH_CHECK(wake_.Valid(), "eventfd failed");
}

Socket::~Socket() { Stop(); }

void Socket::Start(std::string initial, OnBytes on_bytes, OnClosed on_closed) {
  thread_ = std::thread([this, initial = std::move(initial), on_bytes = std::move(on_bytes),
                         on_closed = std::move(on_closed)] {
    if (!initial.empty()) on_bytes(initial);
    on_closed(Loop(on_bytes));
  });
}

Status Socket::Send(std::string_view data, Millis timeout) {
  if (aborted_) return Unavailable("connection aborted by the client");
  return io::SendAllUntil(fd_.Get(), data, io::Clock::now() + timeout);
}

void Socket::ShutdownWrite() { ::shutdown(fd_.Get(), SHUT_WR); }

void Socket::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_.Get(), &one, sizeof one);
}

void Socket::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  Wake();
  thread_.join();
}

void Socket::SetPaused(bool paused) {
  paused_ = paused;
  Wake();
}

// connect(AF_UNSPEC) disconnects a TCP socket with a reset, and the descriptor stays valid for
// writers racing with us: they get an error, never someone else's descriptor.
void Socket::Abort() {
  aborted_ = true;
  Stop();
  sockaddr sa{};
  sa.sa_family = AF_UNSPEC;
  if (::connect(fd_.Get(), &sa, sizeof sa) != 0) ::shutdown(fd_.Get(), SHUT_RDWR);
}

std::optional<Error> Socket::Loop(const OnBytes& on_bytes) {
  std::string buf;
  while (true) {
    const bool paused = paused_;
    pollfd p[2] = {
        {.fd = fd_.Get(), .events = static_cast<short>(paused ? 0 : POLLIN), .revents = 0},
        {.fd = wake_.Get(), .events = POLLIN, .revents = 0}};
    int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError(errno, "poll");
    if (p[1].revents != 0) {
      if (stopping_) return Error(Errc::kCanceled, "connection closed by the client");
      uint64_t n = 0;
      (void)!::read(wake_.Get(), &n, sizeof n);  // SetPaused: look again
      continue;
    }
    if (paused && (p[0].revents & (POLLERR | POLLHUP)) == 0) continue;
    buf.clear();
    auto n = io::RecvSome(fd_.Get(), buf, io::Clock::now());
    if (!n) {
      if (n.error().Is(Errc::kDeadlineExceeded)) continue;
      return std::move(n).error();
    }
    if (*n == 0) return std::nullopt;
    on_bytes(buf);
  }
}

// ---------------------------------------------------------------------------------------------
// URLs and raw HTTP

std::string Url::HostPort() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<Url> ParseUrl(std::string_view url) {
  constexpr std::string_view kHttp = "http://";
  if (url.starts_with("https://")) return NotImplemented(fmt::format("https URL {}", url));
  if (!url.starts_with(kHttp)) return InvalidArgument(fmt::format("not an http URL: {}", url));
  std::string_view rest = url.substr(kHttp.size());
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  Url out;
  out.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (out.target.front() == '?') out.target.insert(0, "/");
  std::string_view port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument(fmt::format("bad host in {}", url));
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgument(fmt::format("bad host in {}", url));
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return InvalidArgument(fmt::format("no host in {}", url));
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      return InvalidArgument(fmt::format("bad port in {}", url));
    }
    out.port = static_cast<uint16_t>(value);
  }
  return out;
}

std::string HttpReply::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (EqualFold(n, name)) return v;
  }
  return "";
}

std::vector<std::string> HttpReply::HeaderValues(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : headers) {
    if (EqualFold(n, name)) out.push_back(v);
  }
  return out;
}

Result<HttpReply> ParseResponseHead(std::string_view head) {
  HttpReply reply;
  bool first = true;
  while (!head.empty()) {
    size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (first) {
      first = false;
      // HTTP/1.1 101 Switching Protocols
      if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ') {
        return InvalidArgument(fmt::format("bad status line {:?}", line));
      }
      int status = 0;
      auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
      if (ec != std::errc() || p != line.data() + 12 || (line.size() > 12 && line[12] != ' ')) {
        return InvalidArgument(fmt::format("bad status line {:?}", line));
      }
      reply.status = status;
      reply.reason = line.size() > 13 ? std::string(line.substr(13)) : "";
      continue;
    }
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return InvalidArgument(fmt::format("bad header line {:?}", line));
    }
    reply.headers.emplace_back(std::string(line.substr(0, colon)),
                               std::string(Trim(line.substr(colon + 1))));
  }
  if (first) return InvalidArgument("empty response head");
  return reply;
}

namespace {

std::mutex g_netns_mu;
std::string g_netns;  // SetDialNetns

Result<fs::UniqueFd> ConnectHere(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return Unavailable(fmt::format("resolve {}: {}", host, ::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(res, &::freeaddrinfo);
  int last_errno = 0;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fs::UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.Valid()) {
      last_errno = errno;
      continue;
    }
    int rc = 0;
    do {
      rc = ::connect(fd.Get(), ai->ai_addr, ai->ai_addrlen);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      last_errno = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd.Get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }
  return Unavailable(fmt::format("connect {}:{}: {}", host, port, std::strerror(last_errno)));
}

}  // namespace

void SetDialNetns(std::string path) {
  std::lock_guard lock(g_netns_mu);
  g_netns = std::move(path);
}

Result<fs::UniqueFd> ConnectTcp(const std::string& host, uint16_t port) {
  std::string netns;
  {
    std::lock_guard lock(g_netns_mu);
    netns = g_netns;
  }
  if (netns.empty()) return ConnectHere(host, port);
  // A socket belongs to the namespace it was made in: make it on a thread that entered the
  // namespace (setns changes only the calling thread), then use it from anywhere.
  std::optional<Result<fs::UniqueFd>> out;
  std::thread([&] {
    fs::UniqueFd ns(::open(netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.Valid()) {
      out.emplace(ErrnoError(errno, "open network namespace " + netns));
    } else if (::setns(ns.Get(), CLONE_NEWNET) != 0) {
      out.emplace(ErrnoError(errno, "enter network namespace " + netns));
    } else {
      out.emplace(ConnectHere(host, port));
    }
  }).join();
  return std::move(*out);
}

Status SendAll(int fd, std::string_view data, Millis timeout) {
  return SendAllUntil(fd, data, Clock::now() + timeout);
}

Result<HttpReply> ReadReply(int fd, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string buf;
  BERTH_ASSIGN_OR_RETURN(size_t head, ReadHead(fd, buf, deadline));
  BERTH_ASSIGN_OR_RETURN(HttpReply reply, ParseResponseHead(std::string_view(buf).substr(0, head)));
  buf.erase(0, head);
  BERTH_TRY(ReadBody(fd, buf, reply, deadline));
  return reply;
}

Result<std::string> ReadUntilClosed(int fd, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string buf;
  while (true) {
    auto n = RecvSome(fd, buf, deadline);
    if (!n && n.error().Is(Errc::kUnavailable)) return buf;  // reset: closed too
    if (!n) {
      return Deadline(fmt::format("connection still open after {} ms (got {} bytes)",
                                  timeout.count(), buf.size()));
    }
    if (*n == 0) return buf;
  }
}

Result<HttpReply> RawRequest(std::string_view url, std::string_view request, Millis timeout) {
  BERTH_ASSIGN_OR_RETURN(Url u, ParseUrl(url));
  BERTH_ASSIGN_OR_RETURN(fs::UniqueFd fd, ConnectTcp(u.host, u.port));
  // A server refusing early may close before taking everything: its answer is what matters.
  (void)SendAll(fd.Get(), request, timeout);
  return ReadReply(fd.Get(), timeout);
}

std::string SpdyUpgradeRequest(const Url& url, const std::vector<std::string>& protocols,
                               std::string_view method) {
  std::string out = fmt::format(
      "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: berth-stream-client\r\nContent-Length: 0\r\n"
      "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n",
      method, url.target, url.HostPort());
  for (const auto& p : protocols) out += fmt::format("X-Stream-Protocol-Version: {}\r\n", p);
  return out + "\r\n";
}

std::string WebSocketUpgradeRequest(const Url& url, const std::vector<std::string>& subprotocols,
                                    std::string_view key) {
  std::string out = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: berth-stream-client\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {}\r\n",
      url.target, url.HostPort(), key);
  if (!subprotocols.empty()) {
    out += fmt::format("Sec-WebSocket-Protocol: {}\r\n", fmt::join(subprotocols, ", "));
  }
  return out + "\r\n";
}

std::string NewWebSocketKey() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::string nonce(16, '\0');
  std::lock_guard lock(mu);
  for (char& c : nonce) c = static_cast<char>(rng());
  return Base64Encode(nonce);
}

Error RefusalError(const HttpReply& reply) {
  std::string what =
      fmt::format("upgrade refused: {} {}: {}", reply.status, reply.reason, Trim(reply.body));
  switch (reply.status) {
    case 404:
      return NotFound(std::move(what));
    case 403:
      return Error(Errc::kPermissionDenied, std::move(what));
    case 400:
      return InvalidArgument(std::move(what));
    default:
      return FailedPrecondition(std::move(what));
  }
}

}  // namespace berth::testing::stream

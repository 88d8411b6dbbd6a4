// SpdyConn and WsConn: the client's end of SPDY/3.1 and WebSocket connections.
#include <fmt/format.h>

#include <algorithm>

#include "cri/streaming/upgrade.h"
#include "stream_client.h"
#include "stream_client_io.h"

namespace berth::testing::stream {

using io::Clock;
using io::Deadline;
using io::Dialed;
using io::DialUpgrade;
using io::EqualFold;

// ---------------------------------------------------------------------------------------------
// SpdyConn

Result<std::unique_ptr<SpdyConn>> SpdyConn::Dial(std::string_view url,
                                                 const std::vector<std::string>& protocols,
                                                 HttpReply* refused, Millis timeout) {
  BERTH_ASSIGN_OR_RETURN(Url u, ParseUrl(url));
  BERTH_ASSIGN_OR_RETURN(
      Dialed d, DialUpgrade(u, SpdyUpgradeRequest(u, protocols), Clock::now() + timeout, refused));
  std::string protocol = d.reply.Header("X-Stream-Protocol-Version");
  if (std::find(protocols.begin(), protocols.end(), protocol) == protocols.end()) {
    return FailedPrecondition(fmt::format("server chose protocol {:?}, not one offered", protocol));
  }
  auto socket = std::make_unique<Socket>(std::move(d.fd));
  Socket* s = socket.get();
  std::unique_ptr<SpdyConn> conn(
      new SpdyConn(std::move(socket), std::move(protocol), std::move(d.reply)));
  SpdyConn* c = conn.get();
  s->Start(
      std::move(d.rest), [c](std::string_view bytes) { c->OnBytes(bytes); },
      [c](std::optional<Error> e) { c->OnClosed(std::move(e)); });
  return conn;
}

SpdyConn::SpdyConn(std::unique_ptr<Socket> socket, std::string protocol, HttpReply handshake)
    : socket_(std::move(socket)),
      protocol_(std::move(protocol)),
      handshake_(std::move(handshake)) {}

SpdyConn::~SpdyConn() { socket_->Stop(); }

void SpdyConn::SetPaused(bool paused) { socket_->SetPaused(paused); }

bool SpdyConn::OnBytes(std::string_view bytes) {
  {
    std::lock_guard lock(mu_);
    if (error_) return false;  // the stream no longer parses: drain until EOF
  }
  parser_.Append(bytes);
  bool pong = false;
  while (true) {
    auto next = parser_.Next();
    std::lock_guard lock(mu_);
    if (!next) {
      error_ = std::move(next).error();
      cv_.notify_all();
      return false;
    }
    if (!next->has_value()) break;
    spdy::Frame& frame = **next;
    if (auto* f = std::get_if<spdy::SynReply>(&frame)) {
      Stream& s = streams_[f->stream_id];
      s.state.replied = true;
      s.state.reply_headers = std::move(f->headers);
      if ((f->flags & spdy::kFlagFin) != 0) s.state.fin = true;
    } else if (auto* d = std::get_if<spdy::Data>(&frame)) {
      auto it = streams_.find(d->stream_id);
      if (it == streams_.end()) continue;  // never opened: nothing to queue it for
      if (!d->payload.empty()) it->second.chunks.push_back(std::move(d->payload));
      if ((d->flags & spdy::kFlagFin) != 0) it->second.state.fin = true;
    } else if (auto* r = std::get_if<spdy::RstStream>(&frame)) {
      Stream& s = streams_[r->stream_id];
      s.state.reset = true;
      s.state.reset_status = r->status;
    } else if (auto* h = std::get_if<spdy::Headers>(&frame)) {
      auto it = streams_.find(h->stream_id);
      if (it != streams_.end() && (h->flags & spdy::kFlagFin) != 0) it->second.state.fin = true;
    } else if (auto* p = std::get_if<spdy::Ping>(&frame)) {
      if (p->id % 2 == 0) {
        pongs_to_send_.push_back(p->id);  // the server's: echoed
        pong = true;
      } else {
        pings_answered_.push_back(p->id);
      }
    } else if (auto* g = std::get_if<spdy::GoAway>(&frame)) {
      goaway_ = *g;
    } else if (auto* syn = std::get_if<spdy::SynStream>(&frame)) {
      server_streams_.push_back(std::move(*syn));
    }
    // SETTINGS, WINDOW_UPDATE: spdystream ignores both.
    cv_.notify_all();
  }
  if (pong) (void)FlushPongs();
  return true;
}

void SpdyConn::OnClosed(std::optional<Error> error) {
  std::lock_guard lock(mu_);
  closed_ = true;
  if (error && !error_) error_ = std::move(error);
  cv_.notify_all();
}

Status SpdyConn::FlushPongs() {
  std::lock_guard wlock(wmu_);
  std::vector<uint32_t> ids;
  {
    std::lock_guard lock(mu_);
    ids.swap(pongs_to_send_);
  }
  for (uint32_t id : ids) BERTH_TRY(SendLocked(spdy::Ping{.id = id}));
  return Ok();
}

Status SpdyConn::SendLocked(const spdy::Frame& frame) {
  std::string out;
  BERTH_TRY(writer_.Write(frame, out));
  return socket_->Send(out);
}

Result<uint32_t> SpdyConn::StartStream(const spdy::HeaderBlock& headers, bool fin) {
  std::lock_guard wlock(wmu_);
  const uint32_t id = next_id_;
  {
    std::lock_guard lock(mu_);
    streams_[id];  // before the SYN_STREAM leaves: the reply may come at once
  }
  BERTH_TRY(SendLocked(spdy::SynStream{
      .stream_id = id, .flags = fin ? spdy::kFlagFin : uint8_t{0}, .headers = headers}));
  next_id_ += 2;
  return id;
}

Status SpdyConn::WaitForReply(uint32_t id, Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return NotFound(fmt::format("spdy stream {} never opened", id));
  const StreamState& s = it->second.state;
  if (!cv_.wait_until(lock, deadline, [&] { return s.replied || s.reset || closed_ || error_; })) {
    return Deadline(fmt::format("no SYN_REPLY for stream {} in time", id));
  }
  if (s.replied) return Ok();
  if (s.reset) {
    return Error(Errc::kAborted,
                 fmt::format("stream {} reset by the server (status {})", id, s.reset_status));
  }
  return Unavailable(fmt::format("connection ended before the SYN_REPLY of stream {}{}", id,
                                 error_ ? ": " + error_->ToString() : ""));
}

Status SpdyConn::WaitReply(uint32_t id, Millis timeout) {
  return WaitForReply(id, Clock::now() + timeout);
}

Result<uint32_t> SpdyConn::OpenStream(const spdy::HeaderBlock& headers, bool fin, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  BERTH_ASSIGN_OR_RETURN(uint32_t id, StartStream(headers, fin));
  BERTH_TRY(WaitForReply(id, deadline));
  return id;
}

Status SpdyConn::Write(uint32_t id, std::string_view data, bool fin) {
  // client-go copies stdin and forwarded data in 32 KiB pieces, one DATA frame each.
  constexpr size_t kChunk = 32 * 1024;
  std::lock_guard wlock(wmu_);
  std::string out;
  do {
    std::string_view chunk = data.substr(0, kChunk);
    data.remove_prefix(chunk.size());
    spdy::AppendDataFrame(out, id, data.empty() && fin ? spdy::kFlagFin : uint8_t{0}, chunk);
  } while (!data.empty());
  return socket_->Send(out);
}

Status SpdyConn::CloseWrite(uint32_t id) { return Write(id, "", true); }

Status SpdyConn::Reset(uint32_t id, spdy::RstStatus status) {
  std::lock_guard wlock(wmu_);
  return SendLocked(spdy::RstStream{.stream_id = id, .status = static_cast<uint32_t>(status)});
}

Result<std::optional<std::string>> SpdyConn::Read(uint32_t id, Millis timeout) {
  std::unique_lock lock(mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return NotFound(fmt::format("spdy stream {} never opened", id));
  Stream& s = it->second;
  auto ended = [&] { return s.state.fin || s.state.reset || closed_ || error_.has_value(); };
  if (!cv_.wait_for(lock, timeout, [&] { return !s.chunks.empty() || ended(); })) {
    return Deadline(fmt::format("no data on spdy stream {} in {} ms", id, timeout.count()));
  }
  if (s.chunks.empty()) return std::optional<std::string>();
  std::string chunk = std::move(s.chunks.front());
  s.chunks.pop_front();
  return std::optional<std::string>(std::move(chunk));
}

Result<std::string> SpdyConn::ReadAll(uint32_t id, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  while (true) {
    auto chunk =
        Read(id, std::max(Millis(0), std::chrono::duration_cast<Millis>(deadline - Clock::now())));
    if (!chunk) {
      return Error(chunk.error().Code(),
                   fmt::format("{} (read so far: {:?})", chunk.error().What(), out));
    }
    if (!chunk->has_value()) return out;
    out += **chunk;
  }
}

SpdyConn::StreamState SpdyConn::State(uint32_t id) const {
  std::lock_guard lock(mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return {};
  StreamState st = it->second.state;
  st.queued = it->second.chunks.size();
  return st;
}

Status SpdyConn::SendFrame(const spdy::Frame& frame) {
  std::lock_guard wlock(wmu_);
  if (const auto* syn = std::get_if<spdy::SynStream>(&frame)) {
    std::lock_guard lock(mu_);
    streams_[syn->stream_id];
    if (syn->stream_id % 2 == 1 && syn->stream_id >= next_id_) next_id_ = syn->stream_id + 2;
  }
  return SendLocked(frame);
}

Status SpdyConn::SendRaw(std::string_view bytes) {
  std::lock_guard wlock(wmu_);
  return socket_->Send(bytes);
}

Status SpdyConn::Ping(Millis timeout) {
  uint32_t id = 0;
  {
    std::lock_guard wlock(wmu_);
    id = next_ping_;
    next_ping_ += 2;
    BERTH_TRY(SendLocked(spdy::Ping{.id = id}));
  }
  std::unique_lock lock(mu_);
  bool answered = cv_.wait_for(lock, timeout, [&] {
    return closed_ || error_ ||
           std::find(pings_answered_.begin(), pings_answered_.end(), id) != pings_answered_.end();
  });
  if (std::find(pings_answered_.begin(), pings_answered_.end(), id) != pings_answered_.end()) {
    return Ok();
  }
  if (!answered) return Deadline(fmt::format("PING {} not echoed in time", id));
  return Unavailable(fmt::format("connection ended before PING {} was echoed", id));
}

bool SpdyConn::WaitClosed(Millis timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return closed_; });
}

bool SpdyConn::Closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

std::optional<spdy::GoAway> SpdyConn::GoAwayReceived() const {
  std::lock_guard lock(mu_);
  return goaway_;
}

std::optional<Error> SpdyConn::ConnectionError() const {
  std::lock_guard lock(mu_);
  if (error_ && error_->Is(Errc::kCanceled)) return std::nullopt;  // our own Abort/Stop
  return error_;
}

std::vector<spdy::SynStream> SpdyConn::ServerStreams() const {
  std::lock_guard lock(mu_);
  return server_streams_;
}

void SpdyConn::ShutdownWrite() { socket_->ShutdownWrite(); }

void SpdyConn::Abort() { socket_->Abort(); }

// ---------------------------------------------------------------------------------------------
// WsConn

Result<std::unique_ptr<WsConn>> WsConn::Dial(std::string_view url,
                                             const std::vector<std::string>& subprotocols,
                                             HttpReply* refused, Millis timeout) {
  BERTH_ASSIGN_OR_RETURN(Url u, ParseUrl(url));
  const std::string key = NewWebSocketKey();
  BERTH_ASSIGN_OR_RETURN(Dialed d, DialUpgrade(u, WebSocketUpgradeRequest(u, subprotocols, key),
                                               Clock::now() + timeout, refused));
  if (!EqualFold(d.reply.Header("Upgrade"), "websocket")) {
    return FailedPrecondition(
        fmt::format("101 with Upgrade {:?}, not websocket", d.reply.Header("Upgrade")));
  }
  const std::string accept = d.reply.Header("Sec-WebSocket-Accept");
  if (accept != cri::streaming::WebSocketAccept(key)) {
    return FailedPrecondition(
        fmt::format("Sec-WebSocket-Accept {:?} does not answer key {}", accept, key));
  }
  std::string protocol = d.reply.Header("Sec-WebSocket-Protocol");
  if (!protocol.empty() &&
      std::find(subprotocols.begin(), subprotocols.end(), protocol) == subprotocols.end()) {
    return FailedPrecondition(
        fmt::format("server chose subprotocol {:?}, not one offered", protocol));
  }
  auto socket = std::make_unique<Socket>(std::move(d.fd));
  Socket* s = socket.get();
  std::unique_ptr<WsConn> conn(
      new WsConn(std::move(socket), std::move(protocol), std::move(d.reply)));
  WsConn* c = conn.get();
  s->Start(
      std::move(d.rest), [c](std::string_view bytes) { c->OnBytes(bytes); },
      [c](std::optional<Error> e) { c->OnClosed(std::move(e)); });
  return conn;
}

WsConn::WsConn(std::unique_ptr<Socket> socket, std::string protocol, HttpReply handshake)
    : socket_(std::move(socket)),
      protocol_(std::move(protocol)),
      handshake_(std::move(handshake)),
      conn_(ws::ConnectionOptions{.role = ws::Role::kClient}) {}

WsConn::~WsConn() { socket_->Stop(); }

bool WsConn::OnBytes(std::string_view bytes) {
  bool output = false;
  bool ok = true;
  {
    std::lock_guard lock(mu_);
    if (error_) return false;
    std::vector<ws::Message> messages;
    Status st = conn_.Feed(bytes, messages);
    for (auto& m : messages) messages_.push_back(std::move(m));
    if (!st) {
      error_ = std::move(st).error();
      ok = false;
    }
    output = conn_.HasOutput();  // pongs, the answer to a close, our close after an error
    cv_.notify_all();
  }
  if (output) {
    std::lock_guard wlock(wmu_);
    (void)Flush();
  }
  return ok;
}

void WsConn::OnClosed(std::optional<Error> error) {
  std::lock_guard lock(mu_);
  closed_ = true;
  if (error && !error_) error_ = std::move(error);
  cv_.notify_all();
}

Status WsConn::Flush() {
  std::string out;
  {
    std::lock_guard lock(mu_);
    out = conn_.TakeOutput();
  }
  if (out.empty()) return Ok();
  return socket_->Send(out);
}

Status WsConn::SendBinary(std::string_view data) {
  std::lock_guard wlock(wmu_);
  {
    std::lock_guard lock(mu_);
    if (!conn_.SendBinary(data)) return FailedPrecondition("websocket: close frame already sent");
  }
  return Flush();
}

Status WsConn::SendText(std::string_view data) {
  std::lock_guard wlock(wmu_);
  {
    std::lock_guard lock(mu_);
    if (!conn_.SendText(data)) return FailedPrecondition("websocket: close frame already sent");
  }
  return Flush();
}

Status WsConn::SendPing(std::string_view payload) {
  if (payload.size() > ws::kMaxControlPayload) return InvalidArgument("ping over 125 bytes");
  std::lock_guard wlock(wmu_);
  {
    std::lock_guard lock(mu_);
    if (!conn_.SendPing(payload)) return FailedPrecondition("websocket: close frame already sent");
  }
  return Flush();
}

Status WsConn::Close(uint16_t code, std::string_view reason) {
  std::lock_guard wlock(wmu_);
  {
    std::lock_guard lock(mu_);
    if (!conn_.Close(code, reason))
      return FailedPrecondition("websocket: close frame already sent");
  }
  return Flush();
}

Status WsConn::SendRaw(std::string_view bytes) {
  std::lock_guard wlock(wmu_);
  return socket_->Send(bytes);
}

Result<std::optional<ws::Message>> WsConn::ReadMessage(Millis timeout) {
  std::unique_lock lock(mu_);
  auto ready = [&] {
    return !messages_.empty() || closed_ || error_.has_value() || conn_.CloseReceived();
  };
  if (!cv_.wait_for(lock, timeout, ready)) {
    return Deadline(fmt::format("no websocket message in {} ms", timeout.count()));
  }
  if (messages_.empty()) return std::optional<ws::Message>();
  ws::Message m = std::move(messages_.front());
  messages_.pop_front();
  return std::optional<ws::Message>(std::move(m));
}

bool WsConn::WaitClosed(Millis timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return closed_; });
}

bool WsConn::Closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

std::optional<uint16_t> WsConn::PeerCloseCode() const {
  std::lock_guard lock(mu_);
  if (!conn_.CloseReceived()) return std::nullopt;
  return conn_.PeerCloseCode();
}

std::string WsConn::PeerCloseReason() const {
  std::lock_guard lock(mu_);
  return conn_.PeerCloseReason();
}

std::optional<Error> WsConn::ConnectionError() const {
  std::lock_guard lock(mu_);
  if (error_ && error_->Is(Errc::kCanceled)) return std::nullopt;
  return error_;
}

void WsConn::Abort() { socket_->Abort(); }

}  // namespace berth::testing::stream

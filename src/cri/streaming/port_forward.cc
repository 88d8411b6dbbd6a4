// portforward over SPDY/3.1 and WebSocket (reference/cri.md §12): every forwarded connection
// is a socket the runtime dialled inside the pod, relayed to a data stream (or channel), with
// dial errors on the paired error stream.
#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <deque>

#include "common/log.h"
#include "cri/streaming/channel.h"
#include "cri/streaming/connection.h"
#include "cri/streaming/spdy_session.h"
#include "cri/streaming/websocket.h"

namespace berth::cri::streaming {
namespace {

// Bytes from the client queued for one pod socket before the client is no longer read.
constexpr size_t kMaxRelayBacklog = 1024 * 1024;
// After one direction ends, how long the other may go on (upstream: 1 s).
constexpr auto kLinger = std::chrono::seconds(1);

std::optional<uint16_t> ParsePort(std::string_view s) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

// One connection into the pod: reads go to `to_client` (paused while the client is backlogged),
// writes from the client are queued. Every callback comes on the io thread, never after Close().
class Relay : public std::enable_shared_from_this<Relay> {
 public:
  struct Callbacks {
    std::function<void(std::string_view)> data;  // from the pod
    std::function<void()> eof;                   // the pod closed its side (or failed)
    std::function<void(bool)> backlog;           // client input queued over the limit / drained
  };

  Relay(Connection& conn, asio::ip::tcp::socket socket, Callbacks cb)
      : conn_(conn), socket_(std::move(socket)), cb_(std::move(cb)) {}

  void Start() { Read(); }

  void Resume() {
    if (!closed_ && !read_eof_) Read();
  }

  void Write(std::string data) {
    if (closed_ || write_shut_) return;
    queued_ += data.size();
    queue_.push_back(std::move(data));
    if (!backlogged_ && queued_ > kMaxRelayBacklog) {
      backlogged_ = true;
      cb_.backlog(true);
    }
    Pump();
  }

  // The client will send no more: shut down our sending side once the queue is written.
  void CloseWrite() {
    close_write_ = true;
    Pump();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    std::error_code ec;
    socket_.close(ec);
    if (backlogged_) {
      backlogged_ = false;
      cb_.backlog(false);
    }
  }

  bool ReadEof() const { return read_eof_; }
  bool WriteDone() const { return write_shut_; }

 private:
  void Read() {
    if (reading_ || closed_ || read_eof_) return;
    if (conn_.Backlogged()) return;  // Resume() when the client drained
    reading_ = true;
    socket_.async_read_some(asio::buffer(buf_),
                            [self = shared_from_this()](std::error_code ec, size_t n) {
                              self->reading_ = false;
                              if (self->closed_) return;
                              if (ec) {
                                self->read_eof_ = true;
                                self->cb_.eof();
                                return;
                              }
                              self->cb_.data(std::string_view(self->buf_.data(), n));
                              if (!self->closed_) self->Read();
                            });
  }

  void Pump() {
    if (writing_ || closed_) return;
    if (queue_.empty()) {
      if (close_write_ && !write_shut_) {
        write_shut_ = true;
        std::error_code ec;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
      }
      return;
    }
    writing_ = true;
    asio::async_write(socket_, asio::buffer(queue_.front()),
                      [self = shared_from_this()](std::error_code ec, size_t) {
                        self->writing_ = false;
                        if (self->closed_) return;
                        if (ec) {
                          // The pod side is gone: drop what the client still sends.
                          self->queue_.clear();
                          self->queued_ = 0;
                          self->write_shut_ = true;
                        } else {
                          self->queued_ -= self->queue_.front().size();
                          self->queue_.pop_front();
                        }
                        if (self->backlogged_ && self->queued_ <= kMaxRelayBacklog / 2) {
                          self->backlogged_ = false;
                          self->cb_.backlog(false);
                        }
                        self->Pump();
                      });
  }

  Connection& conn_;
  asio::ip::tcp::socket socket_;
  Callbacks cb_;
  std::array<char, 32 * 1024> buf_{};
  std::deque<std::string> queue_;
  size_t queued_ = 0;
  bool reading_ = false, writing_ = false, read_eof_ = false, close_write_ = false,
       write_shut_ = false, closed_ = false, backlogged_ = false;
};

// Adopts a connected socket fd from the runtime.
Result<asio::ip::tcp::socket> Adopt(asio::io_context& io, int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoError(err, "getsockname of the pod connection");
  }
  asio::ip::tcp::socket s(io);
  std::error_code ec;
  s.assign(ss.ss_family == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return Unknown("adopt the pod connection: " + ec.message());
  }
  return s;
}

// Both sides of the SPDY and WebSocket protocols: dialling, back-pressure bookkeeping.
class ForwardBase : public Protocol {
 public:
  ForwardBase(Connection& conn, PortForwardRequest request)
      : conn_(conn), request_(std::move(request)) {}

  void OnCreationTimeout() override {}

 protected:
  void Dial(uint16_t port, std::function<void(Result<asio::ip::tcp::socket>)> done) {
    struct OwnedFd {
      int fd = -1;
      ~OwnedFd() {
        if (fd >= 0) ::close(fd);
      }
    };
    std::weak_ptr<Connection> weak = conn_.weak_from_this();
    conn_.Rt().DialPort(
        request_.pod_sandbox_id, port, [weak, done = std::move(done)](Result<int> fd) mutable {
          // The fd is closed with `owned` if the connection is gone before it is adopted.
          auto owned = std::make_shared<OwnedFd>();
          std::optional<Error> err;
          if (fd) {
            owned->fd = *fd;
          } else {
            err = std::move(fd).error();
          }
          auto c = weak.lock();
          if (!c) return;
          c->Post([io = &c->Io(), owned, err = std::move(err), done = std::move(done)]() mutable {
            if (err) {
              done(std::move(*err));
            } else {
              done(Adopt(*io, std::exchange(owned->fd, -1)));
            }
          });
        });
  }

  std::string DialError(uint16_t port, const Error& e) const {
    return fmt::format("error forwarding port {} to pod {}, uid : {}", port,
                       request_.pod_sandbox_id, e.ToString());
  }

  Relay::Callbacks Callbacks(std::function<void(std::string_view)> data,
                             std::function<void()> eof) {
    return {.data = std::move(data), .eof = std::move(eof), .backlog = [this](bool on) {
              blocked_ += on ? 1 : -1;
              if (blocked_ > 0) {
                conn_.PauseReading();
              } else {
                conn_.ResumeReading();
              }
            }};
  }

  Connection& conn_;
  PortForwardRequest request_;
  int blocked_ = 0;
};

// ---- SPDY: per forwarded connection, an error stream and a data stream with the same
// `requestid`.

class SpdyForward final : public ForwardBase {
 public:
  SpdyForward(Connection& conn, PortForwardRequest request)
      : ForwardBase(conn, std::move(request)),
        session_({.max_streams = conn.Options().max_streams}) {}

  void Begin() override {}

  Status Feed(std::string_view bytes) override {
    Status st = session_.Feed(bytes);
    for (auto& ev : session_.TakeEvents()) Handle(ev);
    Flush();
    return st;
  }

  void OnDrained() override {
    for (auto& [key, p] : pairs_) {
      if (p.relay) p.relay->Resume();
    }
  }

  void Shutdown() override {
    shut_ = true;
    for (auto& [key, p] : pairs_) {
      if (p.relay) p.relay->Close();
    }
  }

 private:
  struct Pair {
    uint32_t error_id = 0;
    uint32_t data_id = 0;
    uint16_t port = 0;
    bool dialing = false;
    bool client_fin = false;
    std::string early;  // client data before the dial finished
    std::shared_ptr<Relay> relay;
    std::shared_ptr<asio::steady_timer> timer;
  };

  void Handle(spdy::Event& ev) {
    using K = spdy::Event::Kind;
    switch (ev.kind) {
      case K::kStreamOpened:
        Opened(ev);
        break;
      case K::kData:
        if (auto* p = PairOf(ev.stream_id); p && ev.stream_id == p->data_id) {
          if (p->relay) {
            p->relay->Write(std::move(ev.data));
          } else {
            p->early += ev.data;
            if (p->early.size() > kMaxRelayBacklog) {
              (void)session_.Reset(p->data_id, spdy::RstStatus::kFlowControlError);
            }
          }
        }
        break;
      case K::kPeerFinished:
        if (auto* p = PairOf(ev.stream_id); p && ev.stream_id == p->data_id) {
          p->client_fin = true;
          if (p->relay) {
            p->relay->CloseWrite();
            MaybeDone(stream_key_[ev.stream_id]);
          }
        }
        break;
      case K::kStreamReset:
        if (auto it = stream_key_.find(ev.stream_id); it != stream_key_.end()) {
          Remove(it->second);
        }
        break;
      case K::kHeaders:
        break;
      case K::kGoAway:
        conn_.End();
        break;
    }
  }

  Pair* PairOf(uint32_t id) {
    auto it = stream_key_.find(id);
    if (it == stream_key_.end()) return nullptr;
    auto p = pairs_.find(it->second);
    return p == pairs_.end() ? nullptr : &p->second;
  }

  void Opened(const spdy::Event& ev) {
    const uint32_t id = ev.stream_id;
    std::string_view type = ev.headers.Get("streamtype").value_or("");
    auto port = ParsePort(ev.headers.Get("port").value_or(""));
    if ((type != "error" && type != "data") || !port) {
      log::L().Info("streaming: port-forward stream without a valid streamtype or port");
      (void)session_.Reset(id, spdy::RstStatus::kCancel);
      return;
    }
    std::string key;
    if (auto rid = ev.headers.Get("requestid")) {
      key = std::string(*rid);
    } else {
      key = fmt::format("~{}", type == "error" ? id : id - 2);
    }
    Pair& p = pairs_[key];
    uint32_t& slot = type == "error" ? p.error_id : p.data_id;
    if (slot != 0 || p.dialing || p.relay) {
      (void)session_.Reset(id, spdy::RstStatus::kCancel);  // a second stream of one kind
      return;
    }
    (void)session_.Reply(id);
    slot = id;
    p.port = *port;
    stream_key_[id] = key;
    if (p.error_id != 0 && p.data_id != 0) {
      if (p.timer) p.timer->cancel();
      Start(key);
    } else if (!p.timer) {
      p.timer = std::make_shared<asio::steady_timer>(conn_.Io());
      p.timer->expires_after(conn_.Options().stream_creation_timeout);
      p.timer->async_wait([this, key, weak = conn_.weak_from_this()](std::error_code ec) {
        auto c = weak.lock();
        if (ec || !c || shut_) return;
        auto it = pairs_.find(key);
        if (it == pairs_.end() || it->second.dialing || it->second.relay) return;
        if (it->second.error_id != 0 && session_.IsOpen(it->second.error_id)) {
          (void)session_.SendData(it->second.error_id,
                                  fmt::format("timed out waiting for the port-forward streams "
                                              "of request {}",
                                              key),
                                  true);
        }
        Remove(key);
        Flush();
      });
    }
  }

  void Start(const std::string& key) {
    Pair& p = pairs_[key];
    p.dialing = true;
    Dial(p.port, [this, key](Result<asio::ip::tcp::socket> s) {
      auto it = pairs_.find(key);
      if (it == pairs_.end() || shut_) return;  // the streams went away meanwhile
      Pair& p = it->second;
      p.dialing = false;
      if (!s) {
        std::string text = DialError(p.port, s.error());
        log::L().With("port", p.port).Info(text);
        if (session_.IsOpen(p.error_id)) (void)session_.SendData(p.error_id, text, true);
        if (session_.IsOpen(p.data_id)) (void)session_.SendData(p.data_id, "", true);
        Remove(key);
        Flush();
        return;
      }
      const uint32_t data_id = p.data_id;
      p.relay = std::make_shared<Relay>(conn_, std::move(*s),
                                        Callbacks(
                                            [this, data_id](std::string_view d) {
                                              if (session_.IsOpen(data_id))
                                                (void)session_.SendData(data_id, d);
                                              Flush();
                                            },
                                            [this, key] { MaybeDone(key); }));
      p.relay->Start();
      if (!p.early.empty()) p.relay->Write(std::exchange(p.early, {}));
      if (p.client_fin) p.relay->CloseWrite();
    });
  }

  // The pod closed its side, or the client finished sending.
  void MaybeDone(const std::string& key) {
    auto it = pairs_.find(key);
    if (it == pairs_.end() || !it->second.relay) return;
    Pair& p = it->second;
    if (p.relay->ReadEof()) {
      if (session_.IsOpen(p.data_id)) (void)session_.SendData(p.data_id, "", true);
      if (p.client_fin) {
        Finish(key);
        return;
      }
      // Give the client's side a moment to finish, then close anyway.
      if (!p.timer) p.timer = std::make_shared<asio::steady_timer>(conn_.Io());
      p.timer->expires_after(kLinger);
      p.timer->async_wait([this, key, weak = conn_.weak_from_this()](std::error_code ec) {
        auto c = weak.lock();
        if (ec || !c || shut_) return;
        Finish(key);
      });
    }
    Flush();
  }

  void Finish(const std::string& key) {
    auto it = pairs_.find(key);
    if (it == pairs_.end()) return;
    Pair& p = it->second;
    if (session_.IsOpen(p.error_id)) (void)session_.SendData(p.error_id, "", true);
    if (session_.IsOpen(p.data_id)) (void)session_.Reset(p.data_id, spdy::RstStatus::kCancel);
    Remove(key);
    Flush();
  }

  void Remove(const std::string& key) {
    auto it = pairs_.find(key);
    if (it == pairs_.end()) return;
    Pair& p = it->second;
    if (p.relay) p.relay->Close();
    if (p.timer) p.timer->cancel();
    for (uint32_t id : {p.error_id, p.data_id}) {
      if (id == 0) continue;
      stream_key_.erase(id);
      if (session_.IsOpen(id)) (void)session_.Reset(id, spdy::RstStatus::kCancel);
    }
    pairs_.erase(it);
  }

  void Flush() {
    if (!shut_) conn_.Write(session_.TakeOutput());
  }

  spdy::Session session_;
  std::map<std::string, Pair> pairs_;
  std::map<uint32_t, std::string> stream_key_;
  bool shut_ = false;
};

// ---- WebSocket: the ports come in the query; port i uses channels 2i (data) and 2i+1 (error).

class WsForward final : public ForwardBase {
 public:
  WsForward(Connection& conn, const Upgrade& upgrade, PortForwardRequest request,
            std::vector<uint16_t> ports)
      : ForwardBase(conn, std::move(request)),
        channel_(ChannelProtocolFor(upgrade.protocol).value_or(ChannelProtocol{})),
        ws_({.role = ws::Role::kServer}) {
    for (uint16_t port : ports) ports_.push_back(Port{.port = port});
  }

  void Begin() override {
    for (size_t i = 0; i < ports_.size(); ++i) {
      // Plain variables, not a structured binding: clang 14 refuses to capture bindings.
      const auto channels = PortForwardChannels(i);
      const auto data_ch = channels.first;
      const auto err_ch = channels.second;
      Send(data_ch, PortPrefix(ports_[i].port));
      Send(err_ch, PortPrefix(ports_[i].port));
      Dial(ports_[i].port, [this, i, data_ch, err_ch](Result<asio::ip::tcp::socket> s) {
        if (shut_) return;
        Port& p = ports_[i];
        if (!s) {
          Send(err_ch, DialError(p.port, s.error()));
          p.done = true;
          CheckAllDone();
          return;
        }
        p.relay = std::make_shared<Relay>(
            conn_, std::move(*s),
            Callbacks([this, data_ch](std::string_view d) { Send(data_ch, d); },
                      [this, i] {
                        ports_[i].done = true;
                        CheckAllDone();
                      }));
        p.relay->Start();
        if (!p.early.empty()) p.relay->Write(std::exchange(p.early, {}));
      });
    }
  }

  Status Feed(std::string_view bytes) override {
    std::vector<ws::Message> messages;
    Status st = ws_.Feed(bytes, messages);
    for (auto& m : messages) {
      auto decoded = DecodeChannelMessage(channel_, m.data);
      if (!decoded) {
        if (channel_.base64) continue;
        st = std::move(decoded).error();
        break;
      }
      if (!decoded->has_value() || (*decoded)->kind != ChannelMessage::Kind::kData) continue;
      ChannelMessage& cm = **decoded;
      if (cm.channel % 2 != 0 || cm.channel / 2 >= ports_.size()) continue;
      Port& p = ports_[cm.channel / 2];
      if (p.relay) {
        p.relay->Write(std::move(cm.data));
      } else if (!p.done) {
        p.early += cm.data;
        if (p.early.size() > kMaxRelayBacklog) {
          st = Error(Errc::kResourceExhausted, "port-forward: too much data before the dial");
          break;
        }
      }
    }
    Flush();
    if (ws_.CloseReceived()) conn_.End();
    return st;
  }

  void OnDrained() override {
    for (auto& p : ports_) {
      if (p.relay) p.relay->Resume();
    }
  }

  void Shutdown() override {
    shut_ = true;
    for (auto& p : ports_) {
      if (p.relay) p.relay->Close();
    }
  }

 private:
  struct Port {
    uint16_t port = 0;
    bool done = false;
    std::string early;
    std::shared_ptr<Relay> relay;
  };

  // kubelet ends the WebSocket session once every port's connection is over.
  void CheckAllDone() {
    for (const auto& p : ports_) {
      if (!p.done) return;
    }
    ws_.Close(ws::kCloseNormal);
    Flush();
    conn_.End();
  }

  void Send(uint8_t channel, std::string_view data) {
    if (shut_) return;
    std::string msg = EncodeChannelMessage(channel_, channel, data);
    if (channel_.base64) {
      ws_.SendText(msg);
    } else {
      ws_.SendBinary(msg);
    }
    Flush();
  }
  void Flush() {
    if (ws_.HasOutput() && !shut_) conn_.Write(ws_.TakeOutput());
  }

  ChannelProtocol channel_;
  ws::Connection ws_;
  std::vector<Port> ports_;
  bool shut_ = false;
};

}  // namespace

std::unique_ptr<Protocol> MakePortForward(Connection& conn, const Upgrade& upgrade,
                                          PortForwardRequest request, std::vector<uint16_t> ports) {
  if (upgrade.kind == UpgradeKind::kSpdy) {
    return std::make_unique<SpdyForward>(conn, std::move(request));
  }
  return std::make_unique<WsForward>(conn, upgrade, std::move(request), std::move(ports));
}

}  // namespace berth::cri::streaming

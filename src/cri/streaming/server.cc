// The streaming server's listener, token cache and connections up to the upgrade; the protocols
// after it are in remote_command.cc and port_forward.cc.
#include "cri/streaming/server.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <random>

#include "common/base64.h"
#include "common/log.h"
#include "cri/streaming/connection.h"
#include "cri/streaming/route.h"

namespace berth::cri::streaming {

// ---- RequestCache

RequestCache::RequestCache(size_t max_size, std::chrono::steady_clock::duration ttl, Clock clock)
    : max_size_(max_size), ttl_(ttl), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
}

namespace {

std::string NewToken() {
  std::random_device rd;
  std::string raw(6, '\0');
  for (auto& c : raw) c = static_cast<char>(rd() & 0xff);
  std::string token = Base64Encode(raw);  // 6 bytes: 8 characters, no padding
  for (auto& c : token) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return token;
}

}  // namespace

void RequestCache::Expire(std::chrono::steady_clock::time_point now) {
  std::erase_if(entries_, [now](const auto& kv) { return kv.second.expires <= now; });
}

Result<std::string> RequestCache::Insert(StreamRequest request) {
  std::lock_guard lock(mu_);
  auto now = clock_();
  Expire(now);
  if (entries_.size() >= max_size_) {
    return Error(Errc::kResourceExhausted, "maximum number of in-flight requests exceeded");
  }
  std::string token;
  do {
    token = NewToken();
  } while (entries_.contains(token));
  entries_.emplace(token, Entry{std::move(request), now + ttl_});
  return token;
}

std::optional<StreamRequest> RequestCache::Consume(std::string_view token) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return std::nullopt;
  Entry entry = std::move(it->second);
  entries_.erase(it);
  if (entry.expires <= clock_()) return std::nullopt;
  return std::move(entry.request);
}

size_t RequestCache::Size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

// ---- status

std::string StatusJson(const CommandResult& result) {
  if (result.error) {
    const std::string msg = result.error->ToString();
    nlohmann::json j = {
        {"metadata", nlohmann::json::object()},          {"status", "Failure"},
        {"message", "Internal error occurred: " + msg},  {"reason", "InternalError"},
        {"details", {{"causes", {{{"message", msg}}}}}}, {"code", 500}};
    return j.dump();
  }
  if (result.exit_code == 0) return R"({"metadata":{},"status":"Success"})";
  nlohmann::json j = {
      {"metadata", nlohmann::json::object()},
      {"status", "Failure"},
      {"message", fmt::format("command terminated with non-zero exit code: error executing "
                              "command [...], exit code {}",
                              result.exit_code)},
      {"reason", "NonZeroExitCode"},
      {"details",
       {{"causes", {{{"reason", "ExitCode"}, {"message", std::to_string(result.exit_code)}}}}}}};
  return j.dump();
}

std::string StatusText(const CommandResult& result) {
  if (result.error) return result.error->ToString();
  if (result.exit_code == 0) return "";
  return fmt::format("command terminated with non-zero exit code: exit code {}", result.exit_code);
}

// ---- Server

Server::Server(asio::io_context& io, ServerOptions options, Runtime* runtime)
    : io_(io),
      options_(std::make_shared<const ServerOptions>(std::move(options))),
      runtime_(runtime),
      acceptor_(io) {}

Result<std::unique_ptr<Server>> Server::Start(asio::io_context& io, ServerOptions options,
                                              Runtime* runtime) {
  std::unique_ptr<Server> s(new Server(io, std::move(options), runtime));
  if (s->options_->tls) {
    BERTH_ASSIGN_OR_RETURN(s->tls_, MakeTlsContext(*s->options_));
  }
  std::error_code ec;
  auto addr = asio::ip::make_address(s->options_->address, ec);
  if (ec) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("stream server address {:?}: {}", s->options_->address, ec.message()));
  }
  asio::ip::tcp::endpoint ep(addr, s->options_->port);
  if (s->acceptor_.open(ep.protocol(), ec); !ec) {
    s->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    s->acceptor_.bind(ep, ec);
    if (!ec) s->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Error(Errc::kUnavailable,
                 fmt::format("failed to listen on {}:{} for streaming: {}", s->options_->address,
                             s->options_->port, ec.message()));
  }
  auto bound = s->acceptor_.local_endpoint(ec);
  s->address_ = bound.address().to_string();
  s->port_ = bound.port();
  s->url_host_ = bound.address().is_v6() ? "[" + s->address_ + "]" : s->address_;
  asio::post(io, [weak = std::weak_ptr<bool>(s->alive_), self = s.get()] {
    if (!weak.expired()) self->Accept();
  });
  return s;
}

Server::~Server() {
  *alive_ = false;
  alive_.reset();
  std::error_code ec;
  acceptor_.close(ec);
  std::set<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard lock(mu_);
    conns.swap(connections_);
  }
  for (const auto& c : conns) c->Abort();
}

size_t Server::Connections() const {
  std::lock_guard lock(mu_);
  return connections_.size();
}

void Server::Accept() {
  acceptor_.async_accept(
      [this, weak = std::weak_ptr<bool>(alive_)](std::error_code ec, asio::ip::tcp::socket socket) {
        if (weak.expired() || ec == asio::error::operation_aborted) return;
        if (ec) {
          log::L().With("error", ec.message()).Warn("streaming server: accept");
        } else {
          std::shared_ptr<Connection> c;
          {
            std::lock_guard lock(mu_);
            if (connections_.size() < options_->max_connections) {
              c = std::make_shared<Connection>(*this, std::move(socket));
              connections_.insert(c);
            }
          }
          if (c) {
            c->Start();
          } else {
            log::L().Warn("streaming server: too many connections; one refused");
          }
        }
        Accept();
      });
}

void Server::Forget(Connection* c) {
  std::shared_ptr<Connection> keep;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == c) {
      keep = *it;
      connections_.erase(it);
      break;
    }
  }
  // Destroying `keep` here runs no user code: the protocol was shut down already.
  (void)keep;
}

Result<std::string> Server::Url(std::string_view kind, StreamRequest request) {
  BERTH_ASSIGN_OR_RETURN(std::string token, cache_.Insert(std::move(request)));
  return fmt::format("{}://{}:{}/{}/{}", tls_ ? "https" : "http", url_host_, port_, kind, token);
}

Result<std::string> Server::GetExecUrl(ExecRequest request) {
  return Url("exec", std::move(request));
}
Result<std::string> Server::GetAttachUrl(AttachRequest request) {
  return Url("attach", std::move(request));
}
Result<std::string> Server::GetPortForwardUrl(PortForwardRequest request) {
  return Url("portforward", std::move(request));
}

// ---- Connection

Connection::Connection(Server& server, asio::ip::tcp::socket socket)
    : io_(server.io_),
      options_(server.options_),
      runtime_(server.runtime_),
      server_(server),
      socket_(std::move(socket)),
      idle_timer_(server.io_),
      creation_timer_(server.io_) {}

void Connection::Start() {
  std::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  last_input_ = std::chrono::steady_clock::now();
  ArmIdle();
  // The request head must come within the stream creation timeout too.
  creation_timer_.expires_after(Options().stream_creation_timeout);
  creation_timer_.async_wait([weak = weak_from_this()](std::error_code e) {
    auto self = weak.lock();
    if (e || !self || self->closed_ || self->streams_ready_) return;
    if (self->protocol_ == nullptr) {
      self->Abort();
    } else if (!self->shut_down_) {
      self->protocol_->OnCreationTimeout();
    }
  });
  if (server_.tls_) {
    tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *server_.tls_);
    tls_->async_handshake(asio::ssl::stream_base::server,
                          [self = shared_from_this()](std::error_code e) {
                            if (self->closed_) return;
                            if (e) {
                              log::L().With("error", e.message()).Info("streaming: TLS handshake");
                              self->Abort();
                              return;
                            }
                            self->handshaken_ = true;
                            self->Read();
                          });
    return;
  }
  handshaken_ = true;
  Read();
}

void Connection::ArmIdle() {
  idle_timer_.expires_at(last_input_ + Options().idle_timeout);
  idle_timer_.async_wait([weak = weak_from_this()](std::error_code e) {
    auto self = weak.lock();
    if (e || !self || self->closed_) return;
    if (std::chrono::steady_clock::now() >= self->last_input_ + self->Options().idle_timeout) {
      log::L().Info("streaming: closing an idle connection");
      self->Abort();
    } else {
      self->ArmIdle();
    }
  });
}

void Connection::Read() {
  if (reading_ || paused_ || closed_ || ending_ || !handshaken_) return;
  reading_ = true;
  AsyncRead(asio::buffer(buffer_), [self = shared_from_this()](std::error_code ec, size_t n) {
    self->reading_ = false;
    if (self->closed_) return;
    if (ec) {
      self->Abort();  // the client is gone
      return;
    }
    self->OnRead(n);
  });
}

template <class Buffer, class Handler>
void Connection::AsyncRead(const Buffer& b, Handler&& h) {
  if (tls_) {
    tls_->async_read_some(b, std::forward<Handler>(h));
  } else {
    socket_.async_read_some(b, std::forward<Handler>(h));
  }
}

template <class Buffer, class Handler>
void Connection::AsyncWrite(const Buffer& b, Handler&& h) {
  if (tls_) {
    asio::async_write(*tls_, b, std::forward<Handler>(h));
  } else {
    asio::async_write(socket_, b, std::forward<Handler>(h));
  }
}

void Connection::OnRead(size_t n) {
  last_input_ = std::chrono::steady_clock::now();
  std::string_view bytes(buffer_.data(), n);
  Status st = protocol_ == nullptr ? FeedHead(bytes) : protocol_->Feed(bytes);
  if (!st) {
    log::L().WithError(st.error()).Info("streaming: closing a connection");
    End();
    return;
  }
  Read();
}

Status Connection::FeedHead(std::string_view bytes) {
  auto done = parser_.Feed(bytes);
  if (!done) {
    Refuse(http::RefusalForParseError(done.error()));
    return Ok();
  }
  if (!*done) return Ok();
  http::Request request = parser_.TakeRequest();
  std::string leftover = parser_.TakeLeftover();

  auto routed = ParseRoute(request.method, request.path);
  if (auto* refusal = std::get_if<http::Refusal>(&routed)) {
    Refuse(*refusal);
    return Ok();
  }
  const Route& route = std::get<Route>(routed);
  std::optional<StreamRequest> cached = server_.cache_.Consume(route.token);
  const bool kind_matches =
      cached.has_value() &&
      ((route.kind == RouteKind::kExec && std::holds_alternative<ExecRequest>(*cached)) ||
       (route.kind == RouteKind::kAttach && std::holds_alternative<AttachRequest>(*cached)) ||
       (route.kind == RouteKind::kPortForward &&
        std::holds_alternative<PortForwardRequest>(*cached)));
  if (!kind_matches) {
    Refuse(http::Refusal{.status = 404, .text = "404 page not found"});
    return Ok();
  }
  std::vector<uint16_t> ports;
  if (route.kind == RouteKind::kPortForward && IsWebSocketRequest(request)) {
    auto parsed = ParsePortForwardPorts(request);
    if (!parsed) {
      Refuse(http::Refusal{.status = 400, .text = parsed.error().ToString()});
      return Ok();
    }
    ports = std::move(*parsed);
  }
  auto negotiated = NegotiateUpgrade(request, route.kind);
  if (auto* refusal = std::get_if<http::Refusal>(&negotiated)) {
    Refuse(*refusal);
    return Ok();
  }
  Upgrade& upgrade = std::get<Upgrade>(negotiated);
  Write(std::move(upgrade.response));
  if (route.kind == RouteKind::kPortForward) {
    protocol_ = MakePortForward(*this, upgrade, std::get<PortForwardRequest>(std::move(*cached)),
                                std::move(ports));
    // Port-forward streams come and go for the whole session; each pair has its own timer.
    StreamsReady();
  } else {
    protocol_ = MakeRemoteCommand(*this, upgrade, std::move(*cached));
    // The remote command's streams must all be open within the creation timeout (re-armed:
    // it ran for the head until now).
    creation_timer_.expires_after(Options().stream_creation_timeout);
    creation_timer_.async_wait([weak = weak_from_this()](std::error_code e) {
      auto self = weak.lock();
      if (e || !self || self->closed_ || self->streams_ready_ || self->shut_down_) return;
      self->protocol_->OnCreationTimeout();
    });
  }
  protocol_->Begin();
  if (!leftover.empty() && !Ending()) return protocol_->Feed(leftover);
  return Ok();
}

void Connection::Refuse(const http::Refusal& refusal) {
  Write(refusal.Bytes());
  End();
}

void Connection::Write(std::string bytes) {
  if (closed_ || bytes.empty()) return;
  pending_ += bytes.size();
  out_ += bytes;
  Flush();
}

void Connection::Flush() {
  if (!writing_.empty() || closed_ || !handshaken_) return;
  if (out_.empty()) {
    if (ending_) Close();
    return;
  }
  writing_ = std::move(out_);
  out_.clear();
  AsyncWrite(asio::buffer(writing_), [self = shared_from_this()](std::error_code ec, size_t) {
    if (self->closed_) return;
    if (ec) {
      self->Abort();
      return;
    }
    const bool was_backlogged = self->Backlogged();
    self->pending_ -= self->writing_.size();
    self->writing_.clear();
    if (was_backlogged && !self->Backlogged() && self->protocol_ && !self->shut_down_) {
      self->protocol_->OnDrained();
    }
    self->Flush();
  });
}

void Connection::PauseReading() { paused_ = true; }

void Connection::ResumeReading() {
  if (!paused_) return;
  paused_ = false;
  Read();
}

void Connection::StreamsReady() {
  streams_ready_ = true;
  creation_timer_.cancel();
}

void Connection::ShutdownProtocol() {
  if (shut_down_) return;
  shut_down_ = true;
  if (protocol_) protocol_->Shutdown();
}

void Connection::End() {
  if (closed_ || ending_) return;
  ending_ = true;
  ShutdownProtocol();
  Flush();
}

void Connection::Abort() {
  if (closed_) return;
  ShutdownProtocol();
  Close();
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  ShutdownProtocol();
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  idle_timer_.cancel();
  creation_timer_.cancel();
  // Drop the protocol on the io thread after the handlers in flight (they hold a reference).
  asio::post(io_, [self = shared_from_this(), alive = std::weak_ptr<bool>(server_.alive_)] {
    if (!alive.expired()) self->server_.Forget(self.get());
  });
}

}  // namespace berth::cri::streaming

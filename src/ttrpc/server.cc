// ttrpc server: one read loop and one write queue per connection, all on the io thread.
//
// Requests are dispatched to handlers as they arrive; each handler answers through a Responder,
// possibly later and from another thread, so responses leave in any order. Frames never
// interleave: every write goes through the connection's queue, and only the io thread touches it.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <set>

#include "common/log.h"
#include "ttrpc/internal.h"
#include "ttrpc/ttrpc.h"
#include "ttrpc/ttrpc.pb.h"

namespace berth::ttrpc {
namespace internal {
class ServerConn;
}  // namespace internal

// Where a Responder's answer goes.
struct Responder::State {
  std::weak_ptr<internal::ServerConn> conn;
  uint32_t stream_id = 0;
  asio::io_context* io = nullptr;
};

namespace internal {
namespace {

constexpr int kGrpcOk = 0;
constexpr int kGrpcInvalidArgument = 3;
constexpr int kGrpcResourceExhausted = 8;
constexpr int kGrpcUnimplemented = 12;

using Socket = asio::local::stream_protocol::socket;
using Acceptor = asio::local::stream_protocol::acceptor;

}  // namespace

// What Server::Impl is; a separate name so connections and responders can refer to it.
struct ServerCore : std::enable_shared_from_this<ServerCore> {
  explicit ServerCore(asio::io_context& io_context) : io(io_context), acceptor(io_context) {}

  asio::io_context& io;
  // service -> method -> handler. Written by Register() before serving (or on the io thread).
  std::map<std::string, std::map<std::string, Server::Handler, std::less<>>, std::less<>> services;
  Acceptor acceptor;
  std::set<std::shared_ptr<ServerConn>> conns;
  bool shutting_down = false;
  std::function<void()> done;

  void Accept();
  void Remove(const std::shared_ptr<ServerConn>& conn);
  void MaybeDone();
  void CloseAll();
};

class ServerConn : public std::enable_shared_from_this<ServerConn> {
 public:
  ServerConn(std::shared_ptr<ServerCore> server, Socket socket)
      : server_(std::move(server)), socket_(std::move(socket)) {}

  void Start() { ReadHeader(); }

  // io thread: queues the response to one dispatched request (the end of that call).
  void Answer(uint32_t stream_id, std::string response) {
    if (active_ > 0) {
      --active_;
    }
    if (closed_) {
      return;
    }
    Send(stream_id, std::move(response));
    if (close_when_idle_ && active_ == 0 && !writing_) {
      Close();
    }
  }

  // io thread: closes now when idle, else once the last in-flight call is answered and written.
  void CloseWhenIdle() {
    close_when_idle_ = true;
    if (active_ == 0 && !writing_) {
      Close();
    }
  }

  // io thread: closes the socket; later answers are dropped. Idempotent.
  void Close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    asio::error_code ec;
    socket_.shutdown(Socket::shutdown_both, ec);
    socket_.close(ec);
    writes_.clear();
    server_->Remove(shared_from_this());
  }

  asio::io_context& Io() { return server_->io; }

 private:
  void ReadHeader() {
    asio::async_read(socket_, asio::buffer(header_),
                     [self = shared_from_this()](const asio::error_code& ec, size_t) {
                       if (ec) {
                         self->OnReadError(ec);
                         return;
                       }
                       self->OnHeader(DecodeHeader(self->header_.data()));
                     });
  }

  void OnHeader(const FrameHeader& header) {
    if (header.length > kMaxMessageLength) {
      Discard(header, header.length);
      return;
    }
    body_.resize(header.length);
    if (header.length == 0) {
      OnFrame(header);
      return;
    }
    asio::async_read(socket_, asio::buffer(body_),
                     [self = shared_from_this(), header](const asio::error_code& ec, size_t) {
                       if (ec) {
                         self->OnReadError(ec);
                         return;
                       }
                       self->OnFrame(header);
                     });
  }

  // Reads and drops an oversize frame's data in small chunks, then refuses it on its stream.
  void Discard(const FrameHeader& header, uint32_t remaining) {
    if (remaining == 0) {
      Send(header.stream_id,
           MakeResponse(kGrpcResourceExhausted,
                        "message length " + std::to_string(header.length) +
                            " exceed maximum message size of " + std::to_string(kMaxMessageLength),
                        ""));
      ReadHeader();
      return;
    }
    constexpr size_t kChunk = 16 * 1024;
    auto buf = std::make_shared<std::array<char, kChunk>>();
    size_t n = std::min<size_t>(remaining, kChunk);
    asio::async_read(socket_, asio::buffer(buf->data(), n),
                     [self = shared_from_this(), header, remaining, buf](const asio::error_code& ec,
                                                                         size_t got) {
                       if (ec) {
                         self->OnReadError(ec);
                         return;
                       }
                       self->Discard(header, remaining - static_cast<uint32_t>(got));
                     });
  }

  void OnFrame(const FrameHeader& header) {
    std::string body = std::move(body_);
    body_ = std::string();  // keep no buffer between frames
    if (closed_) {
      return;
    }
    if (header.type == MessageType::kRequest) {
      Dispatch(header.stream_id, body);
    }                // other types: ignored, for forward compatibility
    if (!closed_) {  // a handler may have shut the server down
      ReadHeader();
    }
  }

  void Dispatch(uint32_t stream_id, const std::string& body) {
    wire::Request req;
    if (!req.ParseFromString(body)) {
      Send(stream_id, MakeResponse(kGrpcInvalidArgument,
                                   "unmarshal request error: invalid protobuf message", ""));
      return;
    }
    if (stream_id % 2 != 1) {
      Send(stream_id, MakeResponse(kGrpcInvalidArgument,
                                   "StreamID must be odd for client initiated streams", ""));
      return;
    }
    auto service = server_->services.find(req.service());
    if (service == server_->services.end()) {
      Send(stream_id, MakeResponse(kGrpcUnimplemented, "service " + req.service(), ""));
      return;
    }
    auto method = service->second.find(req.method());
    if (method == service->second.end()) {
      Send(stream_id, MakeResponse(kGrpcUnimplemented, "method " + req.method(), ""));
      return;
    }
    CallContext ctx{.service = std::move(*req.mutable_service()),
                    .method = std::move(*req.mutable_method())};
    for (auto& kv : *req.mutable_metadata()) {
      ctx.metadata.Add(kv.key(), std::move(*kv.mutable_value()));
    }
    if (req.timeout_nano() != 0) {
      ctx.deadline = std::chrono::steady_clock::now() +
                     std::chrono::nanoseconds(std::max<int64_t>(req.timeout_nano(), 0));
    }
    ++active_;
    auto state = std::make_shared<Responder::State>();
    state->conn = weak_from_this();
    state->stream_id = stream_id;
    state->io = &server_->io;
    method->second(std::move(ctx), std::move(*req.mutable_payload()), Responder(std::move(state)));
  }

  void OnReadError(const asio::error_code& ec) {
    if (ec != asio::error::eof && ec != asio::error::connection_reset &&
        ec != asio::error::operation_aborted && ec != asio::error::bad_descriptor) {
      log::L().With("error", ec.message()).Warn("ttrpc: error receiving message");
    }
    Close();
  }

  // io thread: queues one frame; `body` is a serialized Response.
  void Send(uint32_t stream_id, std::string body) {
    if (closed_) {
      return;
    }
    if (body.size() > kMaxMessageLength) {
      body =
          MakeResponse(kGrpcResourceExhausted,
                       "message length " + std::to_string(body.size()) +
                           " exceed maximum message size of " + std::to_string(kMaxMessageLength),
                       "");
    }
    writes_.push_back(MakeFrame(stream_id, MessageType::kResponse, body));
    if (!writing_) {
      WriteNext();
    }
  }

  void WriteNext() {
    if (writes_.empty() || closed_) {
      writing_ = false;
      if (close_when_idle_ && active_ == 0) {
        Close();
      }
      return;
    }
    writing_ = true;
    asio::async_write(
        socket_, asio::buffer(writes_.front()),
        [self = shared_from_this()](const asio::error_code& ec, size_t) {
          if (self->closed_) {
            return;
          }
          if (ec) {
            log::L().With("error", ec.message()).Warn("ttrpc: failed sending message on channel");
            self->Close();
            return;
          }
          self->writes_.pop_front();
          self->WriteNext();
        });
  }

  std::shared_ptr<ServerCore> server_;
  Socket socket_;
  std::array<uint8_t, kHeaderLength> header_{};
  std::string body_;
  std::deque<std::string> writes_;
  bool writing_ = false;
  size_t active_ = 0;  // dispatched calls not yet answered
  bool closed_ = false;
  bool close_when_idle_ = false;
};

void ServerCore::Accept() {
  acceptor.async_accept([self = shared_from_this()](const asio::error_code& ec, Socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || self->shutting_down) {
        return;
      }
      if (ec == asio::error::connection_aborted || ec == asio::error::interrupted) {
        self->Accept();  // that peer gave up: next
        return;
      }
      log::L().With("error", ec.message()).Error("ttrpc: accept failed");
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
          ec == asio::error::no_memory) {
        // Out of resources: keep serving, after a pause so the log is not flooded.
        auto timer = std::make_shared<asio::steady_timer>(self->io, std::chrono::milliseconds(100));
        timer->async_wait([self, timer](const asio::error_code& wait_ec) {
          if (!wait_ec && !self->shutting_down) {
            self->Accept();
          }
        });
      }
      return;
    }
    if (self->shutting_down) {
      return;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      log::L().With("error", std::strerror(errno)).Warn("ttrpc: SO_PEERCRED failed, refused");
    } else if (cred.uid != ::geteuid() || cred.gid != ::getegid()) {
      log::L()
          .With("uid", static_cast<long long>(cred.uid))
          .With("gid", static_cast<long long>(cred.gid))
          .Warn("ttrpc: peer credentials do not match this process, refused");
    } else {
      auto conn = std::make_shared<ServerConn>(self, std::move(socket));
      self->conns.insert(conn);
      conn->Start();
    }
    self->Accept();
  });
}

void ServerCore::Remove(const std::shared_ptr<ServerConn>& conn) {
  conns.erase(conn);
  MaybeDone();
}

void ServerCore::MaybeDone() {
  if (shutting_down && conns.empty() && done) {
    auto fn = std::move(done);
    done = nullptr;
    fn();
  }
}

void ServerCore::CloseAll() {
  asio::error_code ec;
  acceptor.close(ec);
  auto copy = conns;
  for (const auto& conn : copy) {
    conn->Close();
  }
}

}  // namespace internal

// ---- Responder ----

namespace {

void Deliver(std::shared_ptr<Responder::State> state, std::string response) {
  auto conn = state->conn.lock();
  if (!conn) {
    return;  // connection gone: the answer is dropped
  }
  // Answer on the io thread, inline if we already are on it (keeps order and saves a hop).
  asio::dispatch(*state->io,
                 [conn, stream_id = state->stream_id, response = std::move(response)]() mutable {
                   conn->Answer(stream_id, std::move(response));
                 });
}

}  // namespace

Responder::~Responder() {
  if (state_) {
    Fail(Error(Errc::kUnknown, "no response"));
  }
}

void Responder::Reply(std::string payload) {
  if (!state_) {
    return;
  }
  Deliver(std::exchange(state_, nullptr), internal::MakeResponse(0, "", payload));
}

void Responder::Fail(const Error& error) {
  if (!state_) {
    return;
  }
  Deliver(std::exchange(state_, nullptr),
          internal::MakeResponse(ErrcToGrpcCode(error.Code()), error.ToString(), ""));
}

// ---- Server ----

struct Server::Impl : internal::ServerCore {
  using ServerCore::ServerCore;
};

Server::Server(asio::io_context& io) : impl_(std::make_shared<Impl>(io)) {}

Server::~Server() {
  // Must run on the io thread or while the io_context is not running (see the header).
  impl_->shutting_down = true;
  impl_->done = nullptr;
  impl_->CloseAll();
}

void Server::Register(std::string service, std::string method, Handler handler) {
  impl_->services[std::move(service)][std::move(method)] = std::move(handler);
}

Result<fs::UniqueFd> Server::Listen(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(auto addr, internal::ParseAddress(path));
  if (path.starts_with("@") || path.starts_with("unix://@")) {
    return InvalidArgument("ttrpc: Listen wants a socket file path, not " + path);
  }
  std::string file = addr.addr.sun_path;
  auto parent = std::filesystem::path(file).parent_path();
  if (!parent.empty()) {
    BERTH_TRY(fs::MkdirAll(parent.string(), 0711));
  }
  fs::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) {
    return ErrnoError(errno, "ttrpc: socket");
  }
  struct stat st {};
  if (::lstat(file.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return AlreadyExists("ttrpc: " + file + " exists and is not a socket");
    }
    fs::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.Valid() &&
        ::connect(probe.Get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len) == 0) {
      return AlreadyExists("ttrpc: socket " + file + " is in use");
    }
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError(errno, "ttrpc: remove stale socket " + file);
    }
  }
  // Bind with a restrictive umask so the socket is never reachable by others, then chmod.
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.Get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len);
  int err = errno;
  ::umask(old);
  if (rc != 0) {
    return ErrnoError(err, "ttrpc: bind " + file);
  }
  if (::chmod(file.c_str(), 0600) != 0) {
    return ErrnoError(errno, "ttrpc: chmod " + file);
  }
  if (::listen(fd.Get(), SOMAXCONN) != 0) {
    return ErrnoError(errno, "ttrpc: listen " + file);
  }
  return fd;
}

Status Server::Serve(fs::UniqueFd listener) {
  asio::error_code ec;
  impl_->acceptor.assign(asio::local::stream_protocol(), listener.Get(), ec);
  if (ec) {
    return Unknown("ttrpc: serve: " + ec.message());
  }
  listener.Release();
  asio::post(impl_->io, [core = impl_]() { core->Accept(); });
  return Ok();
}

void Server::Shutdown(std::function<void()> done) {
  asio::dispatch(impl_->io, [core = impl_, done = std::move(done)]() mutable {
    core->shutting_down = true;
    core->done = std::move(done);
    asio::error_code ec;
    core->acceptor.close(ec);
    auto copy = core->conns;
    for (const auto& conn : copy) {
      conn->CloseWhenIdle();
    }
    core->MaybeDone();
  });
}

}  // namespace berth::ttrpc

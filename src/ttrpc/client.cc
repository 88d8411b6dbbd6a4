// ttrpc client: one connection, a read loop matching responses to pending calls by stream id and
// a write queue, all on the io thread. Callers on other threads hand work over with asio::post.
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <deque>
#include <future>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "ttrpc/internal.h"
#include "ttrpc/ttrpc.h"
#include "ttrpc/ttrpc.pb.h"

namespace berth::ttrpc {
namespace {

using Socket = asio::local::stream_protocol::socket;

Error ClosedError() { return Unavailable("ttrpc: closed"); }

std::string FullMethod(std::string_view service, std::string_view method) {
  std::string out = "/";
  out.append(service).append("/").append(method);
  return out;
}

}  // namespace

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  Impl(asio::io_context& io_context, Socket s) : io(io_context), socket(std::move(s)) {}

  struct Pending {
    Callback done;
    std::string method;                         // "/service/method", for errors
    std::unique_ptr<asio::steady_timer> timer;  // only for calls with a timeout
  };

  asio::io_context& io;
  Socket socket;
  std::atomic<bool> closed{false};  // set by Close() or on loss; read from any thread
  // Everything below: io thread only.
  std::array<uint8_t, kHeaderLength> header{};
  std::string body;
  std::deque<std::string> writes;
  bool writing = false;
  bool shut = false;  // socket closed, pending failed
  bool lost = false;  // shut because the connection failed (not Close())
  uint32_t next_stream_id = 1;
  std::unordered_map<uint32_t, Pending> pending;
  std::function<void()> on_close;

  void ReadHeader() {
    asio::async_read(socket, asio::buffer(header),
                     [self = shared_from_this()](const asio::error_code& ec, size_t) {
                       if (ec) {
                         self->Shut(/*connection_lost=*/true);
                         return;
                       }
                       self->OnHeader(DecodeHeader(self->header.data()));
                     });
  }

  void OnHeader(const FrameHeader& h) {
    if (h.length > kMaxMessageLength) {
      Discard(h, h.length);
      return;
    }
    body.resize(h.length);
    asio::async_read(socket, asio::buffer(body),
                     [self = shared_from_this(), h](const asio::error_code& ec, size_t) {
                       if (ec) {
                         self->Shut(/*connection_lost=*/true);
                         return;
                       }
                       std::string data = std::move(self->body);
                       self->body = std::string();
                       if (h.type == MessageType::kResponse) {
                         self->OnResponse(h.stream_id, data);
                       }
                       if (!self->shut) {
                         self->ReadHeader();
                       }
                     });
  }

  // An oversize response: drop its data, fail its call.
  void Discard(const FrameHeader& h, uint32_t remaining) {
    if (remaining == 0) {
      Finish(h.stream_id,
             Error(Errc::kResourceExhausted, "message length " + std::to_string(h.length) +
                                                 " exceed maximum message size of " +
                                                 std::to_string(kMaxMessageLength)));
      if (!shut) {
        ReadHeader();
      }
      return;
    }
    constexpr size_t kChunk = 16 * 1024;
    auto buf = std::make_shared<std::array<char, kChunk>>();
    asio::async_read(
        socket, asio::buffer(buf->data(), std::min<size_t>(remaining, kChunk)),
        [self = shared_from_this(), h, remaining, buf](const asio::error_code& ec, size_t got) {
          if (ec) {
            self->Shut(/*connection_lost=*/true);
            return;
          }
          self->Discard(h, remaining - static_cast<uint32_t>(got));
        });
  }

  void OnResponse(uint32_t stream_id, const std::string& data) {
    wire::Response resp;
    if (!resp.ParseFromString(data)) {
      Finish(stream_id, Unknown("ttrpc: unmarshal response"));
      return;
    }
    if (resp.has_status() && resp.status().code() != 0) {
      Finish(stream_id, ErrorFromGrpc(resp.status().code(), resp.status().message()));
      return;
    }
    Finish(stream_id, std::move(*resp.mutable_payload()));
  }

  // Completes the call on `stream_id`, if still pending (unknown ids are dropped).
  void Finish(uint32_t stream_id, Result<std::string> result) {
    auto it = pending.find(stream_id);
    if (it == pending.end()) {
      return;
    }
    Pending p = std::move(it->second);
    pending.erase(it);
    if (p.timer) {
      p.timer->cancel();
    }
    p.done(std::move(result));
  }

  // io thread: assigns the next stream id and queues the request frame.
  void Start(std::string request, std::string method, std::chrono::milliseconds timeout,
             Callback done) {
    if (shut) {
      done(ClosedError());
      return;
    }
    uint32_t id = next_stream_id;
    next_stream_id += 2;
    Pending p{.done = std::move(done), .method = std::move(method)};
    if (timeout.count() > 0) {
      p.timer = std::make_unique<asio::steady_timer>(io, timeout);
      p.timer->async_wait([weak = weak_from_this(), id](const asio::error_code& ec) {
        auto self = weak.lock();
        if (ec || !self) {
          return;
        }
        auto it = self->pending.find(id);
        if (it == self->pending.end()) {
          return;
        }
        std::string m = it->second.method;
        self->Finish(id, Error(Errc::kDeadlineExceeded, "ttrpc: " + m));
      });
    }
    pending.emplace(id, std::move(p));
    writes.push_back(internal::MakeFrame(id, MessageType::kRequest, request));
    if (!writing) {
      WriteNext();
    }
  }

  void WriteNext() {
    if (writes.empty() || shut) {
      writing = false;
      return;
    }
    writing = true;
    asio::async_write(socket, asio::buffer(writes.front()),
                      [self = shared_from_this()](const asio::error_code& ec, size_t) {
                        if (self->shut) {
                          return;
                        }
                        if (ec) {
                          self->Shut(/*connection_lost=*/true);
                          return;
                        }
                        self->writes.pop_front();
                        self->WriteNext();
                      });
  }

  // io thread: closes the socket and fails every pending call; runs on_close on loss. Idempotent.
  void Shut(bool connection_lost) {
    if (shut) {
      return;
    }
    shut = true;
    lost = connection_lost && !closed.load();
    closed.store(true);
    asio::error_code ec;
    socket.shutdown(Socket::shutdown_both, ec);
    socket.close(ec);
    writes.clear();
    auto calls = std::move(pending);
    pending.clear();
    for (auto& [id, p] : calls) {
      if (p.timer) {
        p.timer->cancel();
      }
      p.done(ClosedError());
    }
    // Dropped either way: it may hold the Client (a cycle through this Impl).
    auto fn = std::move(on_close);
    on_close = nullptr;
    if (lost && fn) {
      fn();
    }
  }
};

Result<std::shared_ptr<Client>> Client::Connect(asio::io_context& io, std::string_view address,
                                                std::chrono::milliseconds timeout) {
  BERTH_ASSIGN_OR_RETURN(auto addr, internal::ParseAddress(address));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  fs::UniqueFd fd;
  while (true) {
    fd.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.Valid()) {
      return ErrnoError(errno, "ttrpc: socket");
    }
    // A full backlog makes connect() wait; bound the wait by the time left.
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() > 0) {
      timeval tv{.tv_sec = static_cast<time_t>(left.count() / 1000000),
                 .tv_usec = static_cast<suseconds_t>(left.count() % 1000000)};
      ::setsockopt(fd.Get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (::connect(fd.Get(), reinterpret_cast<const sockaddr*>(&addr.addr), addr.len) == 0) {
      break;
    }
    int err = errno;
    // The socket file may not exist yet (a shim still starting): retry until the deadline, as
    // containerd's dialer does.
    if (err == ENOENT &&
        std::chrono::steady_clock::now() + std::chrono::milliseconds(10) < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    if (err == EAGAIN || err == EINPROGRESS) {
      return Error(Errc::kDeadlineExceeded, "ttrpc: dial " + std::string(address));
    }
    return ErrnoError(err, "ttrpc: dial " + std::string(address));
  }
  timeval zero{};
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof(zero));

  Socket socket(io);
  asio::error_code ec;
  socket.assign(asio::local::stream_protocol(), fd.Get(), ec);
  if (ec) {
    return Unknown("ttrpc: dial " + std::string(address) + ": " + ec.message());
  }
  fd.Release();
  auto impl = std::make_shared<Impl>(io, std::move(socket));
  asio::post(io, [impl]() { impl->ReadHeader(); });
  return std::make_shared<Client>(std::move(impl));
}

Client::~Client() { Close(); }

void Client::CallAsync(std::string_view service, std::string_view method, std::string payload,
                       const Metadata& metadata, std::chrono::milliseconds timeout, Callback done) {
  wire::Request req;
  req.set_service(std::string(service));
  req.set_method(std::string(method));
  req.set_payload(std::move(payload));
  if (timeout.count() > 0) {
    req.set_timeout_nano(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count());
  }
  for (const auto& [k, v] : metadata.Entries()) {
    auto* kv = req.add_metadata();
    kv->set_key(k);
    kv->set_value(v);
  }
  std::string request = req.SerializeAsString();
  if (request.size() > kMaxMessageLength) {
    Error err(Errc::kResourceExhausted, "message length " + std::to_string(request.size()) +
                                            " exceed maximum message size of " +
                                            std::to_string(kMaxMessageLength));
    asio::post(impl_->io, [done = std::move(done), err = std::move(err)]() { done(err); });
    return;
  }
  asio::post(impl_->io,
             [impl = impl_, request = std::move(request), m = FullMethod(service, method), timeout,
              done = std::move(done)]() mutable {
               impl->Start(std::move(request), std::move(m), timeout, std::move(done));
             });
}

namespace {

// Fulfils a blocking call exactly once, even if the io_context drops the callback unrun.
struct Waiter {
  std::promise<Result<std::string>> promise;
  bool set = false;
  void Set(Result<std::string> r) {
    if (!set) {
      set = true;
      promise.set_value(std::move(r));
    }
  }
  ~Waiter() { Set(ClosedError()); }
};

}  // namespace

Result<std::string> Client::Call(std::string_view service, std::string_view method,
                                 std::string payload, const Metadata& metadata,
                                 std::chrono::milliseconds timeout) {
  BERTH_CHECK(!impl_->io.get_executor().running_in_this_thread(),
              "ttrpc: Client::Call on the io thread would deadlock; use CallAsync");
  auto waiter = std::make_shared<Waiter>();
  auto future = waiter->promise.get_future();
  CallAsync(service, method, std::move(payload), metadata, timeout,
            [waiter](Result<std::string> r) { waiter->Set(std::move(r)); });
  waiter.reset();
  return future.get();
}

void Client::OnClose(std::function<void()> fn) {
  asio::post(impl_->io, [impl = impl_, fn = std::move(fn)]() mutable {
    if (impl->shut) {
      if (impl->lost) {
        fn();
      }
      return;
    }
    impl->on_close = std::move(fn);
  });
}

void Client::Close() {
  impl_->closed.store(true);
  asio::post(impl_->io, [impl = impl_]() { impl->Shut(/*connection_lost=*/false); });
}

bool Client::Closed() const { return impl_->closed.load(); }

}  // namespace berth::ttrpc

#pragma once
// ttrpc: containerd's small RPC protocol between the daemon and its shims (v1.1, unary only; wire
// facts in docs/ttrpc.md). Frames are a 10-byte big-endian header (length, stream id, type,
// flags) followed by a protobuf Request or Response (src/ttrpc/ttrpc.proto).
//
// Both ends run on an asio::io_context the caller owns and drives. The shim runs one thread; the
// daemon runs one io thread for all its shim connections and calls Client::Call() from other
// threads. The io_context must be run by exactly one thread: connection state is only touched
// there, without locks. The library starts no threads of its own and keeps no buffers between
// frames.
#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/errdefs.h"
#include "common/fs.h"

namespace berth::ttrpc {

inline constexpr uint32_t kMaxMessageLength = 4u << 20;
inline constexpr size_t kHeaderLength = 10;
// Metadata key carrying the namespace on ttrpc (the gRPC one is "containerd-namespace").
inline constexpr std::string_view kNamespaceKey = "containerd-namespace-ttrpc";

enum class MessageType : uint8_t { kRequest = 1, kResponse = 2, kData = 3 };

struct FrameHeader {
  uint32_t length = 0;
  uint32_t stream_id = 0;
  MessageType type = MessageType::kRequest;
  uint8_t flags = 0;
};
void EncodeHeader(const FrameHeader& header, uint8_t out[kHeaderLength]);
FrameHeader DecodeHeader(const uint8_t in[kHeaderLength]);

// Request metadata: keys are lower-cased on Add; a key may repeat.
class Metadata {
 public:
  void Add(std::string_view key, std::string value);
  // First value of `key`, if any.
  std::optional<std::string> Get(std::string_view key) const;
  const std::vector<std::pair<std::string, std::string>>& Entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// What a handler knows about the call it serves.
struct CallContext {
  std::string service;  // "containerd.task.v2.Task"
  std::string method;   // "Create"
  Metadata metadata;
  // From the request's timeout_nano; unset = none.
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

// Answers one call exactly once, now or later, from any thread. Dropping a Responder without
// answering replies Unknown "no response". Answers on a closed connection are dropped.
class Responder {
 public:
  Responder() = default;
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept = default;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  // Success with a serialized response message.
  void Reply(std::string payload);
  // Failure: the Error's class becomes the status code (errdefs mapping), ToString() the message.
  void Fail(const Error& error);
  bool Answered() const { return state_ == nullptr; }

  struct State;  // implementation detail (connection + stream id)
  explicit Responder(std::shared_ptr<State> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

// A Responder for a typed response message.
template <class Resp>
class TypedResponder {
 public:
  explicit TypedResponder(Responder r) : r_(std::move(r)) {}
  void Reply(const Resp& resp) { r_.Reply(resp.SerializeAsString()); }
  void Fail(const Error& error) { r_.Fail(error); }
  void Finish(const Result<Resp>& result) {
    if (result) {
      Reply(*result);
    } else {
      Fail(result.error());
    }
  }

 private:
  Responder r_;
};

class Server {
 public:
  using Handler = std::function<void(CallContext ctx, std::string payload, Responder responder)>;

  explicit Server(asio::io_context& io);
  // Closes the listener and every connection at once (in-flight answers are dropped). Destroy it
  // on the io thread or while the io_context is not running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Registers a raw handler for service/method. Handlers run on the io thread. Register before
  // Serve() (or on the io thread).
  //
  // Server-side errors, as containerd's ttrpc sends them: unknown service/method -> Unimplemented
  // "service X" / "method Y"; even stream id or undecodable Request -> InvalidArgument; frame
  // over kMaxMessageLength -> ResourceExhausted on that stream (the data is discarded and the
  // connection stays up). Frames that are not requests are ignored.
  void Register(std::string service, std::string method, Handler handler);

  // fn(const CallContext&, const Req&) -> Result<Resp>, answered when it returns.
  template <class Req, class Resp, class Fn>
  void RegisterUnary(std::string service, std::string method, Fn fn) {
    Register(std::move(service), std::move(method),
             [fn = std::move(fn)](CallContext ctx, std::string payload, Responder r) {
               Req req;
               if (!req.ParseFromString(payload)) {
                 r.Fail(Error(Errc::kUnknown, "ttrpc: unmarshal request payload of " + ctx.service +
                                                  "/" + ctx.method));
                 return;
               }
               TypedResponder<Resp>(std::move(r)).Finish(fn(ctx, req));
             });
  }

  // fn(const CallContext&, const Req&, TypedResponder<Resp>) answers whenever it likes (Wait).
  template <class Req, class Resp, class Fn>
  void RegisterAsync(std::string service, std::string method, Fn fn) {
    Register(std::move(service), std::move(method),
             [fn = std::move(fn)](CallContext ctx, std::string payload, Responder r) {
               Req req;
               if (!req.ParseFromString(payload)) {
                 r.Fail(Error(Errc::kUnknown, "ttrpc: unmarshal request payload of " + ctx.service +
                                                  "/" + ctx.method));
                 return;
               }
               fn(ctx, req, TypedResponder<Resp>(std::move(r)));
             });
  }

  // Creates a listening unix socket at `path` (parent dirs 0711, socket 0600; a stale socket
  // file nobody answers on is replaced, a live one is AlreadyExists).
  static Result<fs::UniqueFd> Listen(const std::string& path);
  // Serves connections accepted on `listener` (takes ownership). Peers whose uid/gid differ from
  // this process's effective ids are refused (SO_PEERCRED), as containerd's shims do.
  Status Serve(fs::UniqueFd listener);
  // Stops accepting; connections close once they have no call in flight; `done` runs on the io
  // thread when all are closed.
  void Shutdown(std::function<void()> done = {});

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  // Dials `address`: "unix:///path" or "/path" is a socket file, "@name" an abstract socket.
  // Blocks up to `timeout`. Safe from any thread except io's own.
  static Result<std::shared_ptr<Client>> Connect(asio::io_context& io, std::string_view address,
                                                 std::chrono::milliseconds timeout);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  using Callback = std::function<void(Result<std::string> response_payload)>;
  // Sends a request; `done` runs on the io thread with the response payload or the error (the
  // status code mapped to an errdefs class, message kept; "ttrpc: closed" Unavailable when the
  // connection is lost). timeout zero = none (no timeout_nano sent).
  void CallAsync(std::string_view service, std::string_view method, std::string payload,
                 const Metadata& metadata, std::chrono::milliseconds timeout, Callback done);
  // Blocking form; never call it from the io thread (BERTH_CHECK). A timeout that expires fails
  // the call with DeadlineExceeded; a late answer is then dropped. Requests over
  // kMaxMessageLength are refused with ResourceExhausted without being sent.
  Result<std::string> Call(std::string_view service, std::string_view method, std::string payload,
                           const Metadata& metadata, std::chrono::milliseconds timeout);
  template <class Resp, class Req>
  Result<Resp> Call(std::string_view service, std::string_view method, const Req& req,
                    const Metadata& metadata, std::chrono::milliseconds timeout) {
    BERTH_ASSIGN_OR_RETURN(std::string payload,
                           Call(service, method, req.SerializeAsString(), metadata, timeout));
    Resp resp;
    if (!resp.ParseFromString(payload)) {
      return Error(Errc::kUnknown, "ttrpc: unmarshal response of " + std::string(service) + "/" +
                                       std::string(method));
    }
    return resp;
  }

  // `fn` runs once on the io thread when the connection is lost (EOF, reset, read error), not
  // after Close(). Set it before relying on it; setting it on a client whose connection was
  // already lost runs it at once (on the io thread); on a Close()d client it never runs.
  void OnClose(std::function<void()> fn);
  // Closes the connection; pending calls fail with "ttrpc: closed".
  void Close();
  bool Closed() const;

  struct Impl;
  explicit Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace berth::ttrpc

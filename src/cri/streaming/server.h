#pragma once
// The CRI streaming server (reference/cri.md §12): the HTTP endpoint behind the URLs that the
// Exec, Attach and PortForward rpcs hand out. A URL carries a one-time token for the request the
// rpc validated; the client upgrades a connection at it to SPDY/3.1 or WebSocket and speaks
// Kubernetes' remotecommand or portforward protocol.
//
// Everything runs on one asio::io_context (the CRI plugin's stdio loop): no thread per
// connection, nothing here blocks. The runtime side — what an exec, an attach or a dial into a
// pod actually does — is the Runtime interface the CRI service implements; the server never
// looks inside containers itself.
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/errdefs.h"

namespace berth::cri::streaming {

struct ExecRequest {
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};
struct AttachRequest {
  std::string container_id;
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};
struct PortForwardRequest {
  std::string pod_sandbox_id;
  std::vector<int32_t> ports;  // unused by SPDY (ports come in stream headers)
};
using StreamRequest = std::variant<ExecRequest, AttachRequest, PortForwardRequest>;

// One-time tokens (containerd's requestCache): 6 random bytes in unpadded base64url (8
// characters), each valid once for `ttl`, at most `max_size` outstanding. Thread-safe.
class RequestCache {
 public:
  static constexpr size_t kDefaultMaxSize = 1000;
  static constexpr std::chrono::seconds kDefaultTtl{60};
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  explicit RequestCache(size_t max_size = kDefaultMaxSize,
                        std::chrono::steady_clock::duration ttl = kDefaultTtl,
                        Clock clock = nullptr);
  // A new token for `request`. ResourceExhausted `maximum number of in-flight requests
  // exceeded` when max_size unexpired tokens are outstanding.
  Result<std::string> Insert(StreamRequest request);
  // The request of a valid token, which is used up; nullopt for an unknown, used or expired one.
  std::optional<StreamRequest> Consume(std::string_view token);
  size_t Size() const;

 private:
  void Expire(std::chrono::steady_clock::time_point now);
  struct Entry {
    StreamRequest request;
    std::chrono::steady_clock::time_point expires;
  };
  size_t max_size_;
  std::chrono::steady_clock::duration ttl_;
  Clock clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
};

// How a remote command ended: the v4 error stream's status. `error` set: InternalError (500)
// with its text. Else exit_code 0 is Success and any other NonZeroExitCode.
struct CommandResult {
  std::optional<Error> error;
  int exit_code = 0;
};

// The v4 status JSON of `result` (reference/cri.md §12), as kubelet writes it.
std::string StatusJson(const CommandResult& result);
// v1-v3: the plain error text, "" on success.
std::string StatusText(const CommandResult& result);

// What the server gives the runtime for one remote command. Both may be called from any
// thread; they do nothing once the session is gone.
struct CommandOutput {
  // Output for the client: `stream` is 1 (stdout) or 2 (stderr).
  std::function<void(int stream, std::string_view data)> write;
  // The command is over (once): the result goes out on the error stream, the session ends.
  std::function<void(CommandResult)> finish;
};

// The runtime's side of one remote command (an exec process, an attach client). Every call
// comes on the server's io_context and must not block.
class RemoteCommand {
 public:
  virtual ~RemoteCommand() = default;
  // Client stdin. `done` (any thread, once) when it is delivered or dropped: the session reads
  // nothing more from the client until then.
  virtual void Stdin(std::string data, std::function<void()> done) = 0;
  // The client closed stdin.
  virtual void StdinEof() = 0;
  virtual void Resize(uint16_t width, uint16_t height) = 0;
  // The client went away before finish: release everything (an exec kills its process; an
  // attach detaches). finish may still come, and is ignored.
  virtual void Cancel() = 0;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  // Starts the command once the client's streams are there. Failures go through out.finish.
  virtual std::unique_ptr<RemoteCommand> Exec(const ExecRequest& request, CommandOutput out) = 0;
  virtual std::unique_ptr<RemoteCommand> Attach(const AttachRequest& request,
                                                CommandOutput out) = 0;
  // Connects to localhost:`port` in the pod's network namespace; `done` (any thread, once) with
  // the connected TCP socket (the server owns it then) or the error to show the client.
  virtual void DialPort(const std::string& pod_sandbox_id, uint16_t port,
                        std::function<void(Result<int>)> done) = 0;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0 = ephemeral
  // A connection without a byte from the client for this long is closed (stream_idle_timeout).
  std::chrono::steady_clock::duration idle_timeout = std::chrono::hours(4);
  // Every stream a session needs must be open this long after the upgrade (30 s upstream), and a
  // request head must arrive within it.
  std::chrono::steady_clock::duration stream_creation_timeout = std::chrono::seconds(30);
  // Bytes queued for one client before the session stops reading the container or pod side.
  size_t max_pending_output = 4 * 1024 * 1024;
  size_t max_streams = 1000;      // SPDY streams open at once per connection
  size_t max_connections = 1024;  // accepted at once; more are closed right away
  // TLS (enable_tls_streaming): serve HTTPS with this PEM certificate and key; with `tls` and
  // both empty, a self-signed certificate made at start (containerd's selfSignTLS mode).
  bool tls = false;
  std::string tls_cert_file;
  std::string tls_key_file;
};

class Connection;

// The TLS context of ServerOptions (tls.cc): the configured key pair, or a self-signed ECDSA
// certificate for the host name, localhost and the listen address. InvalidArgument when only one
// of the files is set or they do not load.
Result<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const ServerOptions& options);

class Server {
 public:
  // Binds and listens; serving starts right away on `io`. `runtime` must outlive the server.
  static Result<std::unique_ptr<Server>> Start(asio::io_context& io, ServerOptions options,
                                               Runtime* runtime);
  // Closes the listener and every connection (cancelling their commands). Call it on the io
  // thread or with the io_context stopped.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // http://<address>:<port>/exec/<token> (https with TLS), ... for a request the rpc validated.
  Result<std::string> GetExecUrl(ExecRequest request);
  Result<std::string> GetAttachUrl(AttachRequest request);
  Result<std::string> GetPortForwardUrl(PortForwardRequest request);

  // The bound address and port.
  const std::string& Address() const { return address_; }
  uint16_t Port() const { return port_; }
  size_t Connections() const;

 private:
  friend class Connection;
  Server(asio::io_context& io, ServerOptions options, Runtime* runtime);
  Result<std::string> Url(std::string_view kind, StreamRequest request);
  void Accept();
  void Forget(Connection* c);

  asio::io_context& io_;
  std::shared_ptr<const ServerOptions> options_;  // shared with the connections
  Runtime* runtime_;
  RequestCache cache_;
  std::unique_ptr<asio::ssl::context> tls_;  // with ServerOptions::tls
  asio::ip::tcp::acceptor acceptor_;
  std::string address_;
  std::string url_host_;
  uint16_t port_ = 0;
  mutable std::mutex mu_;  // connections_ (Connections() may be called from any thread)
  std::set<std::shared_ptr<Connection>> connections_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace berth::cri::streaming

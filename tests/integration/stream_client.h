#pragma once
// The project's own client of the Kubernetes streaming protocols (reference/cri.md §12, §13), for
// integration tests of the CRI streaming server: exec/attach (remotecommand) and port-forward over
// SPDY/3.1 as client-go speaks them, and over WebSocket (the k8s channel protocols), plus raw HTTP
// and raw frames for hostile-client tests. Blocking calls with timeouts; plain POSIX sockets.
//
// Framing and compression are the server's own sans-I/O codecs (src/cri/streaming/); only the
// client's half of the conversation lives here: response heads, stream ids, per-stream queues.
//
// Threads: every connection runs one reader thread that parses what the server sends into
// queues (and answers SPDY and WebSocket pings). Writing from one thread while another reads
// works; several threads may write and read different streams of one SpdyConn (port-forward).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/errdefs.h"
#include "common/fs.h"
#include "cri/streaming/channel.h"
#include "cri/streaming/spdy_frame.h"
#include "cri/streaming/websocket.h"

namespace berth::testing::stream {

// Tests that include this may have names of their own called Status or Result in
// berth::testing (unity builds put them in one unit): these are the project's.
using ::berth::Result;
using ::berth::Status;

namespace spdy = cri::streaming::spdy;
namespace ws = cri::streaming::ws;

using Millis = std::chrono::milliseconds;
// Connecting, handshakes, SYN_REPLY waits and blocked writes give up after this by default.
inline constexpr Millis kDefaultTimeout{10000};

// ---------------------------------------------------------------------------------------------
// URLs and raw HTTP

// `http://host:port/path?query` (https is NotImplemented; the port defaults to 80; an IPv6 host
// is bracketed).
struct Url {
  std::string host;  // without brackets
  uint16_t port = 80;
  std::string target;            // "/exec/TOKEN?x=y"; "/" when the URL has no path
  std::string HostPort() const;  // for the Host header: "127.0.0.1:8080", "[::1]:8080"
};
Result<Url> ParseUrl(std::string_view url);

struct HttpReply {
  int status = 0;
  std::string reason;                                        // "Switching Protocols"
  std::vector<std::pair<std::string, std::string>> headers;  // arrival order, repeats kept
  std::string body;  // Content-Length bytes, else everything until the server closed

  // The first value of `name` (case-insensitive), "" when absent.
  std::string Header(std::string_view name) const;
  // Every value of `name`, in order.
  std::vector<std::string> HeaderValues(std::string_view name) const;
};

// A response head ("HTTP/1.1 404 Not Found\r\n...\r\n\r\n", bare LF line ends accepted), no
// body. InvalidArgument when it is not one.
Result<HttpReply> ParseResponseHead(std::string_view head);

// A TCP connection (TCP_NODELAY) to host:port; the caller owns the descriptor. Every
// connection of this library is made through it.
Result<fs::UniqueFd> ConnectTcp(const std::string& host, uint16_t port);
// Makes every later connection of this process from inside the network namespace at `path`
// (a berthd in a test namespace serves its streaming URLs on that namespace's 127.0.0.1);
// "" = the process's own namespace.
void SetDialNetns(std::string path);
// Writes all of `data`; DeadlineExceeded when the peer does not take it within `timeout`,
// Unavailable when the connection is gone.
Status SendAll(int fd, std::string_view data, Millis timeout = kDefaultTimeout);
// Reads one response (head and body) from `fd`.
Result<HttpReply> ReadReply(int fd, Millis timeout = kDefaultTimeout);
// Everything the peer sends until it closes (or resets) the connection; DeadlineExceeded if it
// is still open after `timeout`.
Result<std::string> ReadUntilClosed(int fd, Millis timeout = kDefaultTimeout);

// Connects to `url`'s host, sends `request` verbatim and reads the response. The send may fail
// part-way (a server refusing early closes): the response is read anyway. Unavailable when the
// server closes without answering.
Result<HttpReply> RawRequest(std::string_view url, std::string_view request,
                             Millis timeout = kDefaultTimeout);

// The request heads Dial sends, for tests that send a variation through RawRequest.
// SPDY (client-go's SpdyRoundTripper): POST, Connection: Upgrade, Upgrade: SPDY/3.1, one
// X-Stream-Protocol-Version per protocol, Content-Length: 0.
std::string SpdyUpgradeRequest(const Url& url, const std::vector<std::string>& protocols,
                               std::string_view method = "POST");
// WebSocket (RFC 6455 §4.1): GET, Upgrade: websocket, Connection: Upgrade,
// Sec-WebSocket-Version: 13, Sec-WebSocket-Key: `key`, Sec-WebSocket-Protocol: a, b (left out
// when `subprotocols` is empty).
std::string WebSocketUpgradeRequest(const Url& url, const std::vector<std::string>& subprotocols,
                                    std::string_view key);
// A fresh Sec-WebSocket-Key: base64 of 16 random bytes.
std::string NewWebSocketKey();

// A refused upgrade as an Error: 404 NotFound, 403 PermissionDenied, 400 InvalidArgument, 405
// and others FailedPrecondition; the text carries the status and the body.
Error RefusalError(const HttpReply& reply);

class Socket;  // the descriptor and its reader thread (stream_client_io.h)

// ---------------------------------------------------------------------------------------------
// SPDY/3.1, the client's end

// One SPDY connection after a 101. The client opens streams with odd ids 1, 3, 5...; frames for
// each stream are queued until read. Server PINGs (even ids) are echoed; SETTINGS and
// WINDOW_UPDATE are ignored (spdystream has no flow control).
class SpdyConn {
 public:
  // What the server did to one stream so far.
  struct StreamState {
    bool replied = false;  // SYN_REPLY received
    spdy::HeaderBlock reply_headers;
    bool fin = false;           // the server half-closed it
    bool reset = false;         // RST_STREAM received
    uint32_t reset_status = 0;  // its status (a spdy::RstStatus)
    size_t queued = 0;          // data chunks not read yet
  };

  // POST `url` with the upgrade headers, one X-Stream-Protocol-Version per protocol (preferred
  // first). On 101 the connection; otherwise RefusalError(reply), and `*refused` (if given)
  // holds the reply. A 101 that names no offered protocol is FailedPrecondition.
  static Result<std::unique_ptr<SpdyConn>> Dial(std::string_view url,
                                                const std::vector<std::string>& protocols,
                                                HttpReply* refused = nullptr,
                                                Millis timeout = kDefaultTimeout);
  ~SpdyConn();
  SpdyConn(const SpdyConn&) = delete;
  SpdyConn& operator=(const SpdyConn&) = delete;

  // The negotiated X-Stream-Protocol-Version.
  const std::string& Protocol() const { return protocol_; }
  // The 101 response.
  const HttpReply& Handshake() const { return handshake_; }

  // Sends SYN_STREAM with the next odd id and `headers` (names lowercase), FIN when `fin`, and
  // waits for the SYN_REPLY as client-go does (spdystream's WaitTimeout). Errors: Aborted when
  // the server resets the stream instead, Unavailable when the connection ends, DeadlineExceeded.
  Result<uint32_t> OpenStream(const spdy::HeaderBlock& headers, bool fin = false,
                              Millis timeout = kDefaultTimeout);
  // Sends SYN_STREAM without waiting for the reply; the stream's frames are queued all the same.
  Result<uint32_t> StartStream(const spdy::HeaderBlock& headers, bool fin = false);
  // Waits for the SYN_REPLY of a stream opened with StartStream (errors as OpenStream's).
  Status WaitReply(uint32_t id, Millis timeout = kDefaultTimeout);

  // One DATA frame per 32 KiB (client-go's copy buffer), FIN on the last when `fin`.
  Status Write(uint32_t id, std::string_view data, bool fin = false);
  // An empty DATA frame with FIN: no more from us on `id`.
  Status CloseWrite(uint32_t id);
  // RST_STREAM.
  Status Reset(uint32_t id, spdy::RstStatus status = spdy::RstStatus::kCancel);

  // The next chunk of data on `id`; nullopt once the stream ended (the server's FIN or RST, or
  // the connection closed) with nothing left queued. NotFound for an id never opened,
  // DeadlineExceeded when nothing came in time.
  Result<std::optional<std::string>> Read(uint32_t id, Millis timeout = kDefaultTimeout);
  // Everything on `id` until it ends.
  Result<std::string> ReadAll(uint32_t id, Millis timeout = kDefaultTimeout);
  StreamState State(uint32_t id) const;

  // Any frame, header blocks through this connection's compressor (a SYN_STREAM sent here
  // registers its id, which need not be the next odd one). For protocol-violation tests.
  Status SendFrame(const spdy::Frame& frame);
  // Bytes as they are: garbage, truncated frames, foreign compression.
  Status SendRaw(std::string_view bytes);
  // Sends PING with the next odd id and waits for the server to echo it.
  Status Ping(Millis timeout = kDefaultTimeout);

  // True once the server closed TCP (or the connection broke); waits up to `timeout`.
  bool WaitClosed(Millis timeout);
  // Stops/resumes reading the connection: a client falling behind (the kernel's buffers fill).
  void SetPaused(bool paused);
  bool Closed() const;
  // The server's GOAWAY, if one came.
  std::optional<spdy::GoAway> GoAwayReceived() const;
  // Why reading stopped, when it was not a clean close: the server's bytes did not parse, or
  // the connection was reset.
  std::optional<Error> ConnectionError() const;
  // SYN_STREAMs the server sent (it never should).
  std::vector<spdy::SynStream> ServerStreams() const;

  // Half-closes TCP (FIN): the server reads EOF, we keep reading.
  void ShutdownWrite();
  // Drops the connection abruptly (RST): a client that disappears. Reads end, writes fail.
  void Abort();

 private:
  struct Stream {
    StreamState state;
    std::deque<std::string> chunks;
  };

  SpdyConn(std::unique_ptr<Socket> socket, std::string protocol, HttpReply handshake);
  // Reader thread. False once the server's bytes stopped parsing (the rest is drained unread).
  bool OnBytes(std::string_view bytes);
  void OnClosed(std::optional<Error> error);
  Status SendLocked(const spdy::Frame& frame);  // wmu_ held
  Status FlushPongs();
  Status WaitForReply(uint32_t id, std::chrono::steady_clock::time_point deadline);

  std::unique_ptr<Socket> socket_;
  std::string protocol_;
  HttpReply handshake_;

  std::mutex wmu_;  // before mu_ when both are taken
  spdy::FrameWriter writer_;
  uint32_t next_id_ = 1;
  uint32_t next_ping_ = 1;

  spdy::FrameParser parser_;  // reader thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, Stream> streams_;
  std::vector<uint32_t> pings_answered_;
  std::vector<uint32_t> pongs_to_send_;
  std::vector<spdy::SynStream> server_streams_;
  std::optional<spdy::GoAway> goaway_;
  bool closed_ = false;
  std::optional<Error> error_;
};

// ---------------------------------------------------------------------------------------------
// WebSocket, the client's end

class WsConn {
 public:
  // GET `url` with the WebSocket handshake offering `subprotocols` (none: no
  // Sec-WebSocket-Protocol), checks Sec-WebSocket-Accept and that the chosen subprotocol was
  // offered. Refusals as SpdyConn::Dial.
  static Result<std::unique_ptr<WsConn>> Dial(std::string_view url,
                                              const std::vector<std::string>& subprotocols,
                                              HttpReply* refused = nullptr,
                                              Millis timeout = kDefaultTimeout);
  ~WsConn();
  WsConn(const WsConn&) = delete;
  WsConn& operator=(const WsConn&) = delete;

  // The Sec-WebSocket-Protocol the server chose ("" for none).
  const std::string& Protocol() const { return protocol_; }
  const HttpReply& Handshake() const { return handshake_; }

  // One masked, unfragmented message. FailedPrecondition once our close frame is out.
  Status SendBinary(std::string_view data);
  Status SendText(std::string_view data);
  Status SendPing(std::string_view payload = {});
  // Starts (or answers) the closing handshake.
  Status Close(uint16_t code = ws::kCloseNormal, std::string_view reason = {});
  // Bytes as they are (unmasked frames, bad opcodes...).
  Status SendRaw(std::string_view bytes);

  // The next data message; nullopt once the server's close frame came or the connection ended,
  // with nothing left queued. DeadlineExceeded when nothing came in time.
  Result<std::optional<ws::Message>> ReadMessage(Millis timeout = kDefaultTimeout);

  // True once the server closed TCP (or the connection broke); waits up to `timeout`.
  bool WaitClosed(Millis timeout);
  bool Closed() const;
  // The server's close frame: its code (ws::kCloseNoStatus when it carried none).
  std::optional<uint16_t> PeerCloseCode() const;
  std::string PeerCloseReason() const;
  // The server's frames broke the protocol (we answered with a close), or the connection reset.
  std::optional<Error> ConnectionError() const;

  void Abort();

 private:
  WsConn(std::unique_ptr<Socket> socket, std::string protocol, HttpReply handshake);
  bool OnBytes(std::string_view bytes);
  void OnClosed(std::optional<Error> error);
  Status Flush();  // wmu_ held: writes what the codec queued

  std::unique_ptr<Socket> socket_;
  std::string protocol_;
  HttpReply handshake_;

  std::mutex wmu_;  // before mu_
  mutable std::mutex mu_;
  std::condition_variable cv_;
  ws::Connection conn_;
  std::deque<ws::Message> messages_;
  bool closed_ = false;
  std::optional<Error> error_;
};

// ---------------------------------------------------------------------------------------------
// remotecommand: exec and attach

struct RemoteCommandOptions {
  enum class Transport { kSpdy, kWebSocket };
  Transport transport = Transport::kSpdy;
  // Offered protocols, preferred first. Empty: SPDY v4, v3, v2, channel.k8s.io (client-go);
  // WebSocket v4.channel.k8s.io.
  std::vector<std::string> protocols;
  bool stdin = false;
  bool stdout = true;
  bool stderr = true;
  bool tty = false;
  Millis timeout = kDefaultTimeout;  // handshake and each SYN_REPLY
};

// How a session ended.
struct Outcome {
  std::string stdout_data;  // all of it, including what ReadStdoutUntil returned
  std::string stderr_data;
  std::string error_data;  // the error stream/channel as received
  // v4/v5: from the status (Success: 0; NonZeroExitCode: details.causes[reason=ExitCode]);
  // older protocols: 0 when the error stream is empty.
  std::optional<int> exit_code;
  bool success = false;  // Success status, or an empty error stream
  std::string reason;    // the status' reason ("NonZeroExitCode", "InternalError")
  std::string message;   // the status' message, or the plain error text (v1-v3)
};

// Parses what an error stream carried, as client-go does for `protocol`.
Outcome ParseErrorStream(std::string_view protocol, std::string error_data);

class RemoteCommand {
 public:
  // Dials and sets up one session. SPDY: streams in client-go's order, each with header
  // `streamtype`: error (half-closed at once), stdin, stdout, stderr (not with tty), resize (tty
  // and protocol v3 or later), each waiting for its SYN_REPLY.
  static Result<std::unique_ptr<RemoteCommand>> Start(std::string_view url,
                                                      RemoteCommandOptions options = {});
  ~RemoteCommand();

  const std::string& Protocol() const { return protocol_; }
  // The stream ids (SPDY), 0 when not opened.
  uint32_t StreamId(std::string_view streamtype) const;
  SpdyConn* Spdy() { return spdy_.get(); }
  WsConn* WebSocket() { return ws_.get(); }

  Status WriteStdin(std::string_view data);
  // SPDY: FIN on the stdin stream; WebSocket v5: CLOSE on channel 0; older WebSocket protocols
  // cannot: FailedPrecondition.
  Status CloseStdin();
  // {"Width":w,"Height":h} and a newline (client-go's json.Encoder) on the resize stream or
  // channel 4. FailedPrecondition without one (SPDY without tty or before v3).
  Status Resize(uint16_t width, uint16_t height);

  // Reads stdout until it contains `needle` (counting what was read before) and returns all of
  // stdout so far. DeadlineExceeded or OutOfRange (stdout ended first); both quote the output.
  Result<std::string> ReadStdoutUntil(std::string_view needle, Millis timeout = kDefaultTimeout);
  // Waits for the end: SPDY, stdout and stderr ended and the error stream read to EOF; WebSocket,
  // the connection closed. Then parses the error stream (ParseErrorStream).
  Result<Outcome> Wait(Millis timeout = kDefaultTimeout);
  // Drops the connection abruptly (RST).
  void Abort();

 private:
  RemoteCommand() = default;
  Status StartSpdy(std::string_view url);
  Status StartWs(std::string_view url);
  // WebSocket: reads one message into the channel buffers; false when the connection ended.
  Result<bool> PumpWs(Millis timeout);
  Status SendChannel(uint8_t channel, std::string_view data);

  RemoteCommandOptions options_;
  std::string protocol_;
  std::unique_ptr<SpdyConn> spdy_;
  std::map<std::string, uint32_t, std::less<>> ids_;  // SPDY streamtype -> id
  std::unique_ptr<WsConn> ws_;
  cri::streaming::ChannelProtocol channels_;
  bool ws_closed_ = false;
  std::string stdout_;
  bool stdout_done_ = false;
  std::string stderr_;
  std::string error_;
};

// ---------------------------------------------------------------------------------------------
// Port-forward

// One forwarded connection over SPDY: a data stream and its error stream.
class PfStream {
 public:
  uint16_t Port() const { return port_; }
  uint32_t RequestId() const { return request_id_; }
  uint32_t DataId() const { return data_id_; }
  uint32_t ErrorId() const { return error_id_; }

  Status Write(std::string_view data) { return conn_->Write(data_id_, data); }
  Status CloseWrite() { return conn_->CloseWrite(data_id_); }
  Status Reset() { return conn_->Reset(data_id_); }
  Result<std::optional<std::string>> Read(Millis timeout = kDefaultTimeout) {
    return conn_->Read(data_id_, timeout);
  }
  Result<std::string> ReadAll(Millis timeout = kDefaultTimeout) {
    return conn_->ReadAll(data_id_, timeout);
  }
  // The error stream read to its end ("" when the forward went well).
  Result<std::string> ErrorText(Millis timeout = kDefaultTimeout) {
    return conn_->ReadAll(error_id_, timeout);
  }

 private:
  friend class PortForwardSpdy;
  PfStream(std::shared_ptr<SpdyConn> conn, uint16_t port, uint32_t request_id, uint32_t error_id,
           uint32_t data_id)
      : conn_(std::move(conn)),
        port_(port),
        request_id_(request_id),
        error_id_(error_id),
        data_id_(data_id) {}

  std::shared_ptr<SpdyConn> conn_;  // shared by every stream of the connection
  uint16_t port_;
  uint32_t request_id_;
  uint32_t error_id_;
  uint32_t data_id_;
};

class PortForwardSpdy {
 public:
  // Dials with protocol portforward.k8s.io.
  static Result<std::unique_ptr<PortForwardSpdy>> Dial(std::string_view url,
                                                       HttpReply* refused = nullptr,
                                                       Millis timeout = kDefaultTimeout);
  // As client-go: the error stream (streamtype=error, port, requestid), half-closed at once,
  // then the data stream (streamtype=data, same port and requestid); request ids count from 0.
  // Safe from several threads at once.
  Result<PfStream> Open(uint16_t port, Millis timeout = kDefaultTimeout);
  SpdyConn& Conn() { return *conn_; }

 private:
  explicit PortForwardSpdy(std::shared_ptr<SpdyConn> conn) : conn_(std::move(conn)) {}
  std::shared_ptr<SpdyConn> conn_;
  std::atomic<uint32_t> next_request_id_{0};
};

// Port-forward over WebSocket: the ports come from the URL's `port` query values; the i-th uses
// channel 2i for data and 2i+1 for errors, each starting with the port (2 bytes little-endian),
// which is checked and stripped. Safe from several threads at once.
class PortForwardWs {
 public:
  static Result<std::unique_ptr<PortForwardWs>> Dial(
      std::string_view url, std::vector<std::string> subprotocols = {"v4.channel.k8s.io"},
      HttpReply* refused = nullptr, Millis timeout = kDefaultTimeout);
  ~PortForwardWs();

  const std::vector<uint16_t>& Ports() const { return ports_; }
  WsConn& Conn() { return *ws_; }

  Status Write(size_t port_index, std::string_view data);
  // The next data on the port's channel; nullopt once the connection ended and nothing is left.
  Result<std::optional<std::string>> Read(size_t port_index, Millis timeout = kDefaultTimeout);
  // Data until the connection ends.
  Result<std::string> ReadAll(size_t port_index, Millis timeout = kDefaultTimeout);
  // Waits until the port's error channel carried text (returns it) or the connection ended
  // (returns what came, maybe "").
  Result<std::string> ErrorText(size_t port_index, Millis timeout = kDefaultTimeout);
  // A channel whose first message was not its port's prefix, or a message on an unknown channel.
  std::optional<Error> ProtocolError() const;

 private:
  struct Port {
    bool data_prefix = false;
    bool error_prefix = false;
    std::deque<std::string> data;
    std::string error;
  };
  PortForwardWs(std::unique_ptr<WsConn> ws, std::vector<uint16_t> ports);
  void Pump(const std::stop_token& stop);
  Status CheckIndex(size_t port_index) const;

  std::unique_ptr<WsConn> ws_;
  std::vector<uint16_t> ports_;
  cri::streaming::ChannelProtocol channels_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Port> state_;
  bool closed_ = false;
  std::optional<Error> protocol_error_;
  std::jthread pump_;  // last: stopped before the rest goes
};

}  // namespace berth::testing::stream

#pragma once
// Inside the streaming server (server.cc, remote_command.cc, port_forward.cc): one client
// connection and the protocol that runs on it after the upgrade. Not part of the library's
// interface.
#include <asio.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "cri/streaming/http.h"
#include "cri/streaming/server.h"
#include "cri/streaming/upgrade.h"

namespace berth::cri::streaming {

class Connection;

// What runs on an upgraded connection. Every call comes on the io thread.
class Protocol {
 public:
  virtual ~Protocol() = default;
  // Called once, right after the 101 went out.
  virtual void Begin() = 0;
  // Bytes from the client. An error ends the connection once the output queued is written.
  virtual Status Feed(std::string_view bytes) = 0;
  // The output queue fell below ServerOptions::max_pending_output.
  virtual void OnDrained() {}
  // The stream creation timeout expired before the protocol called StreamsReady().
  virtual void OnCreationTimeout() = 0;
  // The connection is going away (client gone, error, server stopping): release everything.
  // Nothing may be written any more.
  virtual void Shutdown() = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, asio::ip::tcp::socket socket);
  void Start();

  // ---- for protocols
  asio::io_context& Io() { return io_; }
  Runtime& Rt() { return *runtime_; }
  const ServerOptions& Options() const { return *options_; }
  // Queues bytes for the client.
  void Write(std::string bytes);
  size_t PendingOutput() const { return pending_; }
  bool Backlogged() const { return pending_ > Options().max_pending_output; }
  // Stop/resume reading the client (input the runtime has not taken yet).
  void PauseReading();
  void ResumeReading();
  // Every stream the session needs is there: the creation timer stops.
  void StreamsReady();
  // Closes after the queued output is written (the protocol is shut down now).
  void End();
  // Closes at once.
  void Abort();
  bool Ending() const { return ending_ || closed_; }

  // Runs fn on the io thread while this connection is open (dropped afterwards), from any thread.
  template <class Fn>
  void Post(Fn fn) {
    asio::post(io_, [weak = weak_from_this(), fn = std::move(fn)]() mutable {
      if (auto self = weak.lock(); self && !self->closed_ && !self->shut_down_) fn();
    });
  }
  bool OnIoThread() const { return io_.get_executor().running_in_this_thread(); }

 private:
  void Read();
  void OnRead(size_t n);
  template <class Buffer, class Handler>
  void AsyncRead(const Buffer& b, Handler&& h);
  template <class Buffer, class Handler>
  void AsyncWrite(const Buffer& b, Handler&& h);
  Status FeedHead(std::string_view bytes);
  void Refuse(const http::Refusal& refusal);
  void Flush();
  void ShutdownProtocol();
  void Close();
  void ArmIdle();

  // The io_context outlives every connection; the server may not (threads such as a port-forward
  // dial can still hold one after the server is gone), so server_ is for the io thread while the
  // connection is open only: the server closes every connection as it goes.
  asio::io_context& io_;
  std::shared_ptr<const ServerOptions> options_;
  Runtime* runtime_;  // outlives the server
  Server& server_;
  asio::ip::tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;  // over socket_, with TLS
  bool handshaken_ = false;
  asio::steady_timer idle_timer_;
  asio::steady_timer creation_timer_;
  std::array<char, 64 * 1024> buffer_{};
  http::RequestParser parser_;
  std::unique_ptr<Protocol> protocol_;
  std::string out_;       // queued, not yet being written
  std::string writing_;   // being written
  size_t pending_ = 0;    // out_ + writing_
  bool reading_ = false;  // a read is in flight
  bool paused_ = false;
  bool ending_ = false;  // close once written
  bool closed_ = false;
  bool shut_down_ = false;  // protocol_->Shutdown() was called
  bool streams_ready_ = false;
  std::chrono::steady_clock::time_point last_input_;
};

// The protocol for an upgraded request (remote_command.cc, port_forward.cc).
std::unique_ptr<Protocol> MakeRemoteCommand(Connection& conn, const Upgrade& upgrade,
                                            StreamRequest request);
std::unique_ptr<Protocol> MakePortForward(Connection& conn, const Upgrade& upgrade,
                                          PortForwardRequest request, std::vector<uint16_t> ports);

}  // namespace berth::cri::streaming

// remotecommand (exec, attach) over SPDY/3.1 and WebSocket (reference/cri.md §12): the client's
// channels — error, stdin, stdout, stderr, resize — carried as one SPDY stream each or as
// channel-tagged WebSocket messages, glued to the runtime's RemoteCommand.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "cri/streaming/channel.h"
#include "cri/streaming/connection.h"
#include "cri/streaming/spdy_session.h"
#include "cri/streaming/websocket.h"

namespace berth::cri::streaming {
namespace {

struct Wanted {
  bool stdin = false, stdout = false, stderr = false, tty = false;
};

Wanted WantedOf(const StreamRequest& r) {
  if (const auto* e = std::get_if<ExecRequest>(&r)) {
    return {e->stdin, e->stdout, e->stderr, e->tty};
  }
  const auto& a = std::get<AttachRequest>(r);
  return {a.stdin, a.stdout, a.stderr, a.tty};
}

// What both transports share: starting the command, stdin with back-pressure, resize JSON,
// and the end.
class CommandProtocol : public Protocol {
 public:
  CommandProtocol(Connection& conn, StreamRequest request, bool v4_status)
      : conn_(conn), request_(std::move(request)), want_(WantedOf(request_)), v4_(v4_status) {}

  void OnCreationTimeout() override {
    log::L().Info("streaming: timed out waiting for the client's streams");
    conn_.Abort();
  }

  void Shutdown() override {
    if (command_ && !finished_) command_->Cancel();
    finished_ = true;
  }

  void OnDrained() override {}

 protected:
  // Transport: one chunk of output, and the end (result, then close).
  virtual void SendOutput(int stream, std::string_view data) = 0;
  virtual void SendResult(const CommandResult& result) = 0;

  void StartCommand() {
    if (started_ || finished_) return;
    started_ = true;
    conn_.StreamsReady();
    CommandOutput out = MakeOutput();
    if (const auto* e = std::get_if<ExecRequest>(&request_)) {
      command_ = conn_.Rt().Exec(*e, std::move(out));
    } else {
      command_ = conn_.Rt().Attach(std::get<AttachRequest>(request_), std::move(out));
    }
    if (!command_ || finished_) return;
    for (auto& data : early_stdin_) DeliverStdin(std::move(data));
    early_stdin_.clear();
    if (stdin_eof_) command_->StdinEof();
  }

  void OnStdin(std::string data) {
    if (finished_ || stdin_eof_ || !want_.stdin) return;
    if (!command_) {
      early_stdin_.push_back(std::move(data));
      conn_.PauseReading();
      return;
    }
    DeliverStdin(std::move(data));
  }

  void OnStdinEof() {
    if (stdin_eof_ || finished_) return;
    stdin_eof_ = true;
    if (command_) command_->StdinEof();
  }

  Status OnResize(std::string_view bytes) {
    resize_buffer_.append(bytes);
    if (resize_buffer_.size() > 64 * 1024) {
      return InvalidArgument("resize stream: more than 64 KiB without a complete size");
    }
    // client-go writes one JSON object per line; take every complete object.
    while (!resize_buffer_.empty()) {
      size_t nl = resize_buffer_.find('\n');
      std::string_view candidate = nl == std::string::npos
                                       ? std::string_view(resize_buffer_)
                                       : std::string_view(resize_buffer_).substr(0, nl);
      auto j = nlohmann::json::parse(candidate, nullptr, false);
      if (j.is_discarded()) {
        if (nl == std::string::npos) break;  // maybe incomplete
        log::L().Info("streaming: ignoring a malformed resize message");
      } else if (j.is_object()) {
        auto dim = [&](const char* key) -> uint16_t {
          auto it = j.find(key);
          if (it == j.end() || !it->is_number_unsigned()) return 0;
          return static_cast<uint16_t>(std::min<uint64_t>(it->get<uint64_t>(), 65535));
        };
        uint16_t w = dim("Width"), h = dim("Height");
        if (w != 0 && h != 0 && command_ && !finished_) command_->Resize(w, h);
      }
      resize_buffer_.erase(0, nl == std::string::npos ? resize_buffer_.size() : nl + 1);
    }
    return Ok();
  }

  void Finish(const CommandResult& result) {
    if (finished_) return;
    finished_ = true;
    SendResult(result);
  }

  Connection& conn_;
  StreamRequest request_;
  Wanted want_;
  bool v4_;
  std::unique_ptr<RemoteCommand> command_;
  bool started_ = false;
  bool finished_ = false;

 private:
  CommandOutput MakeOutput() {
    std::weak_ptr<Connection> weak = conn_.weak_from_this();
    CommandProtocol* self = this;
    CommandOutput out;
    out.write = [weak, self](int stream, std::string_view data) {
      auto c = weak.lock();
      if (!c) return;
      if (c->OnIoThread()) {
        if (!c->Ending()) self->Output(stream, data);
      } else {
        c->Post([self, stream, d = std::string(data)] { self->Output(stream, d); });
      }
    };
    out.finish = [weak, self](CommandResult result) {
      if (auto c = weak.lock()) {
        c->Post([self, r = std::move(result)] { self->Finish(r); });
      }
    };
    return out;
  }

  void Output(int stream, std::string_view data) {
    if (finished_ || data.empty()) return;
    // Output cannot be paused at its source (the container's pipe is read on): a client that
    // stops reading is dropped rather than buffered without bound.
    if (conn_.PendingOutput() > 4 * conn_.Options().max_pending_output) {
      log::L().Warn("streaming: client too slow to take the command's output; closing");
      conn_.Abort();
      return;
    }
    SendOutput(stream, data);
  }

  void DeliverStdin(std::string data) {
    ++stdin_in_flight_;
    conn_.PauseReading();
    std::weak_ptr<Connection> weak = conn_.weak_from_this();
    CommandProtocol* self = this;
    command_->Stdin(std::move(data), [weak, self] {
      if (auto c = weak.lock()) {
        c->Post([self] {
          if (--self->stdin_in_flight_ == 0) self->conn_.ResumeReading();
        });
      }
    });
  }

  std::vector<std::string> early_stdin_;
  bool stdin_eof_ = false;
  int stdin_in_flight_ = 0;
  std::string resize_buffer_;
};

// ---- SPDY: one client stream per channel, each with a `streamtype` header.

class SpdyCommand final : public CommandProtocol {
 public:
  SpdyCommand(Connection& conn, const Upgrade& upgrade, StreamRequest request)
      : CommandProtocol(conn, std::move(request), upgrade.protocol == "v4.channel.k8s.io"),
        session_({.max_streams = conn.Options().max_streams}),
        resize_allowed_(upgrade.protocol == "v4.channel.k8s.io" ||
                        upgrade.protocol == "v3.channel.k8s.io") {}

  void Begin() override {}

  Status Feed(std::string_view bytes) override {
    Status st = session_.Feed(bytes);
    for (auto& ev : session_.TakeEvents()) Handle(ev);
    Flush();
    return st;
  }

  void Shutdown() override { CommandProtocol::Shutdown(); }

 protected:
  void SendOutput(int stream, std::string_view data) override {
    uint32_t id = stream == 2 ? stderr_ : stdout_;
    if (id != 0 && session_.IsOpen(id)) (void)session_.SendData(id, data);
    Flush();
  }

  void SendResult(const CommandResult& result) override {
    for (uint32_t id : {stdout_, stderr_}) {
      if (id != 0 && session_.IsOpen(id)) (void)session_.SendData(id, "", true);
    }
    if (error_ != 0 && session_.IsOpen(error_)) {
      std::string text = v4_ ? StatusJson(result) : StatusText(result);
      (void)session_.SendData(error_, text, true);
    }
    for (uint32_t id : {stdin_, resize_}) {
      if (id != 0 && session_.IsOpen(id)) (void)session_.Reset(id, spdy::RstStatus::kCancel);
    }
    session_.GoAway(spdy::GoAwayStatus::kOk);
    Flush();
    conn_.End();
  }

 private:
  void Handle(spdy::Event& ev) {
    using K = spdy::Event::Kind;
    switch (ev.kind) {
      case K::kStreamOpened: {
        (void)session_.Reply(ev.stream_id);
        std::string_view type = ev.headers.Get("streamtype").value_or("");
        uint32_t* slot = type == "error"    ? &error_
                         : type == "stdin"  ? &stdin_
                         : type == "stdout" ? &stdout_
                         : type == "stderr" ? &stderr_
                         : type == "resize" ? &resize_
                                            : nullptr;
        if (slot == nullptr) {
          log::L().With("streamtype", std::string(type)).Info("streaming: unexpected stream type");
        } else {
          *slot = ev.stream_id;
        }
        if (Complete()) StartCommand();
        break;
      }
      case K::kData:
        if (ev.stream_id == stdin_) {
          OnStdin(std::move(ev.data));
        } else if (ev.stream_id == resize_) {
          if (auto st = OnResize(ev.data); !st) {
            (void)session_.Reset(resize_, spdy::RstStatus::kProtocolError);
          }
        }
        break;
      case K::kPeerFinished:
      case K::kStreamReset:
        if (ev.stream_id == stdin_ && stdin_ != 0) OnStdinEof();
        break;
      case K::kHeaders:
        break;
      case K::kGoAway:
        conn_.End();
        break;
    }
  }

  bool Complete() const {
    if (error_ == 0) return false;
    if (want_.stdin && stdin_ == 0) return false;
    if (want_.stdout && stdout_ == 0) return false;
    if (want_.stderr && !want_.tty && stderr_ == 0) return false;
    if (want_.tty && resize_allowed_ && resize_ == 0) return false;
    return true;
  }

  void Flush() { conn_.Write(session_.TakeOutput()); }

  spdy::Session session_;
  bool resize_allowed_;
  uint32_t error_ = 0, stdin_ = 0, stdout_ = 0, stderr_ = 0, resize_ = 0;
};

// ---- WebSocket: channel-tagged messages on one connection.

class WsCommand final : public CommandProtocol {
 public:
  WsCommand(Connection& conn, const Upgrade& upgrade, StreamRequest request, ChannelProtocol cp)
      : CommandProtocol(conn, std::move(request),
                        upgrade.protocol == "v4.channel.k8s.io" ||
                            upgrade.protocol == "v4.base64.channel.k8s.io" ||
                            upgrade.protocol == "v5.channel.k8s.io"),
        channel_(cp),
        ws_({.role = ws::Role::kServer}) {}

  void Begin() override {
    // kubelet tells the client the connection is up with an empty message on the lowest
    // channel it may write.
    uint8_t first = want_.stdout ? kStdoutChannel : want_.stderr ? kStderrChannel : kErrorChannel;
    Send(first, "");
    StartCommand();
  }

  Status Feed(std::string_view bytes) override {
    std::vector<ws::Message> messages;
    Status st = ws_.Feed(bytes, messages);
    for (auto& m : messages) {
      auto decoded = DecodeChannelMessage(channel_, m.data);
      if (!decoded) {
        if (channel_.base64) continue;  // upstream drops just that message
        st = std::move(decoded).error();
        break;
      }
      if (!decoded->has_value()) continue;
      ChannelMessage& cm = **decoded;
      if (cm.kind == ChannelMessage::Kind::kClose) {
        if (cm.channel == kStdinChannel) OnStdinEof();
        continue;
      }
      if (cm.channel == kStdinChannel) {
        OnStdin(std::move(cm.data));
      } else if (cm.channel == kResizeChannel && want_.tty) {
        if (auto r = OnResize(cm.data); !r) st = std::move(r);
      }
    }
    Flush();
    if (ws_.CloseReceived()) {
      conn_.End();  // the client is done: our close answer is queued
    }
    return st;
  }

 protected:
  void SendOutput(int stream, std::string_view data) override {
    Send(stream == 2 ? kStderrChannel : kStdoutChannel, data);
  }

  void SendResult(const CommandResult& result) override {
    std::string text = v4_ ? StatusJson(result) : StatusText(result);
    if (!text.empty()) Send(kErrorChannel, text);
    ws_.Close(ws::kCloseNormal);
    Flush();
    conn_.End();
  }

 private:
  void Send(uint8_t channel, std::string_view data) {
    std::string msg = EncodeChannelMessage(channel_, channel, data);
    if (channel_.base64) {
      ws_.SendText(msg);
    } else {
      ws_.SendBinary(msg);
    }
    Flush();
  }
  void Flush() {
    if (ws_.HasOutput()) conn_.Write(ws_.TakeOutput());
  }

  ChannelProtocol channel_;
  ws::Connection ws_;
};

}  // namespace

std::unique_ptr<Protocol> MakeRemoteCommand(Connection& conn, const Upgrade& upgrade,
                                            StreamRequest request) {
  if (upgrade.kind == UpgradeKind::kSpdy) {
    return std::make_unique<SpdyCommand>(conn, upgrade, std::move(request));
  }
  // NegotiateUpgrade only picks protocols ChannelProtocolFor knows.
  ChannelProtocol cp = ChannelProtocolFor(upgrade.protocol).value_or(ChannelProtocol{});
  return std::make_unique<WsCommand>(conn, upgrade, std::move(request), cp);
}

}  // namespace berth::cri::streaming

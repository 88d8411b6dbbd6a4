// The sessions over SpdyConn and WsConn: remotecommand (exec, attach) and port-forward.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include <nlohmann/json.hpp>

#include "cri/streaming/http.h"
#include "stream_client.h"
#include "stream_client_io.h"

namespace berth::testing::stream {

using io::Clock;
using io::Left;
namespace cs = cri::streaming;

namespace {

// The remotecommand protocol's version: v4.channel.k8s.io -> 4, channel.k8s.io -> 1.
int ProtocolVersion(std::string_view protocol) {
  if (protocol.size() > 2 && protocol[0] == 'v' && std::isdigit(protocol[1]) != 0 &&
      protocol[2] == '.') {
    return protocol[1] - '0';
  }
  return 1;
}

// Output quoted in an error, cut to keep the message readable.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 2048;
  if (s.size() <= kMax) return fmt::format("{:?}", s);
  return fmt::format("{:?}... ({} bytes)", s.substr(0, kMax), s.size());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// remotecommand

Outcome ParseErrorStream(std::string_view protocol, std::string error_data) {
  Outcome out;
  out.error_data = std::move(error_data);
  if (out.error_data.empty()) {  // nothing: success in every version
    out.success = true;
    out.exit_code = 0;
    return out;
  }
  if (ProtocolVersion(protocol) < 4) {  // plain error text
    out.message = out.error_data;
    return out;
  }
  // client-go's errorDecoderV4.
  auto status = nlohmann::json::parse(out.error_data, nullptr, false);
  if (status.is_discarded() || !status.is_object()) {
    out.message = out.error_data;
    return out;
  }
  try {
    out.message = status.value("message", "");
    out.reason = status.value("reason", "");
    if (status.value("status", "") == "Success") {
      out.success = true;
      out.exit_code = 0;
      return out;
    }
    if (out.reason != "NonZeroExitCode" || !status.contains("details")) return out;
    for (const auto& cause : status["details"].value("causes", nlohmann::json::array())) {
      // metav1.StatusCause.Type is `reason` on the wire.
      if (cause.value("reason", "") != "ExitCode") continue;
      std::string text = cause.value("message", "");
      unsigned code = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), code);
      if (ec == std::errc() && end == text.data() + text.size() && code <= 255) {
        out.exit_code = static_cast<int>(code);
      }
      break;
    }
  } catch (const nlohmann::json::exception&) {
    // A field of the wrong type: not a status client-go understands; the raw text stays.
  }
  return out;
}

Result<std::unique_ptr<RemoteCommand>> RemoteCommand::Start(std::string_view url,
                                                            RemoteCommandOptions options) {
  std::unique_ptr<RemoteCommand> rc(new RemoteCommand());
  rc->options_ = std::move(options);
  if (rc->options_.transport == RemoteCommandOptions::Transport::kSpdy) {
    BERTH_TRY(rc->StartSpdy(url));
  } else {
    BERTH_TRY(rc->StartWs(url));
  }
  return rc;
}

RemoteCommand::~RemoteCommand() = default;

Status RemoteCommand::StartSpdy(std::string_view url) {
  std::vector<std::string> protocols = options_.protocols;
  if (protocols.empty()) {
    protocols = {"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"};
  }
  BERTH_ASSIGN_OR_RETURN(spdy_, SpdyConn::Dial(url, protocols, nullptr, options_.timeout));
  protocol_ = spdy_->Protocol();
  auto open = [&](const std::string& type) -> Status {
    BERTH_ASSIGN_OR_RETURN(uint32_t id,
                           spdy_->OpenStream({{"streamtype", type}}, false, options_.timeout));
    ids_[type] = id;
    return Ok();
  };
  // client-go's order; the error stream is only read.
  BERTH_TRY(open("error"));
  BERTH_TRY(spdy_->CloseWrite(ids_["error"]));
  if (options_.stdin) BERTH_TRY(open("stdin"));
  if (options_.stdout) BERTH_TRY(open("stdout"));
  if (options_.stderr && !options_.tty) BERTH_TRY(open("stderr"));
  if (options_.tty && ProtocolVersion(protocol_) >= 3) BERTH_TRY(open("resize"));
  stdout_done_ = !options_.stdout;
  return Ok();
}

Status RemoteCommand::StartWs(std::string_view url) {
  std::vector<std::string> protocols = options_.protocols;
  if (protocols.empty()) protocols = {"v4.channel.k8s.io"};
  BERTH_ASSIGN_OR_RETURN(ws_, WsConn::Dial(url, protocols, nullptr, options_.timeout));
  protocol_ = ws_->Protocol();
  auto channels = cs::ChannelProtocolFor(protocol_);
  if (!channels) return FailedPrecondition(fmt::format("unknown subprotocol {:?}", protocol_));
  channels_ = *channels;
  return Ok();
}

uint32_t RemoteCommand::StreamId(std::string_view streamtype) const {
  auto it = ids_.find(streamtype);
  return it == ids_.end() ? 0 : it->second;
}

Status RemoteCommand::SendChannel(uint8_t channel, std::string_view data) {
  std::string message = cs::EncodeChannelMessage(channels_, channel, data);
  return channels_.base64 ? ws_->SendText(message) : ws_->SendBinary(message);
}

Status RemoteCommand::WriteStdin(std::string_view data) {
  if (!options_.stdin) return FailedPrecondition("session without stdin");
  if (ws_) return SendChannel(cs::kStdinChannel, data);
  return spdy_->Write(StreamId("stdin"), data);
}

Status RemoteCommand::CloseStdin() {
  if (!options_.stdin) return FailedPrecondition("session without stdin");
  if (!ws_) return spdy_->CloseWrite(StreamId("stdin"));
  if (!channels_.stream_close) {
    return FailedPrecondition(
        fmt::format("subprotocol {:?} cannot close stdin (v5.channel.k8s.io can)", protocol_));
  }
  return ws_->SendBinary(cs::EncodeStreamClose(cs::kStdinChannel));
}

Status RemoteCommand::Resize(uint16_t width, uint16_t height) {
  std::string size = fmt::format("{{\"Width\":{},\"Height\":{}}}\n", width, height);
  if (ws_) return SendChannel(cs::kResizeChannel, size);
  uint32_t id = StreamId("resize");
  if (id == 0) return FailedPrecondition("no resize stream (needs tty and protocol v3+)");
  return spdy_->Write(id, size);
}

Result<bool> RemoteCommand::PumpWs(Millis timeout) {
  if (ws_closed_) return false;
  BERTH_ASSIGN_OR_RETURN(std::optional<ws::Message> message, ws_->ReadMessage(timeout));
  if (!message) {
    ws_closed_ = true;
    stdout_done_ = true;
    return false;
  }
  auto decoded = cs::DecodeChannelMessage(channels_, message->data);
  if (!decoded) return std::move(decoded).error().Wrap("websocket channel message");
  if (!decoded->has_value()) return true;  // empty: ignored, as wsstream does
  cs::ChannelMessage& m = **decoded;
  if (m.kind == cs::ChannelMessage::Kind::kClose) {
    if (m.channel == cs::kStdoutChannel) stdout_done_ = true;
    return true;
  }
  switch (m.channel) {
    case cs::kStdoutChannel:
      stdout_ += m.data;
      break;
    case cs::kStderrChannel:
      stderr_ += m.data;
      break;
    case cs::kErrorChannel:
      error_ += m.data;
      break;
    default:
      break;  // the server has no business elsewhere; tests look at the raw conn if they care
  }
  return true;
}

Result<std::string> RemoteCommand::ReadStdoutUntil(std::string_view needle, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!ws_ && !options_.stdout) return FailedPrecondition("session without stdout");
  while (stdout_.find(needle) == std::string::npos) {
    if (stdout_done_) {
      return OutOfRange(
          fmt::format("stdout ended without {:?}; stdout: {}", needle, Quote(stdout_)));
    }
    if (ws_) {
      auto more = PumpWs(Left(deadline));
      if (!more) {
        return Error(more.error().Code(), fmt::format("waiting for {:?} on stdout: {}; stdout: {}",
                                                      needle, more.error().What(), Quote(stdout_)));
      }
      continue;
    }
    auto chunk = spdy_->Read(StreamId("stdout"), Left(deadline));
    if (!chunk) {
      return Error(chunk.error().Code(), fmt::format("waiting for {:?} on stdout: {}; stdout: {}",
                                                     needle, chunk.error().What(), Quote(stdout_)));
    }
    if (!chunk->has_value()) {
      stdout_done_ = true;
    } else {
      stdout_ += **chunk;
    }
  }
  return stdout_;
}

Result<Outcome> RemoteCommand::Wait(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  auto context = [&](const Error& e, std::string_view what) {
    return Error(e.Code(), fmt::format("waiting for {}: {}; stdout: {}; stderr: {}", what, e.What(),
                                       Quote(stdout_), Quote(stderr_)));
  };
  if (ws_) {
    while (true) {
      auto more = PumpWs(Left(deadline));
      if (!more) return context(more.error(), "the websocket connection to close");
      if (!*more) break;
    }
  } else {
    if (!stdout_done_) {
      auto out = spdy_->ReadAll(StreamId("stdout"), Left(deadline));
      if (!out) return context(out.error(), "the end of stdout");
      stdout_ += *out;
      stdout_done_ = true;
    }
    if (uint32_t id = StreamId("stderr"); id != 0) {
      auto err = spdy_->ReadAll(id, Left(deadline));
      if (!err) return context(err.error(), "the end of stderr");
      stderr_ += *err;
    }
    auto status = spdy_->ReadAll(StreamId("error"), Left(deadline));
    if (!status) return context(status.error(), "the end of the error stream");
    error_ += *status;
  }
  Outcome out = ParseErrorStream(protocol_, error_);
  out.stdout_data = stdout_;
  out.stderr_data = stderr_;
  return out;
}

void RemoteCommand::Abort() {
  if (spdy_) spdy_->Abort();
  if (ws_) ws_->Abort();
}

// ---------------------------------------------------------------------------------------------
// Port-forward over SPDY

Result<std::unique_ptr<PortForwardSpdy>> PortForwardSpdy::Dial(std::string_view url,
                                                               HttpReply* refused, Millis timeout) {
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<SpdyConn> conn,
                         SpdyConn::Dial(url, {"portforward.k8s.io"}, refused, timeout));
  return std::unique_ptr<PortForwardSpdy>(
      new PortForwardSpdy(std::shared_ptr<SpdyConn>(std::move(conn))));
}

Result<PfStream> PortForwardSpdy::Open(uint16_t port, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  const uint32_t request_id = next_request_id_++;
  const std::string port_text = std::to_string(port);
  const std::string request_text = std::to_string(request_id);
  // client-go's handleConnection: the error stream first, closed for writing at once.
  BERTH_ASSIGN_OR_RETURN(
      uint32_t error_id,
      conn_->OpenStream({{"streamtype", "error"}, {"port", port_text}, {"requestid", request_text}},
                        false, Left(deadline)));
  BERTH_TRY(conn_->CloseWrite(error_id));
  BERTH_ASSIGN_OR_RETURN(
      uint32_t data_id,
      conn_->OpenStream({{"streamtype", "data"}, {"port", port_text}, {"requestid", request_text}},
                        false, Left(deadline)));
  return PfStream(conn_, port, request_id, error_id, data_id);
}

// ---------------------------------------------------------------------------------------------
// Port-forward over WebSocket

Result<std::unique_ptr<PortForwardWs>> PortForwardWs::Dial(std::string_view url,
                                                           std::vector<std::string> subprotocols,
                                                           HttpReply* refused, Millis timeout) {
  BERTH_ASSIGN_OR_RETURN(Url u, ParseUrl(url));
  std::vector<uint16_t> ports;
  if (size_t q = u.target.find('?'); q != std::string::npos) {
    for (const auto& param : cs::http::ParseQuery(std::string_view(u.target).substr(q + 1))) {
      if (param.key != "port") continue;
      std::string_view list = param.value;
      while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
        unsigned value = 0;
        auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
        // A bad port is sent anyway (the server should refuse it); it just has no channel here.
        if (ec == std::errc() && end == item.data() + item.size() && value <= 65535) {
          ports.push_back(static_cast<uint16_t>(value));
        }
      }
    }
  }
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<WsConn> ws,
                         WsConn::Dial(url, subprotocols, refused, timeout));
  if (!cs::ChannelProtocolFor(ws->Protocol())) {
    return FailedPrecondition(fmt::format("unknown subprotocol {:?}", ws->Protocol()));
  }
  return std::unique_ptr<PortForwardWs>(new PortForwardWs(std::move(ws), std::move(ports)));
}

PortForwardWs::PortForwardWs(std::unique_ptr<WsConn> ws, std::vector<uint16_t> ports)
    : ws_(std::move(ws)),
      ports_(std::move(ports)),
      channels_(*cs::ChannelProtocolFor(ws_->Protocol())),
      state_(ports_.size()),
      pump_([this](const std::stop_token& stop) { Pump(stop); }) {}

PortForwardWs::~PortForwardWs() {
  pump_.request_stop();
  if (pump_.joinable()) pump_.join();
}

void PortForwardWs::Pump(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    auto message = ws_->ReadMessage(Millis(50));
    if (!message && message.error().Is(Errc::kDeadlineExceeded)) continue;
    if (!message || !message->has_value()) break;
    auto decoded = cs::DecodeChannelMessage(channels_, (*message)->data);
    std::lock_guard lock(mu_);
    if (!decoded) {
      if (!protocol_error_) protocol_error_ = std::move(decoded).error();
      continue;
    }
    if (!decoded->has_value() || (*decoded)->kind != cs::ChannelMessage::Kind::kData) continue;
    cs::ChannelMessage& m = **decoded;
    const size_t index = m.channel / 2;
    const bool error_channel = m.channel % 2 == 1;
    if (index >= ports_.size()) {
      if (!protocol_error_) {
        protocol_error_ = InvalidArgument(
            fmt::format("message on channel {} of {} ports", m.channel, ports_.size()));
      }
      continue;
    }
    Port& p = state_[index];
    bool& prefixed = error_channel ? p.error_prefix : p.data_prefix;
    std::string_view data = m.data;
    if (!prefixed) {
      prefixed = true;
      if (!data.starts_with(cs::PortPrefix(ports_[index])) && !protocol_error_) {
        protocol_error_ =
            InvalidArgument(fmt::format("channel {} starts with {:?}, not port {}'s prefix",
                                        m.channel, data.substr(0, 2), ports_[index]));
      }
      data.remove_prefix(std::min<size_t>(2, data.size()));
    }
    if (!data.empty()) {
      if (error_channel) {
        p.error += data;
      } else {
        p.data.emplace_back(data);
      }
    }
    cv_.notify_all();
  }
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

Status PortForwardWs::CheckIndex(size_t port_index) const {
  if (port_index >= ports_.size()) {
    return OutOfRange(fmt::format("port index {} of {} ports", port_index, ports_.size()));
  }
  return Ok();
}

Status PortForwardWs::Write(size_t port_index, std::string_view data) {
  BERTH_TRY(CheckIndex(port_index));
  std::string message =
      cs::EncodeChannelMessage(channels_, cs::PortForwardChannels(port_index).first, data);
  return channels_.base64 ? ws_->SendText(message) : ws_->SendBinary(message);
}

Result<std::optional<std::string>> PortForwardWs::Read(size_t port_index, Millis timeout) {
  BERTH_TRY(CheckIndex(port_index));
  std::unique_lock lock(mu_);
  Port& p = state_[port_index];
  if (!cv_.wait_for(lock, timeout, [&] { return !p.data.empty() || closed_; })) {
    return io::Deadline(
        fmt::format("no data for port {} in {} ms", ports_[port_index], timeout.count()));
  }
  if (p.data.empty()) return std::optional<std::string>();
  std::string chunk = std::move(p.data.front());
  p.data.pop_front();
  return std::optional<std::string>(std::move(chunk));
}

Result<std::string> PortForwardWs::ReadAll(size_t port_index, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  while (true) {
    auto chunk = Read(port_index, Left(deadline));
    if (!chunk) {
      return Error(chunk.error().Code(),
                   fmt::format("{} (read so far: {})", chunk.error().What(), Quote(out)));
    }
    if (!chunk->has_value()) return out;
    out += **chunk;
  }
}

Result<std::string> PortForwardWs::ErrorText(size_t port_index, Millis timeout) {
  BERTH_TRY(CheckIndex(port_index));
  std::unique_lock lock(mu_);
  Port& p = state_[port_index];
  if (!cv_.wait_for(lock, timeout, [&] { return !p.error.empty() || closed_; })) {
    return io::Deadline(
        fmt::format("no error text for port {} in {} ms", ports_[port_index], timeout.count()));
  }
  return p.error;
}

std::optional<Error> PortForwardWs::ProtocolError() const {
  std::lock_guard lock(mu_);
  return protocol_error_;
}

}  // namespace berth::testing::stream

#pragma once
// Kubernetes' channel protocols over WebSocket (reference/cri.md §12; apimachinery wsstream,
// kubelet's remotecommand/websocket.go and portforward/websocket.go). Every WebSocket message
// carries one channel: a binary message starts with the channel byte; in the base64 variants a
// text message starts with the ASCII digit '0'+channel followed by the data in standard base64.
// v5.channel.k8s.io adds the CLOSE signal: channel 255 with a one-byte payload naming the channel
// the sender will write no more to (a client's stdin EOF).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/errdefs.h"

namespace berth::cri::streaming {

// remotecommand channels (exec, attach).
inline constexpr uint8_t kStdinChannel = 0;
inline constexpr uint8_t kStdoutChannel = 1;
inline constexpr uint8_t kStderrChannel = 2;
inline constexpr uint8_t kErrorChannel = 3;
inline constexpr uint8_t kResizeChannel = 4;
// v5's CLOSE signal.
inline constexpr uint8_t kStreamCloseChannel = 255;

struct ChannelProtocol {
  bool base64 = false;        // text messages, '0'+channel, base64 data
  bool stream_close = false;  // v5: the CLOSE signal on channel 255
};

// What a negotiated WebSocket subprotocol means: "", channel.k8s.io, v4.channel.k8s.io,
// v5.channel.k8s.io (binary; v5 with CLOSE); base64.channel.k8s.io, v4.base64.channel.k8s.io
// (base64). nullopt for anything else. The v4 difference (the error channel's JSON status) is
// the session's business.
std::optional<ChannelProtocol> ChannelProtocolFor(std::string_view subprotocol);

// One message's payload for `channel` (send it as a text frame when protocol.base64, else
// binary). Binary: the channel byte then `data`; base64: '0'+channel then base64(data).
std::string EncodeChannelMessage(const ChannelProtocol& protocol, uint8_t channel,
                                 std::string_view data);
// v5's CLOSE signal for `channel`: {255, channel}.
std::string EncodeStreamClose(uint8_t channel);

struct ChannelMessage {
  enum class Kind { kData, kClose };
  Kind kind = Kind::kData;
  uint8_t channel = 0;  // for kClose, the channel being closed
  std::string data;     // decoded
};

// Decodes a received message as wsstream does. An empty message is nullopt (ignored upstream).
// With stream_close, a message starting with byte 255 is a CLOSE: it must be exactly 2 bytes,
// else InvalidArgument (upstream drops the connection). Base64: the channel is the first byte
// minus '0' (uint8 wrap-around, as upstream), the rest must be valid base64 (else
// InvalidArgument; upstream drops just that message). The channel is not range-checked: the
// session ignores data for channels it does not have, as upstream does.
Result<std::optional<ChannelMessage>> DecodeChannelMessage(const ChannelProtocol& protocol,
                                                           std::string_view payload);

// Port-forward over WebSocket: the i-th requested port uses channel 2i for data and 2i+1 for
// errors. The server's first message on each of both channels is the port, 2 bytes
// little-endian (then its data or error text in later messages).
inline std::pair<uint8_t, uint8_t> PortForwardChannels(size_t port_index) {
  return {static_cast<uint8_t>(2 * port_index), static_cast<uint8_t>(2 * port_index + 1)};
}
std::string PortPrefix(uint16_t port);

}  // namespace berth::cri::streaming

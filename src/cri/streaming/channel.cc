#include "cri/streaming/channel.h"

#include "common/base64.h"

namespace berth::cri::streaming {

std::optional<ChannelProtocol> ChannelProtocolFor(std::string_view subprotocol) {
  if (subprotocol.empty() || subprotocol == "channel.k8s.io" ||
      subprotocol == "v4.channel.k8s.io") {
    return ChannelProtocol{.base64 = false, .stream_close = false};
  }
  if (subprotocol == "v5.channel.k8s.io") {
    return ChannelProtocol{.base64 = false, .stream_close = true};
  }
  if (subprotocol == "base64.channel.k8s.io" || subprotocol == "v4.base64.channel.k8s.io") {
    return ChannelProtocol{.base64 = true, .stream_close = false};
  }
  return std::nullopt;
}

std::string EncodeChannelMessage(const ChannelProtocol& protocol, uint8_t channel,
                                 std::string_view data) {
  if (protocol.base64) {
    std::string out(1, static_cast<char>('0' + channel));
    out += Base64Encode(data);
    return out;
  }
  std::string out;
  out.reserve(data.size() + 1);
  out.push_back(static_cast<char>(channel));
  out.append(data);
  return out;
}

std::string EncodeStreamClose(uint8_t channel) {
  return std::string{static_cast<char>(kStreamCloseChannel), static_cast<char>(channel)};
}

Result<std::optional<ChannelMessage>> DecodeChannelMessage(const ChannelProtocol& protocol,
                                                           std::string_view payload) {
  if (payload.empty()) return std::optional<ChannelMessage>();
  auto first = static_cast<uint8_t>(payload[0]);
  if (protocol.stream_close && first == kStreamCloseChannel) {
    if (payload.size() != 2) {
      return InvalidArgument("single channel byte should follow stream close signal");
    }
    return std::optional<ChannelMessage>(ChannelMessage{.kind = ChannelMessage::Kind::kClose,
                                                        .channel = static_cast<uint8_t>(payload[1]),
                                                        .data = {}});
  }
  ChannelMessage msg{.kind = ChannelMessage::Kind::kData, .channel = first, .data = {}};
  payload.remove_prefix(1);
  if (protocol.base64) {
    msg.channel = static_cast<uint8_t>(first - '0');
    BERTH_ASSIGN_OR_RETURN(msg.data, Base64Decode(payload));
  } else {
    msg.data.assign(payload);
  }
  return std::optional<ChannelMessage>(std::move(msg));
}

std::string PortPrefix(uint16_t port) {
  return std::string{static_cast<char>(port & 0xFF), static_cast<char>(port >> 8)};
}

}  // namespace berth::cri::streaming

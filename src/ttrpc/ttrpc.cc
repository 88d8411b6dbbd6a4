// Frame codec, metadata and the pieces both ends share.
#include <cstring>

#include "common/errdefs.h"
#include "ttrpc/internal.h"
#include "ttrpc/ttrpc.h"
#include "ttrpc/ttrpc.pb.h"

namespace berth::ttrpc {

void EncodeHeader(const FrameHeader& header, uint8_t out[kHeaderLength]) {
  out[0] = static_cast<uint8_t>(header.length >> 24);
  out[1] = static_cast<uint8_t>(header.length >> 16);
  out[2] = static_cast<uint8_t>(header.length >> 8);
  out[3] = static_cast<uint8_t>(header.length);
  out[4] = static_cast<uint8_t>(header.stream_id >> 24);
  out[5] = static_cast<uint8_t>(header.stream_id >> 16);
  out[6] = static_cast<uint8_t>(header.stream_id >> 8);
  out[7] = static_cast<uint8_t>(header.stream_id);
  out[8] = static_cast<uint8_t>(header.type);
  out[9] = header.flags;
}

FrameHeader DecodeHeader(const uint8_t in[kHeaderLength]) {
  auto be32 = [](const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  };
  return FrameHeader{.length = be32(in),
                     .stream_id = be32(in + 4),
                     .type = static_cast<MessageType>(in[8]),
                     .flags = in[9]};
}

void Metadata::Add(std::string_view key, std::string value) {
  std::string lower(key);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  entries_.emplace_back(std::move(lower), std::move(value));
}

std::optional<std::string> Metadata::Get(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k.size() == key.size() && std::equal(k.begin(), k.end(), key.begin(), [](char a, char b) {
          return a == ((b >= 'A' && b <= 'Z') ? static_cast<char>(b - 'A' + 'a') : b);
        })) {
      return v;
    }
  }
  return std::nullopt;
}

namespace internal {

std::string MakeFrame(uint32_t stream_id, MessageType type, std::string_view body) {
  std::string frame(kHeaderLength + body.size(), '\0');
  EncodeHeader({.length = static_cast<uint32_t>(body.size()), .stream_id = stream_id, .type = type},
               reinterpret_cast<uint8_t*>(frame.data()));
  std::memcpy(frame.data() + kHeaderLength, body.data(), body.size());
  return frame;
}

std::string MakeResponse(int grpc_code, std::string_view message, std::string_view payload) {
  wire::Response resp;
  resp.mutable_status()->set_code(grpc_code);
  resp.mutable_status()->set_message(std::string(message));
  resp.set_payload(std::string(payload));
  return resp.SerializeAsString();
}

Result<UnixAddress> ParseAddress(std::string_view address) {
  constexpr std::string_view kScheme = "unix://";
  if (address.starts_with(kScheme)) {
    address.remove_prefix(kScheme.size());
  }
  if (address.empty()) {
    return InvalidArgument("ttrpc: empty address");
  }
  UnixAddress out;
  out.addr.sun_family = AF_UNIX;
  if (address.size() >= sizeof(out.addr.sun_path)) {
    return InvalidArgument("ttrpc: socket address too long: " + std::string(address));
  }
  std::memcpy(out.addr.sun_path, address.data(), address.size());
  if (address.front() == '@') {
    out.addr.sun_path[0] = '\0';  // abstract: length counts exactly the name
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  } else {
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1);
  }
  return out;
}

}  // namespace internal
}  // namespace berth::ttrpc

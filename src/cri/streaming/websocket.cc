#include "cri/streaming/websocket.h"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <algorithm>

namespace berth::cri::streaming::ws {
namespace {

constexpr uint8_t kFinBit = 0x80;
constexpr uint8_t kRsvBits = 0x70;
constexpr uint8_t kMaskBit = 0x80;

bool IsControl(Opcode op) { return (static_cast<uint8_t>(op) & 0x8) != 0; }

bool IsKnownOpcode(uint8_t op) { return op <= 0x2 || (op >= 0x8 && op <= 0xA); }

Error ProtocolError(std::string what) { return InvalidArgument("websocket: " + std::move(what)); }

MaskKey RandomMask() {
  MaskKey key{};
  // RFC 6455 §5.3: unpredictable keys. RAND_bytes only fails without an entropy source.
  BERTH_CHECK(RAND_bytes(key.data(), static_cast<int>(key.size())) == 1, "RAND_bytes failed");
  return key;
}

}  // namespace

std::string EncodeFrame(Opcode opcode, std::string_view payload, bool fin,
                        const std::optional<MaskKey>& mask) {
  std::string out;
  out.reserve(payload.size() + 14);
  out.push_back(static_cast<char>((fin ? kFinBit : 0) | static_cast<uint8_t>(opcode)));
  uint8_t mask_bit = mask ? kMaskBit : 0;
  uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(mask_bit | n));
  } else if (n <= 0xFFFF) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  }
  if (!mask) {
    out.append(payload);
    return out;
  }
  for (uint8_t b : *mask) out.push_back(static_cast<char>(b));
  for (size_t i = 0; i < payload.size(); ++i) {
    out.push_back(static_cast<char>(static_cast<uint8_t>(payload[i]) ^ (*mask)[i % 4]));
  }
  return out;
}

std::string ClosePayload(uint16_t code, std::string_view reason) {
  std::string out;
  out.push_back(static_cast<char>(code >> 8));
  out.push_back(static_cast<char>(code & 0xFF));
  out.append(reason.substr(0, kMaxControlPayload - 2));
  return out;
}

bool IsValidCloseCode(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

FrameParser::FrameParser(Role role, size_t max_payload) : role_(role), max_payload_(max_payload) {}

size_t FrameParser::HeaderSize() const {
  if (header_len_ < 2) return 2;
  return 2 + LengthSize() + ((header_[1] & kMaskBit) != 0 ? 4 : 0);
}

Status FrameParser::Feed(std::string_view data, std::vector<Frame>& out) {
  if (failed_) return FailedPrecondition("websocket: frame parser failed earlier");
  while (!data.empty()) {
    if (!in_payload_) {
      size_t take = std::min(HeaderSize() - header_len_, data.size());
      std::copy_n(data.begin(), take, header_.begin() + static_cast<ptrdiff_t>(header_len_));
      header_len_ += take;
      data.remove_prefix(take);
      Status st = CheckHeader();  // refuses as early as the bytes so far allow
      if (!st) {
        failed_ = true;
        return st;
      }
      if (header_len_ < HeaderSize()) continue;  // the first 2 bytes tell how many follow
      BeginPayload();
      if (remaining_ != 0) continue;
      // An empty payload: the frame is complete with its header.
    } else {
      size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
      size_t base = frame_.payload.size();
      frame_.payload.append(data.substr(0, take));
      if (mask_) {
        for (size_t i = 0; i < take; ++i) {
          frame_.payload[base + i] = static_cast<char>(
              static_cast<uint8_t>(frame_.payload[base + i]) ^ (*mask_)[(mask_offset_ + i) % 4]);
        }
        mask_offset_ = (mask_offset_ + take) % 4;
      }
      remaining_ -= take;
      data.remove_prefix(take);
      if (remaining_ != 0) continue;
    }
    out.push_back(std::move(frame_));
    frame_ = Frame{};
    in_payload_ = false;
    header_len_ = 0;
    checked_start_ = false;
    checked_length_ = false;
  }
  return Ok();
}

size_t FrameParser::LengthSize() const {
  uint8_t len7 = header_[1] & 0x7F;
  return len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
}

Status FrameParser::CheckHeader() {
  if (header_len_ < 2) return Ok();
  uint8_t b0 = header_[0];
  uint8_t b1 = header_[1];
  if (!checked_start_) {
    checked_start_ = true;
    if ((b0 & kRsvBits) != 0) return ProtocolError("reserved bits set without an extension");
    uint8_t op = b0 & 0x0F;
    if (!IsKnownOpcode(op)) return ProtocolError(fmt::format("unknown opcode {:#x}", op));
    if (IsControl(static_cast<Opcode>(op))) {
      if ((b0 & kFinBit) == 0) return ProtocolError("fragmented control frame");
      if ((b1 & 0x7F) > kMaxControlPayload) return ProtocolError("control frame over 125 bytes");
    }
    bool masked = (b1 & kMaskBit) != 0;
    if (role_ == Role::kServer && !masked) return ProtocolError("unmasked client frame");
    if (role_ == Role::kClient && masked) return ProtocolError("masked server frame");
  }
  if (checked_length_ || header_len_ < 2 + LengthSize()) return Ok();
  checked_length_ = true;
  uint64_t len = b1 & 0x7F;
  if (len == 126) {
    len = (uint64_t{header_[2]} << 8) | header_[3];
  } else if (len == 127) {
    len = 0;
    for (size_t i = 2; i < 10; ++i) len = (len << 8) | header_[i];
    if ((len >> 63) != 0) return ProtocolError("64-bit payload length with the top bit set");
  }
  if (len > max_payload_) {
    return Error(
        Errc::kResourceExhausted,
        fmt::format("websocket: frame of {} bytes exceeds the limit of {}", len, max_payload_));
  }
  remaining_ = len;
  return Ok();
}

void FrameParser::BeginPayload() {
  size_t pos = 2 + LengthSize();
  mask_.reset();
  if ((header_[1] & kMaskBit) != 0) {
    mask_ = MaskKey{header_[pos], header_[pos + 1], header_[pos + 2], header_[pos + 3]};
  }
  mask_offset_ = 0;
  frame_.fin = (header_[0] & kFinBit) != 0;
  frame_.opcode = static_cast<Opcode>(header_[0] & 0x0F);
  // Grown as bytes arrive: a bare header must not cost a maximal buffer.
  frame_.payload.reserve(static_cast<size_t>(std::min<uint64_t>(remaining_, 64 * 1024)));
  in_payload_ = true;
}

Connection::Connection(ConnectionOptions options)
    : options_(options), parser_(options.role, options.max_frame_payload) {}

Status Connection::Feed(std::string_view data, std::vector<Message>& messages) {
  if (failed_) return FailedPrecondition("websocket: connection failed earlier");
  if (close_received_) return Ok();  // nothing may follow the peer's close frame
  frames_.clear();
  Status parsed = parser_.Feed(data, frames_);
  // Frames before a bad one are still handled, in order; the parser's error comes last.
  for (Frame& frame : frames_) {
    if (close_received_) break;
    Status st = HandleFrame(frame, messages);
    if (!st) return Fail(std::move(st).error());
  }
  frames_.clear();
  if (!parsed && !close_received_) return Fail(std::move(parsed).error());
  return Ok();
}

Status Connection::HandleFrame(Frame& frame, std::vector<Message>& messages) {
  switch (frame.opcode) {
    case Opcode::kPing:
      if (!close_sent_) Queue(Opcode::kPong, frame.payload);
      return Ok();
    case Opcode::kPong:
      return Ok();
    case Opcode::kClose:
      return HandleClose(frame);
    case Opcode::kContinuation:
      if (!in_message_) return ProtocolError("continuation frame without a message");
      break;
    case Opcode::kText:
    case Opcode::kBinary:
      if (in_message_) return ProtocolError("new message before the last one's final fragment");
      in_message_ = true;
      partial_ = Message{.text = frame.opcode == Opcode::kText, .data = {}};
      break;
  }
  if (partial_.data.size() + frame.payload.size() > options_.max_message) {
    return Error(
        Errc::kResourceExhausted,
        fmt::format("websocket: message exceeds the limit of {} bytes", options_.max_message));
  }
  if (partial_.data.empty()) {
    partial_.data = std::move(frame.payload);
  } else {
    partial_.data.append(frame.payload);
  }
  if (frame.fin) {
    messages.push_back(std::move(partial_));
    partial_ = Message{};
    in_message_ = false;
  }
  return Ok();
}

Status Connection::HandleClose(const Frame& frame) {
  if (frame.payload.size() == 1) return ProtocolError("close frame with a 1-byte payload");
  uint16_t code = kCloseNoStatus;
  if (frame.payload.size() >= 2) {
    code = static_cast<uint16_t>((static_cast<uint8_t>(frame.payload[0]) << 8) |
                                 static_cast<uint8_t>(frame.payload[1]));
    if (!IsValidCloseCode(code)) return ProtocolError(fmt::format("close code {}", code));
  }
  close_received_ = true;
  peer_close_code_ = code;
  peer_close_reason_ = frame.payload.size() > 2 ? frame.payload.substr(2) : std::string();
  if (!close_sent_) {
    close_sent_ = true;
    Queue(Opcode::kClose, code == kCloseNoStatus ? std::string() : ClosePayload(code, {}));
  }
  return Ok();
}

Status Connection::Fail(Error error) {
  failed_ = true;
  Close(error.Is(Errc::kResourceExhausted) ? kCloseTooBig : kCloseProtocolError);
  return error;
}

void Connection::Queue(Opcode opcode, std::string_view payload) {
  std::optional<MaskKey> mask;
  if (options_.role == Role::kClient) mask = RandomMask();
  output_ += EncodeFrame(opcode, payload, true, mask);
}

bool Connection::SendBinary(std::string_view data) {
  if (close_sent_) return false;
  Queue(Opcode::kBinary, data);
  return true;
}

bool Connection::SendText(std::string_view data) {
  if (close_sent_) return false;
  Queue(Opcode::kText, data);
  return true;
}

bool Connection::SendPing(std::string_view payload) {
  BERTH_CHECK(payload.size() <= kMaxControlPayload, "websocket ping payload over 125 bytes");
  if (close_sent_) return false;
  Queue(Opcode::kPing, payload);
  return true;
}

bool Connection::Close(uint16_t code, std::string_view reason) {
  if (close_sent_) return false;
  close_sent_ = true;
  Queue(Opcode::kClose, ClosePayload(code, reason));
  return true;
}

}  // namespace berth::cri::streaming::ws

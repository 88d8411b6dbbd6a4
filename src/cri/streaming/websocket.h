#pragma once
// WebSocket (RFC 6455) framing and connection state, sans-I/O: bytes in, messages out; messages
// in, bytes out. The streaming server is the server role (reads masked frames, writes unmasked
// ones); the client role exists for the project's own test clients. No extensions are
// negotiated (RSV bits must be 0) and text is not checked for UTF-8: the k8s channel protocols
// only carry ASCII in text frames.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/errdefs.h"

namespace berth::cri::streaming::ws {

enum class Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Close status codes (RFC 6455 §7.4.1).
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseGoingAway = 1001;
inline constexpr uint16_t kCloseProtocolError = 1002;
inline constexpr uint16_t kCloseUnsupportedData = 1003;
inline constexpr uint16_t kCloseNoStatus = 1005;  // reported for a close frame without a code
inline constexpr uint16_t kClosePolicyViolation = 1008;
inline constexpr uint16_t kCloseTooBig = 1009;
inline constexpr uint16_t kCloseInternalError = 1011;

// Control frames (close, ping, pong) carry at most this much and are never fragmented.
inline constexpr size_t kMaxControlPayload = 125;

// Whose end a codec is: a server's peer must mask every frame and it masks none; a client's
// peer must not mask and it masks every frame.
enum class Role { kServer, kClient };

struct Frame {
  bool fin = true;
  Opcode opcode = Opcode::kBinary;
  std::string payload;  // unmasked
};

using MaskKey = std::array<uint8_t, 4>;

// One frame's bytes: FIN + opcode, the 7-, 16- or 64-bit length (the shortest that fits), and
// the payload, masked with `mask` when given (client frames).
std::string EncodeFrame(Opcode opcode, std::string_view payload, bool fin = true,
                        const std::optional<MaskKey>& mask = std::nullopt);
// A close frame's payload: the code big-endian, then the reason (cut to fit 125 bytes).
std::string ClosePayload(uint16_t code, std::string_view reason);
// True for codes a peer may send (1000-1003, 1007-1014, 3000-4999).
bool IsValidCloseCode(uint16_t code);

// Splits bytes fed in any chunking into frames. Checks what one frame can break: RSV bits,
// unknown opcodes, control frames over 125 bytes or fragmented, the mask bit for the role, a
// 64-bit length with its top bit set (InvalidArgument: close with 1002), a payload over
// `max_payload` (ResourceExhausted: close with 1009; refused from the header alone, before any
// payload is buffered). Message-level rules (continuations, close payloads) are Connection's.
// After an error every Feed is refused.
class FrameParser {
 public:
  FrameParser(Role role, size_t max_payload);

  // Appends each frame completed by `data` to `out`.
  Status Feed(std::string_view data, std::vector<Frame>& out);

 private:
  size_t HeaderSize() const;  // of the header in header_, as far as its first bytes tell
  size_t LengthSize() const;  // extended length bytes: 0, 2 or 8
  Status CheckHeader();
  void BeginPayload();

  Role role_;
  size_t max_payload_;
  bool failed_ = false;
  bool in_payload_ = false;
  bool checked_start_ = false;        // first two bytes checked
  bool checked_length_ = false;       // length known and checked (in remaining_)
  std::array<uint8_t, 14> header_{};  // 2 + up to 8 length + 4 mask bytes
  size_t header_len_ = 0;
  Frame frame_;
  uint64_t remaining_ = 0;  // payload bytes still to come
  std::optional<MaskKey> mask_;
  size_t mask_offset_ = 0;
};

struct Message {
  bool text = false;  // text (opcode 1) or binary (opcode 2)
  std::string data;   // fragments joined
};

struct ConnectionOptions {
  Role role = Role::kServer;
  // Go's clients write stdin and forwarded ports in 32 KiB pieces; a frame is buffered whole.
  size_t max_frame_payload = 1024 * 1024;
  // The most bytes a fragmented message may reassemble to.
  size_t max_message = 4 * 1024 * 1024;
};

// One WebSocket connection after the handshake. Feed() takes the peer's bytes and returns
// complete data messages; everything to send (messages, pongs, close frames) collects in an
// output buffer the owner writes out (TakeOutput()).
//
// Pings are answered with a pong carrying the same payload; pongs are dropped. A close frame
// from the peer is answered with a close frame echoing its code (an empty one if it had none),
// unless ours was already sent; once both are exchanged Closed() is true and the owner closes
// TCP (RFC 6455 §7.1.1: the server first). Bytes after the peer's close frame are ignored.
//
// Protocol errors — the FrameParser's, a continuation with no message begun, a new message
// before the last one's final fragment, a 1-byte close payload or a close code a peer may not
// send (InvalidArgument), a message over max_message (ResourceExhausted) — queue a close frame
// with 1002 or 1009 (if none was sent yet) and return the error; the owner writes the output and
// closes. Later Feeds are refused.
class Connection {
 public:
  explicit Connection(ConnectionOptions options = {});

  // Appends the messages completed by `data` to `messages`.
  Status Feed(std::string_view data, std::vector<Message>& messages);

  // Queue one unfragmented message; false (nothing queued) once our close frame is out.
  bool SendBinary(std::string_view data);
  bool SendText(std::string_view data);
  // payload ≤ 125 bytes.
  bool SendPing(std::string_view payload = {});
  // Starts the closing handshake (or answers it); false if our close frame was already sent.
  bool Close(uint16_t code = kCloseNormal, std::string_view reason = {});

  bool HasOutput() const { return !output_.empty(); }
  std::string TakeOutput() { return std::exchange(output_, {}); }

  bool CloseSent() const { return close_sent_; }
  bool CloseReceived() const { return close_received_; }
  bool Closed() const { return close_sent_ && close_received_; }
  // The peer's close code (kCloseNoStatus if its frame carried none) and reason.
  uint16_t PeerCloseCode() const { return peer_close_code_; }
  const std::string& PeerCloseReason() const { return peer_close_reason_; }

 private:
  Status HandleFrame(Frame& frame, std::vector<Message>& messages);
  Status HandleClose(const Frame& frame);
  void Queue(Opcode opcode, std::string_view payload);
  Status Fail(Error error);

  ConnectionOptions options_;
  FrameParser parser_;
  std::vector<Frame> frames_;  // reused between Feeds
  bool in_message_ = false;
  Message partial_;
  bool close_sent_ = false;
  bool close_received_ = false;
  bool failed_ = false;
  uint16_t peer_close_code_ = 0;
  std::string peer_close_reason_;
  std::string output_;
};

}  // namespace berth::cri::streaming::ws

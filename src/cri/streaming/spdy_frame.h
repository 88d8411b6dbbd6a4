#pragma once
// SPDY/3.1 frames as spdystream (moby/spdystream, what client-go speaks) reads and writes them:
// the header block format, typed frames, an incremental parser and a writer. Sans-I/O: bytes in,
// frames out, frames in, bytes out. Facts: reference/cri.md §13.
//
// Big-endian throughout. A control frame is `80 03` (control bit + version 3), type (16 bits),
// flags (8), length (24) and `length` payload bytes; a DATA frame is stream id (32, top bit 0),
// flags (8), length (24) and the payload.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/errdefs.h"
#include "cri/streaming/spdy_zlib.h"

namespace berth::cri::streaming::spdy {

inline constexpr uint16_t kVersion = 3;
inline constexpr size_t kFrameHeaderSize = 8;
// The 24-bit length field's limit.
inline constexpr uint32_t kMaxFrameLength = 0xFFFFFF;
// Frames larger than this are refused unless the owner says otherwise. Go's clients write stdin
// and forwarded ports in 32 KiB chunks, one DATA frame per write; a frame is buffered whole.
inline constexpr uint32_t kDefaultMaxFrameSize = 1024 * 1024;

enum class FrameType : uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

inline constexpr uint8_t kFlagFin = 0x01;             // SYN_STREAM, SYN_REPLY, HEADERS, DATA
inline constexpr uint8_t kFlagUnidirectional = 0x02;  // SYN_STREAM

// RST_STREAM status codes (0 is invalid on the wire).
enum class RstStatus : uint32_t {
  kProtocolError = 1,
  kInvalidStream = 2,
  kRefusedStream = 3,
  kUnsupportedVersion = 4,
  kCancel = 5,
  kInternalError = 6,
  kFlowControlError = 7,
  kStreamInUse = 8,
  kStreamAlreadyClosed = 9,
  kInvalidCredentials = 10,
  kFrameTooLarge = 11,
};

enum class GoAwayStatus : uint32_t {
  kOk = 0,
  kProtocolError = 1,
  kInternalError = 2,
};

// One header block: entries in wire order; a name with several values carries them separately
// (NUL-joined on the wire). On the wire names are lowercase and unique.
class HeaderBlock {
 public:
  struct Entry {
    std::string name;
    std::vector<std::string> values;
    bool operator==(const Entry&) const = default;
  };

  HeaderBlock() = default;
  HeaderBlock(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs);

  // Adds a value to `name` (a second value of the same name joins the first entry). Names are
  // taken as given; EncodeHeaderBlock refuses upper-case ones.
  void Add(std::string_view name, std::string_view value);
  // The first value of `name`, nullopt when absent.
  std::optional<std::string_view> Get(std::string_view name) const;
  const std::vector<Entry>& Entries() const { return entries_; }
  bool Empty() const { return entries_.empty(); }

  bool operator==(const HeaderBlock&) const = default;

 private:
  friend Result<HeaderBlock> DecodeHeaderBlock(std::string_view block);
  std::vector<Entry> entries_;
};

// The uncompressed block: pair count (4), then per pair name length (4), name, value length (4),
// value. InvalidArgument for an empty or upper-case name, a name with a NUL, or a name or value
// over 2^32-1 bytes.
Result<std::string> EncodeHeaderBlock(const HeaderBlock& headers);
// InvalidArgument for truncated input, trailing bytes, an empty, upper-case or duplicate name.
Result<HeaderBlock> DecodeHeaderBlock(std::string_view block);

struct SynStream {
  uint32_t stream_id = 0;
  uint32_t associated_id = 0;
  uint8_t priority = 0;  // 0 (highest) .. 7
  uint8_t slot = 0;
  uint8_t flags = 0;  // kFlagFin, kFlagUnidirectional
  HeaderBlock headers;
  bool operator==(const SynStream&) const = default;
};
struct SynReply {
  uint32_t stream_id = 0;
  uint8_t flags = 0;  // kFlagFin
  HeaderBlock headers;
  bool operator==(const SynReply&) const = default;
};
struct RstStream {
  uint32_t stream_id = 0;
  uint32_t status = 0;  // a RstStatus; the peer may send any number
  bool operator==(const RstStream&) const = default;
};
struct Settings {
  struct Entry {
    uint8_t flags = 0;  // 1 PERSIST_VALUE, 2 PERSISTED
    uint32_t id = 0;    // 24 bits: 4 MAX_CONCURRENT_STREAMS, 7 INITIAL_WINDOW_SIZE, ...
    uint32_t value = 0;
    bool operator==(const Entry&) const = default;
  };
  uint8_t flags = 0;
  std::vector<Entry> entries;
  bool operator==(const Settings&) const = default;
};
struct Ping {
  uint32_t id = 0;
  bool operator==(const Ping&) const = default;
};
struct GoAway {
  uint32_t last_good_stream_id = 0;
  uint32_t status = 0;  // a GoAwayStatus
  bool operator==(const GoAway&) const = default;
};
struct Headers {
  uint32_t stream_id = 0;
  uint8_t flags = 0;  // kFlagFin
  HeaderBlock headers;
  bool operator==(const Headers&) const = default;
};
struct WindowUpdate {
  uint32_t stream_id = 0;
  uint32_t delta = 0;
  bool operator==(const WindowUpdate&) const = default;
};
struct Data {
  uint32_t stream_id = 0;
  uint8_t flags = 0;  // kFlagFin
  std::string payload;
  bool operator==(const Data&) const = default;
};

using Frame = std::variant<SynStream, SynReply, RstStream, Settings, Ping, GoAway, Headers,
                           WindowUpdate, Data>;

struct ParserOptions {
  // Largest `length` accepted in any frame header (at most kMaxFrameLength).
  uint32_t max_frame_size = kDefaultMaxFrameSize;
  // Largest decompressed header block.
  size_t max_header_block_size = kDefaultMaxHeaderBlockSize;
};

// Appends one DATA frame (no compression involved, so any number of writers may do it).
// `stream_id` must fit 31 bits and `payload` kMaxFrameLength bytes.
void AppendDataFrame(std::string& out, uint32_t stream_id, uint8_t flags, std::string_view payload);

// Reads the frames of one direction of a connection from byte chunks cut anywhere. Header blocks
// come out decompressed (through this parser's one Inflater) and decoded.
class FrameParser {
 public:
  explicit FrameParser(ParserOptions options = {});

  // Buffers bytes from the peer; Next() then yields the frames they complete.
  void Append(std::string_view bytes);
  // The next whole frame, nullopt when more bytes are needed. Errors: InvalidArgument for a
  // version other than 3, an unknown control type, a length wrong for its type, stream id 0 where
  // one is needed, a bad header block; ResourceExhausted for a frame over max_frame_size (seen
  // from its header, before its payload is buffered) or a header block inflating past its limit.
  // An error is final: framing and compression state are lost, every later call returns it.
  Result<std::optional<Frame>> Next();
  // Bytes buffered and not yet returned as frames.
  size_t Buffered() const { return buffer_.size() - offset_; }

 private:
  Result<Frame> ParseControl(uint16_t type, uint8_t flags, std::string_view payload);
  Result<HeaderBlock> ReadHeaderBlock(std::string_view compressed);

  ParserOptions options_;
  Inflater inflater_;
  std::string buffer_;
  size_t offset_ = 0;
  std::optional<Error> error_;
};

// Writes the frames of one direction of a connection, compressing header blocks through this
// writer's one Deflater.
class FrameWriter {
 public:
  explicit FrameWriter(int compression_level = 9);

  // Appends `frame`'s bytes to `out`. InvalidArgument for a header block EncodeHeaderBlock
  // refuses, a stream id over 31 bits or a payload over kMaxFrameLength; nothing is appended
  // then and the compression state is untouched. A failed Deflater (zlib error) is final.
  Status Write(const Frame& frame, std::string& out);

 private:
  Status WriteHeaderFrame(FrameType type, uint8_t flags, std::string_view prefix,
                          const HeaderBlock& headers, std::string& out);

  Deflater deflater_;
};

}  // namespace berth::cri::streaming::spdy

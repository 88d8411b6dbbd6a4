#include "cri/streaming/spdy_frame.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

namespace berth::cri::streaming::spdy {
namespace {

constexpr uint32_t kStreamIdMask = 0x7FFFFFFF;
// An uncompressed header block we send stays under half the frame limit, so its compressed form
// (deflate adds a few bytes per 16 KiB at worst) always fits one frame: the size is checked before
// the block enters the deflate stream, never after.
constexpr size_t kMaxEncodedBlock = kMaxFrameLength / 2;
// Buffered bytes already parsed are dropped once they are this many and half the buffer.
constexpr size_t kCompactThreshold = size_t{64} * 1024;

uint32_t Be32(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(b[at + 3])};
}
uint32_t Be24(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 8) |
         uint32_t{static_cast<uint8_t>(b[at + 2])};
}
void PutBe32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void PutBe24(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}
void PutControlHeader(std::string& out, FrameType type, uint8_t flags, uint32_t length) {
  out.push_back(static_cast<char>(0x80));
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(static_cast<uint16_t>(type) >> 8));
  out.push_back(static_cast<char>(static_cast<uint16_t>(type)));
  out.push_back(static_cast<char>(flags));
  PutBe24(out, length);
}

bool HasUpper(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

Status CheckName(std::string_view name) {
  if (name.empty()) {
    return InvalidArgument("spdy: empty header name");
  }
  if (HasUpper(name)) {
    return InvalidArgument(fmt::format("spdy: header name \"{}\" is not lowercase", name));
  }
  if (name.find('\0') != std::string_view::npos) {
    return InvalidArgument(fmt::format("spdy: header name \"{}\" holds a NUL", name));
  }
  return Ok();
}

Status CheckStreamId(uint32_t id) {
  if (id > kStreamIdMask) {
    return InvalidArgument(fmt::format("spdy: stream id {} is over 31 bits", id));
  }
  return Ok();
}

Error BadLength(std::string_view frame, uint32_t length) {
  return InvalidArgument(fmt::format("spdy: {} frame with length {}", frame, length));
}

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

HeaderBlock::HeaderBlock(
    std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  for (const auto& [name, value] : pairs) {
    Add(name, value);
  }
}

void HeaderBlock::Add(std::string_view name, std::string_view value) {
  for (auto& e : entries_) {
    if (e.name == name) {
      e.values.emplace_back(value);
      return;
    }
  }
  entries_.push_back(Entry{.name = std::string(name), .values = {std::string(value)}});
}

std::optional<std::string_view> HeaderBlock::Get(std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.name == name && !e.values.empty()) {
      return e.values.front();
    }
  }
  return std::nullopt;
}

Result<std::string> EncodeHeaderBlock(const HeaderBlock& headers) {
  const auto& entries = headers.Entries();
  std::string out;
  PutBe32(out, static_cast<uint32_t>(entries.size()));
  // Add() keeps names unique, so only their spelling needs checking.
  for (const auto& e : entries) {
    BERTH_TRY(CheckName(e.name));
    std::string value;
    for (size_t v = 0; v < e.values.size(); ++v) {
      if (v != 0) {
        value.push_back('\0');
      }
      value += e.values[v];
    }
    if (e.name.size() > UINT32_MAX || value.size() > UINT32_MAX) {
      return InvalidArgument(fmt::format("spdy: header \"{}\" too long", e.name));
    }
    PutBe32(out, static_cast<uint32_t>(e.name.size()));
    out += e.name;
    PutBe32(out, static_cast<uint32_t>(value.size()));
    out += value;
  }
  return out;
}

Result<HeaderBlock> DecodeHeaderBlock(std::string_view block) {
  size_t at = 0;
  auto read_string = [&](std::string_view what) -> Result<std::string_view> {
    if (block.size() - at < 4) {
      return InvalidArgument(fmt::format("spdy: header block truncated in a {} length", what));
    }
    const uint32_t len = Be32(block, at);
    at += 4;
    if (block.size() - at < len) {
      return InvalidArgument(fmt::format("spdy: header block truncated in a {}", what));
    }
    std::string_view s = block.substr(at, len);
    at += len;
    return s;
  };
  if (block.size() < 4) {
    return InvalidArgument("spdy: header block truncated in its pair count");
  }
  const uint32_t count = Be32(block, 0);
  at = 4;
  // Every pair takes at least 8 bytes: a count beyond that is a lie, not a reason to allocate.
  if (count > (block.size() - at) / 8) {
    return InvalidArgument(
        fmt::format("spdy: header block claims {} pairs in {} bytes", count, block.size()));
  }
  // A 256 KiB block holds ~29k pairs: duplicates are found through a set, not by rescanning.
  std::vector<HeaderBlock::Entry> entries;
  std::unordered_set<std::string_view> seen;
  entries.reserve(count);
  seen.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    BERTH_ASSIGN_OR_RETURN(std::string_view name, read_string("name"));
    BERTH_TRY(CheckName(name));
    if (!seen.insert(name).second) {
      return InvalidArgument(fmt::format("spdy: duplicate header name \"{}\"", name));
    }
    BERTH_ASSIGN_OR_RETURN(std::string_view value, read_string("value"));
    auto& entry = entries.emplace_back(HeaderBlock::Entry{.name = std::string(name)});
    // Several values share one name, NUL-separated.
    while (true) {
      const size_t nul = value.find('\0');
      entry.values.emplace_back(value.substr(0, nul));
      if (nul == std::string_view::npos) {
        break;
      }
      value.remove_prefix(nul + 1);
    }
  }
  if (at != block.size()) {
    return InvalidArgument(
        fmt::format("spdy: {} bytes after the header block's pairs", block.size() - at));
  }
  HeaderBlock headers;
  headers.entries_ = std::move(entries);
  return headers;
}

void AppendDataFrame(std::string& out, uint32_t stream_id, uint8_t flags,
                     std::string_view payload) {
  BERTH_CHECK(stream_id <= kStreamIdMask && payload.size() <= kMaxFrameLength,
              "spdy: DATA frame out of range");
  PutBe32(out, stream_id);
  out.push_back(static_cast<char>(flags));
  PutBe24(out, static_cast<uint32_t>(payload.size()));
  out += payload;
}

FrameParser::FrameParser(ParserOptions options)
    : options_(options), inflater_(options.max_header_block_size) {
  options_.max_frame_size = std::min(options_.max_frame_size, kMaxFrameLength);
}

void FrameParser::Append(std::string_view bytes) {
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  } else if (offset_ >= kCompactThreshold && offset_ >= buffer_.size() / 2) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  buffer_.append(bytes);
}

Result<std::optional<Frame>> FrameParser::Next() {
  if (error_) {
    return *error_;
  }
  auto fail = [this](Error e) -> Error {
    error_ = e;
    return e;
  };
  const std::string_view in = std::string_view(buffer_).substr(offset_);
  if (in.size() < kFrameHeaderSize) {
    return std::optional<Frame>();
  }
  const bool control = (static_cast<uint8_t>(in[0]) & 0x80) != 0;
  const auto flags = static_cast<uint8_t>(in[4]);
  const uint32_t length = Be24(in, 5);
  uint16_t type = 0;
  if (control) {
    const auto version = static_cast<uint16_t>((static_cast<uint8_t>(in[0]) & 0x7F) << 8 |
                                               static_cast<uint8_t>(in[1]));
    if (version != kVersion) {
      return fail(InvalidArgument(fmt::format("spdy: unsupported version {}", version)));
    }
    type = static_cast<uint16_t>(static_cast<uint8_t>(in[2]) << 8 | static_cast<uint8_t>(in[3]));
    switch (static_cast<FrameType>(type)) {
      case FrameType::kSynStream:
      case FrameType::kSynReply:
      case FrameType::kRstStream:
      case FrameType::kSettings:
      case FrameType::kPing:
      case FrameType::kGoAway:
      case FrameType::kHeaders:
      case FrameType::kWindowUpdate:
        break;
      default:
        // spdystream fails the connection on a control type it does not know.
        return fail(InvalidArgument(fmt::format("spdy: unknown control frame type {}", type)));
    }
  }
  // Refused from the header alone, so an oversized frame is never buffered.
  if (length > options_.max_frame_size) {
    return fail(
        Error(Errc::kResourceExhausted, fmt::format("spdy: frame length {} is over the limit of {}",
                                                    length, options_.max_frame_size)));
  }
  if (in.size() - kFrameHeaderSize < length) {
    return std::optional<Frame>();
  }
  const std::string_view payload = in.substr(kFrameHeaderSize, length);
  offset_ += kFrameHeaderSize + length;
  if (!control) {
    const uint32_t id = Be32(in, 0) & kStreamIdMask;
    if (id == 0) {
      return fail(InvalidArgument("spdy: DATA frame on stream 0"));
    }
    return std::optional<Frame>(
        Data{.stream_id = id, .flags = flags, .payload = std::string(payload)});
  }
  auto frame = ParseControl(type, flags, payload);
  if (!frame) {
    return fail(std::move(frame).error());
  }
  return std::optional<Frame>(std::move(frame).value());
}

Result<Frame> FrameParser::ParseControl(uint16_t type, uint8_t flags, std::string_view p) {
  const auto length = static_cast<uint32_t>(p.size());
  switch (static_cast<FrameType>(type)) {
    case FrameType::kSynStream: {
      if (length < 10) {
        return BadLength("SYN_STREAM", length);
      }
      SynStream f{.stream_id = Be32(p, 0) & kStreamIdMask,
                  .associated_id = Be32(p, 4) & kStreamIdMask,
                  .priority = static_cast<uint8_t>(static_cast<uint8_t>(p[8]) >> 5),
                  .slot = static_cast<uint8_t>(p[9]),
                  .flags = flags};
      // The block is inflated before any check on the frame, so the stream stays in step.
      BERTH_ASSIGN_OR_RETURN(f.headers, ReadHeaderBlock(p.substr(10)));
      if (f.stream_id == 0) {
        return InvalidArgument("spdy: SYN_STREAM with stream id 0");
      }
      return Frame(std::move(f));
    }
    case FrameType::kSynReply:
    case FrameType::kHeaders: {
      const bool reply = static_cast<FrameType>(type) == FrameType::kSynReply;
      if (length < 4) {
        return BadLength(reply ? "SYN_REPLY" : "HEADERS", length);
      }
      const uint32_t id = Be32(p, 0) & kStreamIdMask;
      BERTH_ASSIGN_OR_RETURN(HeaderBlock headers, ReadHeaderBlock(p.substr(4)));
      if (id == 0) {
        return InvalidArgument(
            fmt::format("spdy: {} with stream id 0", reply ? "SYN_REPLY" : "HEADERS"));
      }
      if (reply) {
        return Frame(SynReply{.stream_id = id, .flags = flags, .headers = std::move(headers)});
      }
      return Frame(Headers{.stream_id = id, .flags = flags, .headers = std::move(headers)});
    }
    case FrameType::kRstStream: {
      if (length != 8) {
        return BadLength("RST_STREAM", length);
      }
      RstStream f{.stream_id = Be32(p, 0) & kStreamIdMask, .status = Be32(p, 4)};
      if (f.stream_id == 0) {
        return InvalidArgument("spdy: RST_STREAM with stream id 0");
      }
      if (f.status == 0) {
        return InvalidArgument("spdy: RST_STREAM with status 0");
      }
      return Frame(f);
    }
    case FrameType::kSettings: {
      if (length < 4) {
        return BadLength("SETTINGS", length);
      }
      const uint32_t count = Be32(p, 0);
      if ((length - 4) / 8 != count || (length - 4) % 8 != 0) {
        return InvalidArgument(
            fmt::format("spdy: SETTINGS with {} entries in length {}", count, length));
      }
      Settings f{.flags = flags};
      f.entries.reserve(count);
      for (uint32_t i = 0; i < count; ++i) {
        const size_t at = 4 + size_t{i} * 8;
        f.entries.push_back({.flags = static_cast<uint8_t>(p[at]),
                             .id = Be24(p, at + 1),
                             .value = Be32(p, at + 4)});
      }
      return Frame(std::move(f));
    }
    case FrameType::kPing:
      if (length != 4) {
        return BadLength("PING", length);
      }
      return Frame(Ping{.id = Be32(p, 0)});
    case FrameType::kGoAway:
      if (length != 8) {
        return BadLength("GOAWAY", length);
      }
      return Frame(GoAway{.last_good_stream_id = Be32(p, 0) & kStreamIdMask, .status = Be32(p, 4)});
    case FrameType::kWindowUpdate:
      if (length != 8) {
        return BadLength("WINDOW_UPDATE", length);
      }
      return Frame(WindowUpdate{.stream_id = Be32(p, 0) & kStreamIdMask,
                                .delta = Be32(p, 4) & kStreamIdMask});
  }
  // Next() lets only the types above through.
  BERTH_CHECK(false, fmt::format("spdy: unhandled control type {}", type));
  return InvalidArgument("unreachable");
}

Result<HeaderBlock> FrameParser::ReadHeaderBlock(std::string_view compressed) {
  BERTH_ASSIGN_OR_RETURN(std::string block, inflater_.Decompress(compressed));
  return DecodeHeaderBlock(block);
}

FrameWriter::FrameWriter(int compression_level) : deflater_(compression_level) {}

Status FrameWriter::WriteHeaderFrame(FrameType type, uint8_t flags, std::string_view prefix,
                                     const HeaderBlock& headers, std::string& out) {
  BERTH_ASSIGN_OR_RETURN(std::string block, EncodeHeaderBlock(headers));
  if (block.size() > kMaxEncodedBlock) {
    return InvalidArgument(
        fmt::format("spdy: header block of {} bytes is too large", block.size()));
  }
  std::string compressed;
  BERTH_TRY(deflater_.Compress(block, compressed));
  const size_t length = prefix.size() + compressed.size();
  BERTH_CHECK(length <= kMaxFrameLength, "spdy: compressed header block outgrew a frame");
  PutControlHeader(out, type, flags, static_cast<uint32_t>(length));
  out += prefix;
  out += compressed;
  return Ok();
}

Status FrameWriter::Write(const Frame& frame, std::string& out) {
  return std::visit(
      Overloaded{
          [&](const SynStream& f) -> Status {
            BERTH_TRY(CheckStreamId(f.stream_id));
            BERTH_TRY(CheckStreamId(f.associated_id));
            std::string prefix;
            PutBe32(prefix, f.stream_id);
            PutBe32(prefix, f.associated_id);
            prefix.push_back(static_cast<char>(f.priority << 5));
            prefix.push_back(static_cast<char>(f.slot));
            return WriteHeaderFrame(FrameType::kSynStream, f.flags, prefix, f.headers, out);
          },
          [&](const SynReply& f) -> Status {
            BERTH_TRY(CheckStreamId(f.stream_id));
            std::string prefix;
            PutBe32(prefix, f.stream_id);
            return WriteHeaderFrame(FrameType::kSynReply, f.flags, prefix, f.headers, out);
          },
          [&](const Headers& f) -> Status {
            BERTH_TRY(CheckStreamId(f.stream_id));
            std::string prefix;
            PutBe32(prefix, f.stream_id);
            return WriteHeaderFrame(FrameType::kHeaders, f.flags, prefix, f.headers, out);
          },
          [&](const RstStream& f) -> Status {
            BERTH_TRY(CheckStreamId(f.stream_id));
            PutControlHeader(out, FrameType::kRstStream, 0, 8);
            PutBe32(out, f.stream_id);
            PutBe32(out, f.status);
            return Ok();
          },
          [&](const Settings& f) -> Status {
            if (f.entries.size() > (kMaxFrameLength - 4) / 8) {
              return InvalidArgument("spdy: too many SETTINGS entries");
            }
            PutControlHeader(out, FrameType::kSettings, f.flags,
                             static_cast<uint32_t>(4 + 8 * f.entries.size()));
            PutBe32(out, static_cast<uint32_t>(f.entries.size()));
            for (const auto& e : f.entries) {
              out.push_back(static_cast<char>(e.flags));
              PutBe24(out, e.id);
              PutBe32(out, e.value);
            }
            return Ok();
          },
          [&](const Ping& f) -> Status {
            PutControlHeader(out, FrameType::kPing, 0, 4);
            PutBe32(out, f.id);
            return Ok();
          },
          [&](const GoAway& f) -> Status {
            BERTH_TRY(CheckStreamId(f.last_good_stream_id));
            PutControlHeader(out, FrameType::kGoAway, 0, 8);
            PutBe32(out, f.last_good_stream_id);
            PutBe32(out, f.status);
            return Ok();
          },
          [&](const WindowUpdate& f) -> Status {
            BERTH_TRY(CheckStreamId(f.stream_id));
            BERTH_TRY(CheckStreamId(f.delta));
            PutControlHeader(out, FrameType::kWindowUpdate, 0, 8);
            PutBe32(out, f.stream_id);
            PutBe32(out, f.delta);
            return Ok();
          },
          [&](const Data& f) -> Status {
            BERTH_TRY(CheckStreamId(f.stream_id));
            if (f.payload.size() > kMaxFrameLength) {
              return InvalidArgument(fmt::format("spdy: DATA payload of {} bytes is over one frame",
                                                 f.payload.size()));
            }
            AppendDataFrame(out, f.stream_id, f.flags, f.payload);
            return Ok();
          },
      },
      frame);
}

}  // namespace berth::cri::streaming::spdy

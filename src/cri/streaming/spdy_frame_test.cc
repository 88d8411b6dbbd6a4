#include "cri/streaming/spdy_frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cri/streaming/spdy_test_util.h"

namespace berth::cri::streaming::spdy {
namespace {

using testing::Hex;
using testing::ParseAll;
using testing::ParseError;
using testing::ToHex;

const std::string kErrorBlock = Hex("00000001 0000000a") + "streamtype" + Hex("00000005") + "error";

// A control frame around `payload` as given (no compression).
std::string Control(uint16_t type, uint8_t flags, std::string_view payload) {
  std::string out = Hex("80 03");
  out.push_back(static_cast<char>(type >> 8));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  const auto len = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>(len >> 16));
  out.push_back(static_cast<char>(len >> 8));
  out.push_back(static_cast<char>(len));
  out += payload;
  return out;
}

// SYN_STREAM `id` around an uncompressed `block`, compressed through `d`.
std::string RawSynStream(Deflater& d, uint32_t id, std::string_view block) {
  std::string compressed;
  EXPECT_TRUE(d.Compress(block, compressed));
  const std::string id_bytes{static_cast<char>(id >> 24), static_cast<char>(id >> 16),
                             static_cast<char>(id >> 8), static_cast<char>(id)};
  return Control(1, 0, id_bytes + Hex("00000000 00 00") + compressed);
}

TEST(SpdyHeaderBlock, EncodesTheWireLayout) {
  auto block = EncodeHeaderBlock({{"streamtype", "error"}});
  ASSERT_TRUE(block) << block.error().ToString();
  EXPECT_EQ(*block, kErrorBlock);
  block = EncodeHeaderBlock({});
  ASSERT_TRUE(block);
  EXPECT_EQ(ToHex(*block), "00 00 00 00");
}

TEST(SpdyHeaderBlock, MultipleValuesAreNulJoined) {
  HeaderBlock h{{"a", "1"}, {"b", "2"}};
  h.Add("a", "3");
  auto block = EncodeHeaderBlock(h);
  ASSERT_TRUE(block);
  EXPECT_EQ(*block, Hex("00000002 00000001") + "a" + Hex("00000003") + std::string("1\0003", 3) +
                        Hex("00000001") + "b" + Hex("00000001") + "2");
  auto back = DecodeHeaderBlock(*block);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(*back, h);
  EXPECT_EQ(back->Get("a"), "1");
  EXPECT_EQ(back->Get("b"), "2");
  EXPECT_EQ(back->Get("c"), std::nullopt);
  ASSERT_EQ(back->Entries().size(), 2u);
  EXPECT_EQ(back->Entries()[0].values, (std::vector<std::string>{"1", "3"}));
}

TEST(SpdyHeaderBlock, EncodeRefusesBadNames) {
  for (const char* name : {"Streamtype", "STREAMTYPE", ""}) {
    auto block = EncodeHeaderBlock({{name, "x"}});
    ASSERT_FALSE(block) << name;
    EXPECT_TRUE(block.error().Is(Errc::kInvalidArgument));
  }
  EXPECT_FALSE(EncodeHeaderBlock({{std::string_view("a\0b", 3), "x"}}));
}

TEST(SpdyHeaderBlock, DecodeRefusesEveryTruncation) {
  const std::string block = *EncodeHeaderBlock({{"streamtype", "error"}, {"port", "8080"}});
  for (size_t n = 0; n < block.size(); ++n) {
    auto got = DecodeHeaderBlock(block.substr(0, n));
    ASSERT_FALSE(got) << n;
    EXPECT_TRUE(got.error().Is(Errc::kInvalidArgument));
  }
  EXPECT_TRUE(DecodeHeaderBlock(block));
  EXPECT_FALSE(DecodeHeaderBlock(block + "x"));  // trailing bytes
}

TEST(SpdyHeaderBlock, DecodeRefusesBadNamesAndLyingCounts) {
  auto pair = [](std::string_view name, std::string_view value) {
    std::string out = Hex("00000000");
    out[3] = static_cast<char>(name.size());
    out += name;
    out += Hex("00000000");
    out[out.size() - 1] = static_cast<char>(value.size());
    out += value;
    return out;
  };
  // Duplicate names (spdystream's DuplicateHeader).
  EXPECT_FALSE(DecodeHeaderBlock(Hex("00000002") + pair("a", "1") + pair("a", "2")));
  // Upper-case name (UnlowercasedHeaderName).
  EXPECT_FALSE(DecodeHeaderBlock(Hex("00000001") + pair("Port", "1")));
  EXPECT_FALSE(DecodeHeaderBlock(Hex("00000001") + pair("", "1")));
  // A count the bytes cannot hold.
  EXPECT_FALSE(DecodeHeaderBlock(Hex("ffffffff") + pair("a", "1")));
  // A length beyond the block.
  EXPECT_FALSE(DecodeHeaderBlock(Hex("00000001 ffffffff") + "a"));
  auto ok = DecodeHeaderBlock(Hex("00000002") + pair("a", "1") + pair("b", ""));
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->Get("b"), "");
}

TEST(SpdyHeaderBlock, ManyPairs) {
  // As many pairs as the default 256 KiB limit holds, the duplicate last.
  std::string block = Hex("00004e20");  // 20000
  for (int i = 0; i < 20000; ++i) {
    const std::string name = "h" + std::to_string(i);
    block += Hex("000000") + static_cast<char>(name.size()) + name + Hex("00000000");
  }
  auto back = DecodeHeaderBlock(block);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->Entries().size(), 20000u);
  std::string dup = block + Hex("00000002") + "h7" + Hex("00000000");
  dup[3] = static_cast<char>(static_cast<uint8_t>(dup[3]) + 1);  // 20001 pairs (0x4e21)
  auto got = DecodeHeaderBlock(dup);
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().What().find("duplicate"), std::string::npos) << got.error().ToString();
}

TEST(SpdyFrameWriter, SynStreamVector) {
  FrameWriter w;  // level 9, as spdystream
  std::string out;
  ASSERT_TRUE(w.Write(SynStream{.stream_id = 1, .headers = {{"streamtype", "error"}}}, out));
  // spdystream: 80 03 00 01 00 00 00 29 | 00 00 00 01 | 00 00 00 00 | 00 00 | 31 bytes of zlib.
  // C zlib's deflate encodes the block one byte shorter than Go's compress/flate (30 bytes, so
  // length 0x28); the zlib header with its DICTID and the sync flush are the same.
  EXPECT_TRUE(out.starts_with(Hex("80 03 00 01 00")));
  EXPECT_EQ(out.substr(8, 16), Hex("00 00 00 01 00 00 00 00 00 00 78 f9 e3 c6 a7 c2"))
      << ToHex(out);
  EXPECT_TRUE(out.ends_with(Hex("00 00 ff ff")));
  const size_t length = (static_cast<uint8_t>(out[5]) << 16) | (static_cast<uint8_t>(out[6]) << 8) |
                        static_cast<uint8_t>(out[7]);
  EXPECT_EQ(length, out.size() - 8);
  EXPECT_EQ(length, 10 + 30u) << ToHex(out);

  FrameParser p;
  auto frames = ParseAll(p, out);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<SynStream>(frames[0]),
            (SynStream{.stream_id = 1, .headers = {{"streamtype", "error"}}}));
}

TEST(SpdyFrameWriter, DataVector) {
  FrameWriter w;
  std::string out;
  ASSERT_TRUE(w.Write(Data{.stream_id = 3, .flags = kFlagFin, .payload = "hi"}, out));
  EXPECT_EQ(ToHex(out), "00 00 00 03 01 00 00 02 68 69");
  FrameParser p;
  auto frames = ParseAll(p, out);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<Data>(frames[0]), (Data{.stream_id = 3, .flags = kFlagFin, .payload = "hi"}));
}

TEST(SpdyFrameWriter, FixedFrames) {
  FrameWriter w;
  std::string out;
  ASSERT_TRUE(w.Write(RstStream{.stream_id = 5, .status = 5}, out));
  EXPECT_EQ(ToHex(out), "80 03 00 03 00 00 00 08 00 00 00 05 00 00 00 05");
  out.clear();
  ASSERT_TRUE(w.Write(Ping{.id = 7}, out));
  EXPECT_EQ(ToHex(out), "80 03 00 06 00 00 00 04 00 00 00 07");
  out.clear();
  ASSERT_TRUE(w.Write(GoAway{.last_good_stream_id = 9, .status = 0}, out));
  EXPECT_EQ(ToHex(out), "80 03 00 07 00 00 00 08 00 00 00 09 00 00 00 00");
  out.clear();
  ASSERT_TRUE(w.Write(WindowUpdate{.stream_id = 1, .delta = 0x10000}, out));
  EXPECT_EQ(ToHex(out), "80 03 00 09 00 00 00 08 00 00 00 01 00 01 00 00");
  out.clear();
  ASSERT_TRUE(w.Write(Settings{.entries = {{.flags = 1, .id = 4, .value = 100}}}, out));
  EXPECT_EQ(ToHex(out), "80 03 00 04 00 00 00 0c 00 00 00 01 01 00 00 04 00 00 00 64");
}

// Frames of every type, header frames sharing one compression stream.
std::vector<Frame> SampleFrames(int rounds) {
  std::vector<Frame> frames;
  for (int i = 0; i < rounds; ++i) {
    const auto id = static_cast<uint32_t>(2 * i + 1);
    frames.emplace_back(SynStream{.stream_id = id,
                                  .associated_id = 0,
                                  .priority = static_cast<uint8_t>(i % 8),
                                  .flags = static_cast<uint8_t>(i % 2 == 0 ? 0 : kFlagFin),
                                  .headers = {{"streamtype", i % 2 == 0 ? "data" : "error"},
                                              {"port", std::to_string(8000 + i)},
                                              {"requestid", std::to_string(i)}}});
    frames.emplace_back(SynReply{.stream_id = id, .headers = {}});
    frames.emplace_back(Headers{.stream_id = id, .flags = kFlagFin, .headers = {{"x-n", "v"}}});
    frames.emplace_back(Data{.stream_id = id, .payload = std::string(static_cast<size_t>(i), 'd')});
    frames.emplace_back(Data{.stream_id = id, .flags = kFlagFin, .payload = ""});
    frames.emplace_back(RstStream{.stream_id = id, .status = 5});
    frames.emplace_back(Ping{.id = id});
    frames.emplace_back(WindowUpdate{.stream_id = id, .delta = 42});
  }
  frames.emplace_back(
      Settings{.flags = 1, .entries = {{.id = 4, .value = 1}, {.id = 7, .value = 2}}});
  frames.emplace_back(GoAway{.last_good_stream_id = 99, .status = 2});
  return frames;
}

TEST(SpdyFrameParser, RoundTripsEveryTypeOverManyBlocks) {
  const auto frames = SampleFrames(100);
  FrameWriter w;
  std::string bytes;
  for (const auto& f : frames) {
    ASSERT_TRUE(w.Write(f, bytes));
  }
  FrameParser p;
  EXPECT_EQ(ParseAll(p, bytes), frames);
}

TEST(SpdyFrameParser, ParsesByteByByte) {
  const auto frames = SampleFrames(10);
  FrameWriter w;
  std::string bytes;
  for (const auto& f : frames) {
    ASSERT_TRUE(w.Write(f, bytes));
  }
  FrameParser p;
  std::vector<Frame> got;
  for (char c : bytes) {
    p.Append(std::string_view(&c, 1));
    auto next = p.Next();
    ASSERT_TRUE(next) << next.error().ToString();
    if (next->has_value()) {
      got.push_back(std::move(**next));
      auto none = p.Next();  // one byte completes at most one frame
      ASSERT_TRUE(none && !none->has_value());
    }
  }
  EXPECT_EQ(got, frames);
  EXPECT_EQ(p.Buffered(), 0u);
}

TEST(SpdyFrameParser, ParsesUnevenChunks) {
  const auto frames = SampleFrames(30);
  FrameWriter w;
  std::string bytes;
  for (const auto& f : frames) {
    ASSERT_TRUE(w.Write(f, bytes));
  }
  FrameParser p;
  std::vector<Frame> got;
  size_t at = 0;
  for (size_t step = 1; at < bytes.size(); step = step * 7 % 113 + 1) {
    p.Append(std::string_view(bytes).substr(at, step));
    at += std::min(step, bytes.size() - at);
    while (true) {
      auto next = p.Next();
      ASSERT_TRUE(next) << next.error().ToString();
      if (!next->has_value()) {
        break;
      }
      got.push_back(std::move(**next));
    }
  }
  EXPECT_EQ(got, frames);
}

TEST(SpdyFrameParser, WriterRefusalLeavesCompressionInStep) {
  FrameWriter w;
  std::string bytes;
  ASSERT_TRUE(w.Write(SynReply{.stream_id = 1, .headers = {{"a", "1"}}}, bytes));
  std::string refused;
  auto s = w.Write(SynReply{.stream_id = 3, .headers = {{"Upper", "1"}}}, refused);
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(refused.empty());
  EXPECT_FALSE(w.Write(Data{.stream_id = 0x80000000u}, refused));
  ASSERT_TRUE(w.Write(SynReply{.stream_id = 5, .headers = {{"b", "2"}}}, bytes));
  FrameParser p;
  auto frames = ParseAll(p, bytes);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(std::get<SynReply>(frames[1]).headers, (HeaderBlock{{"b", "2"}}));
}

void ExpectParseError(std::string_view bytes, Errc code, ParserOptions options = {}) {
  FrameParser p(options);
  auto s = ParseError(p, bytes);
  ASSERT_FALSE(s) << ToHex(bytes);
  EXPECT_TRUE(s.error().Is(code)) << s.error().ToString();
  // Final: the parser keeps failing.
  auto again = p.Next();
  EXPECT_FALSE(again);
}

TEST(SpdyFrameParser, RefusesBadVersion) {
  ExpectParseError(Hex("80 02 00 06 00 00 00 04 00 00 00 01"), Errc::kInvalidArgument);
  ExpectParseError(Hex("80 04 00 06 00 00 00 04 00 00 00 01"), Errc::kInvalidArgument);
}

TEST(SpdyFrameParser, RefusesUnknownControlTypes) {
  ExpectParseError(Hex("80 03 00 0a 00 00 00 00"), Errc::kInvalidArgument);
  ExpectParseError(Hex("80 03 00 05 00 00 00 00"), Errc::kInvalidArgument);  // SPDY/2's NOOP
  ExpectParseError(Hex("80 03 00 00 00 00 00 00"), Errc::kInvalidArgument);
}

TEST(SpdyFrameParser, RefusesOversizeFramesFromTheHeaderAlone) {
  // Only 8 bytes: the limit applies before the payload is waited for.
  ExpectParseError(Hex("00 00 00 01 00 10 00 01"), Errc::kResourceExhausted);
  ExpectParseError(Hex("80 03 00 01 00 ff ff ff"), Errc::kResourceExhausted);
  ExpectParseError(Hex("00 00 00 01 00 00 01 01"), Errc::kResourceExhausted,
                   {.max_frame_size = 256});
  FrameParser p({.max_frame_size = 256});
  EXPECT_TRUE(ParseError(p, Hex("00 00 00 01 00 00 01 00") + std::string(256, 'x')));
}

TEST(SpdyFrameParser, RefusesLengthsWrongForTheirType) {
  ExpectParseError(Control(1, 0, Hex("00 00 00 01 00 00 00 00 00")), Errc::kInvalidArgument);
  ExpectParseError(Control(2, 0, Hex("00 00 00")), Errc::kInvalidArgument);
  ExpectParseError(Control(3, 0, Hex("00 00 00 01")), Errc::kInvalidArgument);
  ExpectParseError(Control(3, 0, Hex("00 00 00 01 00 00 00 05 00")), Errc::kInvalidArgument);
  ExpectParseError(Control(4, 0, Hex("00 00 00 02 00 00 00 04 00 00 00 01")),
                   Errc::kInvalidArgument);
  ExpectParseError(Control(4, 0, Hex("00 00")), Errc::kInvalidArgument);
  ExpectParseError(Control(6, 0, Hex("00 00 00 01 00 00 00 00")), Errc::kInvalidArgument);
  ExpectParseError(Control(7, 0, Hex("00 00 00 01")), Errc::kInvalidArgument);
  ExpectParseError(Control(8, 0, Hex("00")), Errc::kInvalidArgument);
  ExpectParseError(Control(9, 0, Hex("00 00 00 01 00 00")), Errc::kInvalidArgument);
}

TEST(SpdyFrameParser, RefusesStreamZeroAndStatusZero) {
  ExpectParseError(Hex("00 00 00 00 00 00 00 01 41"), Errc::kInvalidArgument);
  ExpectParseError(Control(3, 0, Hex("00 00 00 00 00 00 00 05")), Errc::kInvalidArgument);
  ExpectParseError(Control(3, 0, Hex("00 00 00 01 00 00 00 00")), Errc::kInvalidArgument);
  Deflater d;
  ExpectParseError(RawSynStream(d, 0, kErrorBlock), Errc::kInvalidArgument);
}

TEST(SpdyFrameParser, RefusesBadHeaderBlocks) {
  {
    Deflater d;  // duplicate names
    const std::string dup = Hex("00000002 00000001") + "a" + Hex("00000001") + "1" +
                            Hex("00000001") + "a" + Hex("00000001") + "2";
    ExpectParseError(RawSynStream(d, 1, dup), Errc::kInvalidArgument);
  }
  {
    Deflater d;  // upper-case name
    const std::string upper = Hex("00000001 00000001") + "A" + Hex("00000001") + "1";
    ExpectParseError(RawSynStream(d, 1, upper), Errc::kInvalidArgument);
  }
  {
    Deflater d;  // the block's pairs end early
    ExpectParseError(RawSynStream(d, 1, kErrorBlock.substr(0, kErrorBlock.size() - 1)),
                     Errc::kInvalidArgument);
  }
  {
    Deflater d;  // the compressed bytes end early
    std::string frame = RawSynStream(d, 1, kErrorBlock);
    frame.resize(frame.size() - 8);
    frame[7] = static_cast<char>(frame.size() - 8);
    ExpectParseError(frame, Errc::kInvalidArgument);
  }
  // Not zlib at all.
  ExpectParseError(Control(2, 0, Hex("00 00 00 01") + "not zlib"), Errc::kInvalidArgument);
  // An empty block (spdystream always sends at least the pair count).
  ExpectParseError(Control(2, 0, Hex("00 00 00 01")), Errc::kInvalidArgument);
}

TEST(SpdyFrameParser, RefusesAHeaderBomb) {
  // One pair whose value inflates to 1 MiB: a few KiB on the wire, over the 256 KiB limit.
  Deflater d;
  const std::string block =
      Hex("00000001 00000001") + "a" + Hex("00100000") + std::string(1 << 20, 'z');
  const std::string frame = RawSynStream(d, 1, block);
  EXPECT_LT(frame.size(), 8u * 1024);
  ExpectParseError(frame, Errc::kResourceExhausted);
  // Within a larger limit it is an ordinary block.
  Deflater d2;
  FrameParser p({.max_header_block_size = 2 << 20});
  auto frames = ParseAll(p, RawSynStream(d2, 1, block));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<SynStream>(frames[0]).headers.Get("a")->size(), size_t{1} << 20);
}

TEST(SpdyFrameParser, IgnoresReservedBits) {
  // The top bit of stream ids in control frames is reserved.
  FrameParser p;
  auto frames = ParseAll(p, Control(9, 0, Hex("80 00 00 01 80 00 00 02")));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<WindowUpdate>(frames[0]), (WindowUpdate{.stream_id = 1, .delta = 2}));
}

}  // namespace
}  // namespace berth::cri::streaming::spdy

#include "cri/streaming/channel.h"

#include <gtest/gtest.h>

#include <string>

namespace berth::cri::streaming {
namespace {

TEST(ChannelProtocol, Subprotocols) {
  for (std::string_view p : {"", "channel.k8s.io", "v4.channel.k8s.io"}) {
    auto cp = ChannelProtocolFor(p);
    ASSERT_TRUE(cp) << p;
    EXPECT_FALSE(cp->base64) << p;
    EXPECT_FALSE(cp->stream_close) << p;
  }
  for (std::string_view p : {"base64.channel.k8s.io", "v4.base64.channel.k8s.io"}) {
    auto cp = ChannelProtocolFor(p);
    ASSERT_TRUE(cp) << p;
    EXPECT_TRUE(cp->base64) << p;
    EXPECT_FALSE(cp->stream_close) << p;
  }
  auto v5 = ChannelProtocolFor("v5.channel.k8s.io");
  ASSERT_TRUE(v5);
  EXPECT_FALSE(v5->base64);
  EXPECT_TRUE(v5->stream_close);
  EXPECT_FALSE(ChannelProtocolFor("portforward.k8s.io"));
  EXPECT_FALSE(ChannelProtocolFor("v5.base64.channel.k8s.io"));
}

TEST(ChannelMessage, BinaryEncoding) {
  ChannelProtocol binary{};
  EXPECT_EQ(EncodeChannelMessage(binary, kStdoutChannel, "out"), std::string("\x01out"));
  EXPECT_EQ(EncodeChannelMessage(binary, kStdinChannel, ""), std::string(1, '\0'));
  auto msg = DecodeChannelMessage(binary, std::string("\x04{\"Width\":80,\"Height\":24}"));
  ASSERT_TRUE(msg && *msg);
  EXPECT_EQ((*msg)->kind, ChannelMessage::Kind::kData);
  EXPECT_EQ((*msg)->channel, kResizeChannel);
  EXPECT_EQ((*msg)->data, "{\"Width\":80,\"Height\":24}");
  // Only the channel byte: an empty data message.
  auto empty_data = DecodeChannelMessage(binary, std::string(1, '\0'));
  ASSERT_TRUE(empty_data && *empty_data);
  EXPECT_EQ((*empty_data)->data, "");
  // An empty message is ignored.
  auto empty = DecodeChannelMessage(binary, "");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(*empty);
  // Without v5, byte 255 is just a channel number.
  auto high = DecodeChannelMessage(binary, std::string("\xff\x00", 2));
  ASSERT_TRUE(high && *high);
  EXPECT_EQ((*high)->kind, ChannelMessage::Kind::kData);
  EXPECT_EQ((*high)->channel, 255);
}

TEST(ChannelMessage, Base64Encoding) {
  ChannelProtocol b64{.base64 = true, .stream_close = false};
  EXPECT_EQ(EncodeChannelMessage(b64, kStdoutChannel, "out"), "1b3V0");
  EXPECT_EQ(EncodeChannelMessage(b64, kErrorChannel, "ab"), "3YWI=");
  EXPECT_EQ(EncodeChannelMessage(b64, kStdinChannel, ""), "0");
  auto msg = DecodeChannelMessage(b64, "0aGVsbG8K");
  ASSERT_TRUE(msg && *msg);
  EXPECT_EQ((*msg)->channel, kStdinChannel);
  EXPECT_EQ((*msg)->data, "hello\n");
  for (uint8_t ch = 0; ch < 10; ++ch) {
    auto round = DecodeChannelMessage(b64, EncodeChannelMessage(b64, ch, std::string("\0\xff", 2)));
    ASSERT_TRUE(round && *round);
    EXPECT_EQ((*round)->channel, ch);
    EXPECT_EQ((*round)->data, std::string("\0\xff", 2));
  }
  EXPECT_TRUE(DecodeChannelMessage(b64, "0a*b").error().Is(Errc::kInvalidArgument));
  // A channel character below '0' wraps around, as upstream's byte arithmetic does.
  auto wrapped = DecodeChannelMessage(b64, "/");
  ASSERT_TRUE(wrapped && *wrapped);
  EXPECT_EQ((*wrapped)->channel, 255);
}

TEST(ChannelMessage, V5CloseSignal) {
  ChannelProtocol v5 = *ChannelProtocolFor("v5.channel.k8s.io");
  EXPECT_EQ(EncodeStreamClose(kStdinChannel), std::string("\xff\x00", 2));
  auto close = DecodeChannelMessage(v5, EncodeStreamClose(kStdinChannel));
  ASSERT_TRUE(close && *close);
  EXPECT_EQ((*close)->kind, ChannelMessage::Kind::kClose);
  EXPECT_EQ((*close)->channel, kStdinChannel);
  EXPECT_TRUE(DecodeChannelMessage(v5, "\xff").error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(
      DecodeChannelMessage(v5, std::string("\xff\x00\x01", 3)).error().Is(Errc::kInvalidArgument));
  auto data = DecodeChannelMessage(v5, std::string("\x00in", 3));
  ASSERT_TRUE(data && *data);
  EXPECT_EQ((*data)->kind, ChannelMessage::Kind::kData);
  EXPECT_EQ((*data)->data, "in");
}

TEST(ChannelMessage, PortForward) {
  EXPECT_EQ(PortForwardChannels(0), std::make_pair(uint8_t{0}, uint8_t{1}));
  EXPECT_EQ(PortForwardChannels(3), std::make_pair(uint8_t{6}, uint8_t{7}));
  EXPECT_EQ(PortPrefix(8080), std::string("\x90\x1f", 2));  // 0x1f90 little-endian
  EXPECT_EQ(PortPrefix(80), std::string("\x50\x00", 2));
  ChannelProtocol binary{};
  EXPECT_EQ(EncodeChannelMessage(binary, PortForwardChannels(1).second, PortPrefix(443)),
            std::string("\x03\xbb\x01", 3));
  ChannelProtocol b64{.base64 = true, .stream_close = false};
  EXPECT_EQ(EncodeChannelMessage(b64, PortForwardChannels(1).first, PortPrefix(443)), "2uwE=");
}

}  // namespace
}  // namespace berth::cri::streaming

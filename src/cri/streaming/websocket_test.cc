#include "cri/streaming/websocket.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace berth::cri::streaming::ws {
namespace {

constexpr MaskKey kMask = {0x37, 0xfa, 0x21, 0x3d};

// A client's frame, as a browser or client-go sends it.
std::string ClientFrame(Opcode op, std::string_view payload, bool fin = true) {
  return EncodeFrame(op, payload, fin, kMask);
}

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

std::vector<Frame> ParseAll(std::string_view bytes, Role role = Role::kServer,
                            size_t max = 1 << 20) {
  FrameParser parser(role, max);
  std::vector<Frame> frames;
  Status st = parser.Feed(bytes, frames);
  EXPECT_TRUE(st) << st.error().ToString();
  return frames;
}

TEST(WebSocketFrame, Rfc6455Examples) {
  // §5.7: a single-frame unmasked text message "Hello" and its masked form.
  EXPECT_EQ(EncodeFrame(Opcode::kText, "Hello"), Bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));
  EXPECT_EQ(ClientFrame(Opcode::kText, "Hello"),
            Bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
  // A fragmented unmasked text message, and an unmasked ping "Hello".
  EXPECT_EQ(EncodeFrame(Opcode::kText, "Hel", false), Bytes({0x01, 0x03, 0x48, 0x65, 0x6c}));
  EXPECT_EQ(EncodeFrame(Opcode::kContinuation, "lo"), Bytes({0x80, 0x02, 0x6c, 0x6f}));
  EXPECT_EQ(EncodeFrame(Opcode::kPing, "Hello"), Bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}));

  auto frames = ParseAll(ClientFrame(Opcode::kText, "Hello"));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].fin);
  EXPECT_EQ(frames[0].opcode, Opcode::kText);
  EXPECT_EQ(frames[0].payload, "Hello");
  // The client role reads unmasked server frames.
  auto server = ParseAll(EncodeFrame(Opcode::kBinary, "x"), Role::kClient);
  ASSERT_EQ(server.size(), 1u);
  EXPECT_EQ(server[0].payload, "x");
}

TEST(WebSocketFrame, LengthEncodings) {
  struct Case {
    size_t size;
    size_t header;  // unmasked
    int len7;
  };
  for (Case c : {Case{0, 2, 0}, Case{125, 2, 125}, Case{126, 4, 126}, Case{65535, 4, 126},
                 Case{65536, 10, 127}, Case{70000, 10, 127}}) {
    std::string payload(c.size, '\0');
    for (size_t i = 0; i < c.size; ++i) payload[i] = static_cast<char>(i * 7);
    std::string frame = EncodeFrame(Opcode::kBinary, payload);
    ASSERT_EQ(frame.size(), c.header + c.size) << c.size;
    EXPECT_EQ(static_cast<uint8_t>(frame[0]), 0x82);
    EXPECT_EQ(static_cast<uint8_t>(frame[1]), c.len7) << c.size;
    if (c.header == 4) {
      EXPECT_EQ((static_cast<uint8_t>(frame[2]) << 8) | static_cast<uint8_t>(frame[3]), c.size);
    }
    if (c.header == 10) {
      uint64_t n = 0;
      for (size_t i = 2; i < 10; ++i) n = (n << 8) | static_cast<uint8_t>(frame[i]);
      EXPECT_EQ(n, c.size);
    }
    std::string masked = ClientFrame(Opcode::kBinary, payload);
    ASSERT_EQ(masked.size(), c.header + 4 + c.size);
    EXPECT_EQ(static_cast<uint8_t>(masked[1]), 0x80 | c.len7);
    auto frames = ParseAll(masked);
    ASSERT_EQ(frames.size(), 1u) << c.size;
    EXPECT_EQ(frames[0].payload, payload) << c.size;
  }
}

TEST(WebSocketFrame, ByteByByteAcrossFrames) {
  std::string stream = ClientFrame(Opcode::kBinary, std::string(300, 'a')) +
                       ClientFrame(Opcode::kText, "") +
                       ClientFrame(Opcode::kBinary, std::string(70000, 'b'), false) +
                       ClientFrame(Opcode::kPing, "p");
  FrameParser parser(Role::kServer, 1 << 20);
  std::vector<Frame> frames;
  for (char c : stream) ASSERT_TRUE(parser.Feed(std::string_view(&c, 1), frames));
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].payload, std::string(300, 'a'));
  EXPECT_EQ(frames[1].opcode, Opcode::kText);
  EXPECT_EQ(frames[1].payload, "");
  EXPECT_FALSE(frames[2].fin);
  EXPECT_EQ(frames[2].payload, std::string(70000, 'b'));
  EXPECT_EQ(frames[3].opcode, Opcode::kPing);
}

Error FeedError(std::string_view bytes, Role role = Role::kServer, size_t max = 1 << 20) {
  FrameParser parser(role, max);
  std::vector<Frame> frames;
  Status st = parser.Feed(bytes, frames);
  if (st) return Error(Errc::kUnknown, "no error");
  // A failed parser refuses everything after.
  EXPECT_TRUE(
      parser.Feed(ClientFrame(Opcode::kBinary, "x"), frames).error().Is(Errc::kFailedPrecondition));
  return std::move(st).error();
}

TEST(WebSocketFrame, RefusesProtocolViolations) {
  // Unmasked client frame: refused from its first two bytes.
  EXPECT_TRUE(FeedError(Bytes({0x82, 0x01})).Is(Errc::kInvalidArgument));
  EXPECT_TRUE(FeedError(EncodeFrame(Opcode::kBinary, "x")).Is(Errc::kInvalidArgument));
  // Masked server frame, for the client role.
  EXPECT_TRUE(
      FeedError(ClientFrame(Opcode::kBinary, "x"), Role::kClient).Is(Errc::kInvalidArgument));
  // RSV bits, unknown opcodes.
  EXPECT_TRUE(FeedError(Bytes({0xC2, 0x80})).Is(Errc::kInvalidArgument));
  for (int op : {0x3, 0x7, 0xB, 0xF}) {
    EXPECT_TRUE(FeedError(Bytes({0x80 | op, 0x80})).Is(Errc::kInvalidArgument)) << op;
  }
  // Control frames: fragmented, or over 125 bytes.
  EXPECT_TRUE(FeedError(Bytes({0x09, 0x80})).Is(Errc::kInvalidArgument));
  EXPECT_TRUE(FeedError(Bytes({0x89, 0x80 | 126, 0x00, 0x7e})).Is(Errc::kInvalidArgument));
  EXPECT_TRUE(
      FeedError(ClientFrame(Opcode::kClose, std::string(126, 'x'))).Is(Errc::kInvalidArgument));
  // A 64-bit length with its top bit set.
  EXPECT_TRUE(FeedError(Bytes({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0})).Is(Errc::kInvalidArgument));
}

TEST(WebSocketFrame, RefusesOversizeFromTheHeader) {
  // 2^40 bytes announced: refused before any payload or mask arrives.
  EXPECT_TRUE(
      FeedError(Bytes({0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0})).Is(Errc::kResourceExhausted));
  EXPECT_TRUE(FeedError(ClientFrame(Opcode::kBinary, std::string(101, 'x')), Role::kServer, 100)
                  .Is(Errc::kResourceExhausted));
  EXPECT_EQ(
      ParseAll(ClientFrame(Opcode::kBinary, std::string(100, 'x')), Role::kServer, 100).size(), 1u);
}

struct Server {
  Connection conn;
  std::vector<Message> messages;

  explicit Server(ConnectionOptions options = {}) : conn(options) {}
  Status Feed(std::string_view bytes) { return conn.Feed(bytes, messages); }
};

TEST(WebSocketConnection, ReassemblesFragmentedMessages) {
  Server s;
  std::string bytes = ClientFrame(Opcode::kText, "Hel", false) + ClientFrame(Opcode::kPing, "!") +
                      ClientFrame(Opcode::kContinuation, "lo", false) +
                      ClientFrame(Opcode::kContinuation, "") +
                      ClientFrame(Opcode::kBinary, std::string("\0\1", 2));
  for (char c : bytes) ASSERT_TRUE(s.Feed(std::string_view(&c, 1)));
  ASSERT_EQ(s.messages.size(), 2u);
  EXPECT_TRUE(s.messages[0].text);
  EXPECT_EQ(s.messages[0].data, "Hello");
  EXPECT_FALSE(s.messages[1].text);
  EXPECT_EQ(s.messages[1].data, std::string("\0\1", 2));
  // The ping between fragments is answered with an unmasked pong carrying its payload.
  EXPECT_EQ(s.conn.TakeOutput(), EncodeFrame(Opcode::kPong, "!"));
  EXPECT_FALSE(s.conn.HasOutput());
}

TEST(WebSocketConnection, PongsAreDropped) {
  Server s;
  ASSERT_TRUE(s.Feed(ClientFrame(Opcode::kPong, "x")));
  EXPECT_TRUE(s.messages.empty());
  EXPECT_FALSE(s.conn.HasOutput());
}

TEST(WebSocketConnection, SendsUnmaskedFrames) {
  Server s;
  EXPECT_TRUE(s.conn.SendBinary(std::string("\1out", 4)));
  EXPECT_TRUE(s.conn.SendText("1b3V0"));
  EXPECT_TRUE(s.conn.SendPing("k"));
  EXPECT_EQ(s.conn.TakeOutput(), EncodeFrame(Opcode::kBinary, std::string("\1out", 4)) +
                                     EncodeFrame(Opcode::kText, "1b3V0") +
                                     EncodeFrame(Opcode::kPing, "k"));
}

TEST(WebSocketConnection, PeerInitiatedClose) {
  Server s;
  ASSERT_TRUE(s.Feed(ClientFrame(Opcode::kClose, ClosePayload(kCloseGoingAway, "bye")) +
                     ClientFrame(Opcode::kBinary, "ignored")));
  EXPECT_TRUE(s.messages.empty());
  EXPECT_TRUE(s.conn.CloseReceived());
  EXPECT_TRUE(s.conn.Closed());
  EXPECT_EQ(s.conn.PeerCloseCode(), kCloseGoingAway);
  EXPECT_EQ(s.conn.PeerCloseReason(), "bye");
  EXPECT_EQ(s.conn.TakeOutput(), EncodeFrame(Opcode::kClose, ClosePayload(kCloseGoingAway, "")));
  EXPECT_FALSE(s.conn.SendBinary("late"));
  EXPECT_FALSE(s.conn.Close());
  EXPECT_FALSE(s.conn.HasOutput());
  EXPECT_TRUE(s.Feed(ClientFrame(Opcode::kBinary, "more")));  // ignored
  EXPECT_TRUE(s.messages.empty());
}

TEST(WebSocketConnection, EmptyCloseIsEchoedEmpty) {
  Server s;
  ASSERT_TRUE(s.Feed(ClientFrame(Opcode::kClose, "")));
  EXPECT_EQ(s.conn.PeerCloseCode(), kCloseNoStatus);
  EXPECT_EQ(s.conn.TakeOutput(), Bytes({0x88, 0x00}));
}

TEST(WebSocketConnection, ServerInitiatedClose) {
  Server s;
  EXPECT_TRUE(s.conn.Close(kCloseNormal, "done"));
  EXPECT_EQ(s.conn.TakeOutput(), Bytes({0x88, 0x06, 0x03, 0xe8, 'd', 'o', 'n', 'e'}));
  EXPECT_TRUE(s.conn.CloseSent());
  EXPECT_FALSE(s.conn.Closed());
  EXPECT_FALSE(s.conn.SendText("x"));
  EXPECT_FALSE(s.conn.SendPing());
  // Data still in flight from the peer is delivered; a ping is not answered any more.
  ASSERT_TRUE(s.Feed(ClientFrame(Opcode::kBinary, "late") + ClientFrame(Opcode::kPing, "")));
  ASSERT_EQ(s.messages.size(), 1u);
  EXPECT_FALSE(s.conn.HasOutput());
  ASSERT_TRUE(s.Feed(ClientFrame(Opcode::kClose, ClosePayload(kCloseNormal, ""))));
  EXPECT_TRUE(s.conn.Closed());
  EXPECT_FALSE(s.conn.HasOutput());  // no second close frame
  // The reason is cut to fit a control frame.
  Server t;
  t.conn.Close(kCloseNormal, std::string(200, 'r'));
  EXPECT_EQ(t.conn.TakeOutput().size(), 2u + 125u);
}

void ExpectFailure(std::string_view bytes, Errc code, uint16_t close_code,
                   ConnectionOptions options = {}) {
  Server s(options);
  Status st = s.Feed(bytes);
  ASSERT_FALSE(st) << "no error";
  EXPECT_TRUE(st.error().Is(code)) << st.error().ToString();
  EXPECT_EQ(s.conn.TakeOutput(), EncodeFrame(Opcode::kClose, ClosePayload(close_code, "")))
      << st.error().ToString();
  EXPECT_TRUE(s.Feed(ClientFrame(Opcode::kBinary, "x")).error().Is(Errc::kFailedPrecondition));
}

TEST(WebSocketConnection, ProtocolErrorsCloseWith1002) {
  ExpectFailure(EncodeFrame(Opcode::kBinary, "unmasked"), Errc::kInvalidArgument,
                kCloseProtocolError);
  ExpectFailure(ClientFrame(Opcode::kContinuation, "x"), Errc::kInvalidArgument,
                kCloseProtocolError);
  ExpectFailure(ClientFrame(Opcode::kText, "a", false) + ClientFrame(Opcode::kBinary, "b"),
                Errc::kInvalidArgument, kCloseProtocolError);
  ExpectFailure(ClientFrame(Opcode::kClose, "x"), Errc::kInvalidArgument, kCloseProtocolError);
  for (uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 2999, 5000}) {
    ExpectFailure(ClientFrame(Opcode::kClose, ClosePayload(code, "")), Errc::kInvalidArgument,
                  kCloseProtocolError);
  }
}

TEST(WebSocketConnection, FramesBeforeABadOneAreDelivered) {
  Server s;
  Status st = s.Feed(ClientFrame(Opcode::kBinary, "ok") + Bytes({0x82, 0x01}));
  ASSERT_FALSE(st);
  ASSERT_EQ(s.messages.size(), 1u);
  EXPECT_EQ(s.messages[0].data, "ok");
}

TEST(WebSocketConnection, OversizeClosesWith1009) {
  ConnectionOptions small{.role = Role::kServer, .max_frame_payload = 10, .max_message = 16};
  ExpectFailure(ClientFrame(Opcode::kBinary, std::string(11, 'x')), Errc::kResourceExhausted,
                kCloseTooBig, small);
  ExpectFailure(ClientFrame(Opcode::kBinary, std::string(10, 'x'), false) +
                    ClientFrame(Opcode::kContinuation, std::string(7, 'x')),
                Errc::kResourceExhausted, kCloseTooBig, small);
  Server fits(small);
  ASSERT_TRUE(fits.Feed(ClientFrame(Opcode::kBinary, std::string(10, 'x'), false) +
                        ClientFrame(Opcode::kContinuation, std::string(6, 'x'))));
  ASSERT_EQ(fits.messages.size(), 1u);
  EXPECT_EQ(fits.messages[0].data.size(), 16u);
}

TEST(WebSocketConnection, ClientRoleMasksAndTalksToAServer) {
  Connection client({.role = Role::kClient});
  Server server;
  ASSERT_TRUE(client.SendBinary(std::string(1000, 'z')));
  ASSERT_TRUE(client.SendPing("hi"));
  std::string wire = client.TakeOutput();
  EXPECT_EQ(static_cast<uint8_t>(wire[1]) & 0x80, 0x80);  // masked
  ASSERT_TRUE(server.Feed(wire));
  ASSERT_EQ(server.messages.size(), 1u);
  EXPECT_EQ(server.messages[0].data, std::string(1000, 'z'));
  std::vector<Message> got;
  ASSERT_TRUE(client.Feed(server.conn.TakeOutput(), got));  // the pong
  ASSERT_TRUE(server.conn.SendText("back"));
  ASSERT_TRUE(server.conn.Close(kCloseNormal, "end"));
  ASSERT_TRUE(client.Feed(server.conn.TakeOutput(), got));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, "back");
  EXPECT_TRUE(client.Closed());
  EXPECT_EQ(client.PeerCloseReason(), "end");
  ASSERT_TRUE(server.Feed(client.TakeOutput()));
  EXPECT_TRUE(server.conn.Closed());
}

}  // namespace
}  // namespace berth::cri::streaming::ws

#include "cri/streaming/spdy_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cri/streaming/spdy_test_util.h"

namespace berth::cri::streaming::spdy {
namespace {

using testing::Hex;
using testing::ParseAll;

using Kind = Event::Kind;

// The client side of a connection, as client-go drives spdystream: its own deflate stream out,
// its own inflate stream over what the server sends.
Frame Syn(uint32_t id, HeaderBlock headers, uint8_t flags = 0) {
  return SynStream{.stream_id = id, .flags = flags, .headers = std::move(headers)};
}
Frame Dat(uint32_t id, std::string payload, bool fin = false) {
  return Data{.stream_id = id, .flags = fin ? kFlagFin : uint8_t{0}, .payload = std::move(payload)};
}

class Client {
 public:
  // The frames' bytes, header blocks compressed in this order (one argument list, so the order
  // of evaluation cannot shuffle the compression stream).
  std::string Bytes(std::initializer_list<Frame> frames) {
    std::string out;
    for (const auto& f : frames) {
      EXPECT_TRUE(writer_.Write(f, out));
    }
    return out;
  }
  std::string SynStream(uint32_t id, HeaderBlock headers, uint8_t flags = 0) {
    return Bytes({Syn(id, std::move(headers), flags)});
  }
  std::string Data(uint32_t id, std::string payload, bool fin = false) {
    return Bytes({Dat(id, std::move(payload), fin)});
  }
  // The frames of everything the session queued.
  std::vector<Frame> Read(Session& s) { return ParseAll(parser_, s.TakeOutput()); }

 private:
  FrameWriter writer_;
  FrameParser parser_;
};

std::vector<Kind> Kinds(const std::vector<Event>& events) {
  std::vector<Kind> kinds;
  for (const auto& e : events) {
    kinds.push_back(e.kind);
  }
  return kinds;
}

TEST(SpdySession, ExecHandshakeAndStreams) {
  Session s;
  Client c;
  std::string in = c.Bytes({Syn(1, {{"streamtype", "error"}}), Syn(3, {{"streamtype", "stdin"}}),
                            Syn(5, {{"streamtype", "stdout"}})});
  ASSERT_TRUE(s.Feed(in));
  auto events = s.TakeEvents();
  ASSERT_EQ(Kinds(events),
            (std::vector<Kind>{Kind::kStreamOpened, Kind::kStreamOpened, Kind::kStreamOpened}));
  EXPECT_EQ(events[0].stream_id, 1u);
  EXPECT_EQ(events[1].headers.Get("streamtype"), "stdin");
  EXPECT_EQ(events[2].stream_id, 5u);
  EXPECT_EQ(s.OpenStreams(), 3u);
  EXPECT_EQ(s.LastStreamId(), 5u);

  // Data before the reply would be dropped by spdystream: refused.
  auto early = s.SendData(5, "x");
  ASSERT_FALSE(early);
  EXPECT_TRUE(early.error().Is(Errc::kFailedPrecondition));
  for (uint32_t id : {1u, 3u, 5u}) {
    ASSERT_TRUE(s.Reply(id));
  }
  EXPECT_TRUE(s.Reply(1).error().Is(Errc::kFailedPrecondition));
  EXPECT_TRUE(s.Reply(7).error().Is(Errc::kNotFound));
  auto frames = c.Read(s);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(std::get<SynReply>(frames[0]), (SynReply{.stream_id = 1}));
  EXPECT_EQ(std::get<SynReply>(frames[2]), (SynReply{.stream_id = 5}));

  // stdin, an empty frame (no event), then EOF.
  ASSERT_TRUE(s.Feed(c.Bytes({Dat(3, "ls\n"), Dat(3, ""), Dat(3, "", true)})));
  events = s.TakeEvents();
  ASSERT_EQ(Kinds(events), (std::vector<Kind>{Kind::kData, Kind::kPeerFinished}));
  EXPECT_EQ(events[0].data, "ls\n");
  EXPECT_EQ(events[1].stream_id, 3u);

  // stdout, then its end; the error stream's status and FIN.
  ASSERT_TRUE(s.SendData(5, "out"));
  ASSERT_TRUE(s.SendData(5, "", true));
  EXPECT_TRUE(s.SendData(5, "more").error().Is(Errc::kFailedPrecondition));
  ASSERT_TRUE(s.SendData(1, R"({"metadata":{},"status":"Success"})", true));
  frames = c.Read(s);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(std::get<spdy::Data>(frames[0]), (spdy::Data{.stream_id = 5, .payload = "out"}));
  EXPECT_EQ(std::get<spdy::Data>(frames[1]), (spdy::Data{.stream_id = 5, .flags = kFlagFin}));
  EXPECT_EQ(std::get<spdy::Data>(frames[2]).flags, kFlagFin);
  // A stream is gone once both sides finished (or either reset it).
  EXPECT_TRUE(s.IsOpen(5));
  ASSERT_TRUE(s.Feed(c.Bytes({Dat(5, "", true), Dat(1, "", true)})));
  EXPECT_FALSE(s.IsOpen(5));
  EXPECT_FALSE(s.IsOpen(1));
  EXPECT_TRUE(s.IsOpen(3));
  ASSERT_TRUE(s.Reset(3, RstStatus::kCancel));  // upstream's end: RST CANCEL what it did not FIN
  EXPECT_EQ(s.OpenStreams(), 0u);

  s.GoAway();
  frames = c.Read(s);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(std::get<RstStream>(frames[0]),
            (RstStream{.stream_id = 3, .status = static_cast<uint32_t>(RstStatus::kCancel)}));
  EXPECT_EQ(std::get<spdy::GoAway>(frames[1]), (spdy::GoAway{.last_good_stream_id = 5}));
}

TEST(SpdySession, SendDataSplitsAtTheFrameLimit) {
  Session s({.max_frame_size = 40});
  Client c;
  ASSERT_TRUE(s.Feed(c.SynStream(1, {})));
  ASSERT_TRUE(s.Reply(1));
  ASSERT_TRUE(s.SendData(1, std::string(100, 'a'), true));
  auto frames = c.Read(s);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(std::get<spdy::Data>(frames[1]).payload.size(), 40u);
  EXPECT_EQ(std::get<spdy::Data>(frames[2]).flags, 0);
  EXPECT_EQ(std::get<spdy::Data>(frames[3]),
            (spdy::Data{.stream_id = 1, .flags = kFlagFin, .payload = std::string(20, 'a')}));
}

TEST(SpdySession, EchoesClientPings) {
  Session s;
  Client c;
  ASSERT_TRUE(s.Feed(c.Bytes({Ping{.id = 1}, Ping{.id = 2}, Ping{.id = 3}})));
  EXPECT_TRUE(s.TakeEvents().empty());
  EXPECT_EQ(s.PendingOutput(), 24u);
  auto frames = c.Read(s);
  ASSERT_EQ(frames.size(), 2u);  // an even id would answer a ping the server never sent
  EXPECT_EQ(std::get<Ping>(frames[0]).id, 1u);
  EXPECT_EQ(std::get<Ping>(frames[1]).id, 3u);
  EXPECT_EQ(s.PendingOutput(), 0u);
}

TEST(SpdySession, IgnoresSettingsAndWindowUpdates) {
  Session s;
  Client c;
  ASSERT_TRUE(s.Feed(c.SynStream(1, {})));
  s.TakeEvents();
  ASSERT_TRUE(s.Feed(c.Bytes(
      {Settings{.entries = {{.id = 7, .value = 1}}}, WindowUpdate{.stream_id = 1, .delta = 1},
       WindowUpdate{.stream_id = 99, .delta = 1}, SynReply{.stream_id = 2}})));
  EXPECT_TRUE(s.TakeEvents().empty());
  EXPECT_EQ(s.PendingOutput(), 0u);
}

TEST(SpdySession, ClientGoAwayEndsReading) {
  Session s;
  Client c;
  ASSERT_TRUE(s.Feed(c.Bytes({Syn(1, {}), spdy::GoAway{.last_good_stream_id = 0}, Syn(3, {})}) +
                     "garbage after goaway"));
  auto events = s.TakeEvents();
  ASSERT_EQ(Kinds(events), (std::vector<Kind>{Kind::kStreamOpened, Kind::kGoAway}));
  EXPECT_EQ(events[1].status, 0u);
  ASSERT_TRUE(s.Feed("more garbage"));
  EXPECT_TRUE(s.TakeEvents().empty());
  // The server can still finish what is open.
  ASSERT_TRUE(s.Reply(1, {}, true));
}

TEST(SpdySession, ServerGoAwayIgnoresNewStreams) {
  Session s;
  Client c;
  ASSERT_TRUE(s.Feed(c.SynStream(1, {})));
  s.GoAway();
  s.GoAway();  // once only
  ASSERT_TRUE(s.Feed(c.Bytes({Syn(3, {{"streamtype", "data"}}), Dat(1, "still open")})));
  auto events = s.TakeEvents();
  ASSERT_EQ(Kinds(events), (std::vector<Kind>{Kind::kStreamOpened, Kind::kData}));
  auto frames = c.Read(s);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<spdy::GoAway>(frames[0]),
            (spdy::GoAway{.last_good_stream_id = 1, .status = 0}));
}

TEST(SpdySession, BadStreamIdsAreReset) {
  Session s;
  Client c;
  ASSERT_TRUE(s.Feed(c.SynStream(5, {})));
  ASSERT_EQ(s.TakeEvents().size(), 1u);
  // Even (a server id), lower than the last, equal to an open one.
  ASSERT_TRUE(s.Feed(c.Bytes({Syn(6, {}), Syn(3, {})})));
  EXPECT_TRUE(s.TakeEvents().empty());
  EXPECT_TRUE(s.IsOpen(5));
  ASSERT_TRUE(s.Feed(c.SynStream(5, {})));
  auto events = s.TakeEvents();
  ASSERT_EQ(Kinds(events), (std::vector<Kind>{Kind::kStreamReset}));
  EXPECT_EQ(events[0].status, static_cast<uint32_t>(RstStatus::kProtocolError));
  EXPECT_FALSE(s.IsOpen(5));
  auto frames = c.Read(s);
  ASSERT_EQ(frames.size(), 3u);
  const uint32_t protocol_error = static_cast<uint32_t>(RstStatus::kProtocolError);
  EXPECT_EQ(std::get<RstStream>(frames[0]), (RstStream{.stream_id = 6, .status = protocol_error}));
  EXPECT_EQ(std::get<RstStream>(frames[1]), (RstStream{.stream_id = 3, .status = protocol_error}));
  EXPECT_EQ(std::get<RstStream>(frames[2]), (RstStream{.stream_id = 5, .status = protocol_error}));
  // Still a good session: the next higher odd id opens.
  ASSERT_TRUE(s.Feed(c.SynStream(7, {})));
  EXPECT_EQ(Kinds(s.TakeEvents()), (std::vector<Kind>{Kind::kStreamOpened}));
}

TEST(SpdySession, TooManyStreamsIsAConnectionError) {
  Session s({.max_streams = 4});
  Client c;
  std::string in;
  for (uint32_t id = 1; id <= 7; id += 2) {
    in += c.SynStream(id, {});
  }
  ASSERT_TRUE(s.Feed(in));
  EXPECT_EQ(s.TakeEvents().size(), 4u);
  auto st = s.Feed(c.SynStream(9, {}));
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kResourceExhausted)) << st.error().ToString();
  EXPECT_TRUE(s.Failed());
  auto frames = c.Read(s);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<spdy::GoAway>(frames[0]),
            (spdy::GoAway{.last_good_stream_id = 7,
                          .status = static_cast<uint32_t>(GoAwayStatus::kProtocolError)}));
  // Failed for good.
  EXPECT_FALSE(s.Feed(c.Data(1, "x")));
  EXPECT_TRUE(s.Reply(1).error().Is(Errc::kFailedPrecondition));
  EXPECT_EQ(s.PendingOutput(), 0u);
}

TEST(SpdySession, ClosedStreamsFreeTheirSlots) {
  Session s({.max_streams = 2});
  Client c;
  for (uint32_t id = 1; id < 2000; id += 2) {
    ASSERT_TRUE(s.Feed(c.SynStream(id, {}, kFlagFin))) << id;
    ASSERT_TRUE(s.Reply(id, {}, true));
    if (id % 3 == 0) {
      ASSERT_TRUE(s.Feed(c.Bytes({RstStream{.stream_id = id, .status = 5}})));
    }
  }
  EXPECT_EQ(s.OpenStreams(), 0u);
  c.Read(s);
}

TEST(SpdySession, DataOnUnknownAndClosedStreams) {
  Session s;
  Client c;
  ASSERT_TRUE(s.Feed(c.Bytes({Syn(1, {}), Syn(3, {})})));
  s.TakeEvents();
  ASSERT_TRUE(s.Reset(1, RstStatus::kCancel));
  EXPECT_TRUE(s.Reset(1, RstStatus::kCancel).error().Is(Errc::kNotFound));
  c.Read(s);
  // In flight on a stream the server reset: dropped.
  ASSERT_TRUE(s.Feed(c.Data(1, "late")));
  EXPECT_TRUE(s.TakeEvents().empty());
  EXPECT_EQ(s.PendingOutput(), 0u);
  // On an id never opened: INVALID_STREAM.
  ASSERT_TRUE(s.Feed(c.Data(9, "who")));
  EXPECT_TRUE(s.TakeEvents().empty());
  auto frames = c.Read(s);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(
      std::get<RstStream>(frames[0]),
      (RstStream{.stream_id = 9, .status = static_cast<uint32_t>(RstStatus::kInvalidStream)}));
  // After the client's FIN: STREAM_ALREADY_CLOSED, and the stream is gone.
  ASSERT_TRUE(s.Feed(c.Bytes({Dat(3, "", true), Dat(3, "after fin")})));
  auto events = s.TakeEvents();
  ASSERT_EQ(Kinds(events), (std::vector<Kind>{Kind::kPeerFinished, Kind::kStreamReset}));
  EXPECT_EQ(events[1].status, static_cast<uint32_t>(RstStatus::kStreamAlreadyClosed));
  EXPECT_FALSE(s.IsOpen(3));
  frames = c.Read(s);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<RstStream>(frames[0]).status,
            static_cast<uint32_t>(RstStatus::kStreamAlreadyClosed));
}

TEST(SpdySession, ClientResetAndHeaders) {
  Session s;
  Client c;
  ASSERT_TRUE(s.Feed(
      c.Bytes({Syn(1, {{"streamtype", "data"}, {"port", "80"}}),
               spdy::Headers{.stream_id = 1, .headers = {{"x", "y"}}},
               spdy::Headers{.stream_id = 99, .headers = {{"x", "z"}}},
               RstStream{.stream_id = 1, .status = 5}, RstStream{.stream_id = 77, .status = 5}})));
  auto events = s.TakeEvents();
  ASSERT_EQ(Kinds(events),
            (std::vector<Kind>{Kind::kStreamOpened, Kind::kHeaders, Kind::kStreamReset}));
  EXPECT_EQ(events[0].headers.Get("port"), "80");
  EXPECT_EQ(events[1].headers.Get("x"), "y");
  EXPECT_EQ(events[2].status, 5u);
  EXPECT_TRUE(s.SendData(1, "x").error().Is(Errc::kNotFound));
  EXPECT_EQ(s.PendingOutput(), 0u);
}

TEST(SpdySession, UnidirectionalStreamTakesNoReply) {
  Session s;
  Client c;
  ASSERT_TRUE(s.Feed(c.SynStream(1, {}, kFlagUnidirectional)));
  s.TakeEvents();
  EXPECT_TRUE(s.Reply(1).error().Is(Errc::kFailedPrecondition));
  ASSERT_TRUE(s.Feed(c.Data(1, "x", true)));
  EXPECT_EQ(Kinds(s.TakeEvents()), (std::vector<Kind>{Kind::kData, Kind::kPeerFinished}));
  EXPECT_EQ(s.OpenStreams(), 0u);
}

TEST(SpdySession, ReplyWithBadHeadersKeepsTheSession) {
  Session s;
  Client c;
  ASSERT_TRUE(s.Feed(c.SynStream(1, {})));
  auto st = s.Reply(1, {{"Bad", "1"}});
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kInvalidArgument));
  EXPECT_FALSE(s.Failed());
  ASSERT_TRUE(s.Reply(1, {{"good", "1"}}));
  auto frames = c.Read(s);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<SynReply>(frames[0]).headers, (HeaderBlock{{"good", "1"}}));
}

void ExpectConnectionError(std::string_view bytes, Errc code, SessionOptions options = {}) {
  Session s(options);
  Client c;
  ASSERT_TRUE(s.Feed(c.SynStream(1, {})));
  auto st = s.Feed(bytes);
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(code)) << st.error().ToString();
  auto frames = c.Read(s);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<spdy::GoAway>(frames[0]),
            (spdy::GoAway{.last_good_stream_id = 1,
                          .status = static_cast<uint32_t>(GoAwayStatus::kProtocolError)}));
  EXPECT_FALSE(s.Feed(c.Data(1, "x")));
  EXPECT_EQ(s.PendingOutput(), 0u);  // one GOAWAY only
}

TEST(SpdySession, MalformedInputIsAConnectionError) {
  ExpectConnectionError(Hex("80 02 00 06 00 00 00 04 00 00 00 01"), Errc::kInvalidArgument);
  ExpectConnectionError(Hex("80 03 00 0a 00 00 00 00"), Errc::kInvalidArgument);
  ExpectConnectionError(Hex("80 03 00 06 00 00 00 05 00 00 00 01 00"), Errc::kInvalidArgument);
  ExpectConnectionError(Hex("00 00 00 01 00 00 01 01"), Errc::kResourceExhausted,
                        {.max_frame_size = 256});
  // A SYN_STREAM whose block is not in the client's zlib stream.
  ExpectConnectionError(Hex("80 03 00 01 00 00 00 0e 00 00 00 03 00 00 00 00 00 00 01 02 03 04"),
                        Errc::kInvalidArgument);
}

TEST(SpdySession, HeaderBombIsAConnectionError) {
  Session s;
  Client c;
  auto st = s.Feed(c.SynStream(1, {{"a", std::string(1 << 20, 'z')}}));
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kResourceExhausted)) << st.error().ToString();
  EXPECT_TRUE(s.TakeEvents().empty());
}

TEST(SpdySession, ByteByByteFeedingGivesTheSameEvents) {
  Client c;
  std::string in;
  for (uint32_t id = 1; id < 40; id += 2) {
    in += c.SynStream(id, {{"streamtype", "data"}, {"requestid", std::to_string(id)}});
    in += c.Data(id, std::string(id, 'q'), id % 4 == 1);
    in += c.Bytes({Ping{.id = id}});
  }
  Session whole;
  ASSERT_TRUE(whole.Feed(in));
  Session bytewise;
  std::vector<Event> events;
  for (char ch : in) {
    ASSERT_TRUE(bytewise.Feed(std::string_view(&ch, 1)));
    for (auto& e : bytewise.TakeEvents()) {
      events.push_back(std::move(e));
    }
  }
  const auto expected = whole.TakeEvents();
  ASSERT_EQ(events.size(), expected.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].kind, expected[i].kind) << i;
    EXPECT_EQ(events[i].stream_id, expected[i].stream_id) << i;
    EXPECT_EQ(events[i].headers, expected[i].headers) << i;
    EXPECT_EQ(events[i].data, expected[i].data) << i;
  }
  EXPECT_EQ(whole.TakeOutput(), bytewise.TakeOutput());  // the ping echoes
}

}  // namespace
}  // namespace berth::cri::streaming::spdy

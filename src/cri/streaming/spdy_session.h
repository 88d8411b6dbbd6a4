#pragma once
// The server side of one SPDY/3.1 connection, sans I/O: the owner feeds it the client's bytes,
// takes the events they produce, answers through Reply/SendData/Reset/GoAway and writes out
// whatever TakeOutput() returns. The runtime is the SPDY server of the CRI streaming protocols: the
// client (client-go over spdystream) opens every stream with odd ids; the server never opens one.
//
// What the session does by itself: echoes the client's PINGs; accepts and ignores SETTINGS and
// WINDOW_UPDATE (spdystream sends neither and honours neither: there is no flow control, so the
// owner bounds its own buffering with PendingOutput()); answers a SYN_STREAM whose id is even or
// not above the previous one with RST_STREAM PROTOCOL_ERROR; answers DATA or HEADERS after the
// client's FIN with RST_STREAM STREAM_ALREADY_CLOSED, and DATA on an id never opened with
// RST_STREAM INVALID_STREAM; drops DATA for a stream already closed (it was in flight); ignores
// SYN_REPLY, RST_STREAM and HEADERS for unknown streams.
//
// Connection errors (a malformed frame, a compression bomb, too many open streams): Feed returns
// the error, queues GOAWAY PROTOCOL_ERROR, and the session is failed: the owner flushes the output
// and closes the connection.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"
#include "cri/streaming/spdy_frame.h"

namespace berth::cri::streaming::spdy {

struct SessionOptions {
  // Largest frame accepted from the client, and largest DATA frame sent (longer sends are split).
  uint32_t max_frame_size = kDefaultMaxFrameSize;
  // Largest decompressed header block accepted from the client.
  size_t max_header_block_size = kDefaultMaxHeaderBlockSize;
  // Most streams open at once (opened by the client, not yet closed both ways nor reset); one
  // more is a connection error. exec/attach open up to 5; port-forward 2 per connection.
  size_t max_streams = 1000;
  // zlib level of the header blocks sent.
  int compression_level = 9;
};

struct Event {
  enum class Kind {
    kStreamOpened,  // SYN_STREAM accepted: `headers`; reply with Reply() before sending data
    kHeaders,       // HEADERS on an open stream: `headers`
    kData,          // DATA on an open stream: `data` (never empty)
    kPeerFinished,  // the client half-closed `stream_id` (FIN): no more data from it
    kStreamReset,   // `stream_id` is gone: the client reset it, or the session did (`status`)
    kGoAway,        // the client goes away: `stream_id` = its last good id; input is ignored now
  };
  Kind kind;
  uint32_t stream_id = 0;
  HeaderBlock headers;
  std::string data;
  uint32_t status = 0;  // kStreamReset: a RstStatus; kGoAway: a GoAwayStatus
};

class Session {
 public:
  explicit Session(SessionOptions options = {});

  // Processes bytes from the client (any cut), queueing events and output. Returns the
  // connection error, if any (also on every later call).
  Status Feed(std::string_view bytes);
  // Events since the last call, in order.
  std::vector<Event> TakeEvents();

  // SYN_REPLY on an open stream (spdystream's client drops DATA that precedes it). NotFound for a
  // stream not open; FailedPrecondition when already replied or the session failed;
  // InvalidArgument for headers EncodeHeaderBlock refuses.
  Status Reply(uint32_t stream_id, const HeaderBlock& headers = {}, bool fin = false);
  // DATA on a replied stream, split into frames of at most max_frame_size; `fin` half-closes
  // (an empty `data` with `fin` sends one empty FIN frame). NotFound for a stream not open;
  // FailedPrecondition before Reply, after the session's FIN, or when the session failed.
  Status SendData(uint32_t stream_id, std::string_view data, bool fin = false);
  // RST_STREAM; the stream is gone. NotFound for a stream not open.
  Status Reset(uint32_t stream_id, RstStatus status);
  // GOAWAY with the last accepted client id; later SYN_STREAMs are ignored. Once only.
  void GoAway(GoAwayStatus status = GoAwayStatus::kOk);

  // Bytes to write to the client, in order; the session's queue is empty afterwards.
  std::string TakeOutput();
  // Bytes queued and not yet taken: the owner stops reading (or closes) when it grows too large.
  size_t PendingOutput() const { return output_.size(); }

  size_t OpenStreams() const { return streams_.size(); }
  bool IsOpen(uint32_t stream_id) const { return streams_.contains(stream_id); }
  uint32_t LastStreamId() const { return last_stream_id_; }
  bool Failed() const { return error_.has_value(); }

 private:
  struct Stream {
    bool replied = false;
    bool local_fin = false;   // we sent FIN (or the client opened it unidirectional)
    bool remote_fin = false;  // the client sent FIN
  };

  Status Handle(Frame frame);
  Status OnSynStream(SynStream f);
  void OnData(Data f);
  void OnHeaders(Headers f);
  void OnRst(const RstStream& f);
  void OnPing(const Ping& f);
  void OnGoAway(const spdy::GoAway& f);
  void PeerFinished(uint32_t id, std::map<uint32_t, Stream>::iterator it);
  // RST_STREAM out; when the stream is open it goes away with a kStreamReset event.
  void ResetFromSession(uint32_t id, RstStatus status);
  void CloseIfDone(std::map<uint32_t, Stream>::iterator it);
  void Write(const Frame& frame);
  Status Fail(Error error);

  SessionOptions options_;
  FrameParser parser_;
  FrameWriter writer_;
  std::map<uint32_t, Stream> streams_;
  uint32_t last_stream_id_ = 0;  // highest client id accepted
  bool goaway_sent_ = false;
  bool goaway_received_ = false;
  std::optional<Error> error_;
  std::vector<Event> events_;
  std::string output_;
};

}  // namespace berth::cri::streaming::spdy

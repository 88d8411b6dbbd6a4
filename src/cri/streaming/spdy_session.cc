#include "cri/streaming/spdy_session.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace berth::cri::streaming::spdy {
namespace {

bool IsClientId(uint32_t id) { return id % 2 == 1; }

Error NotOpen(uint32_t id) { return NotFound(fmt::format("spdy: stream {} is not open", id)); }

}  // namespace

Session::Session(SessionOptions options)
    : options_(options),
      parser_({.max_frame_size = options.max_frame_size,
               .max_header_block_size = options.max_header_block_size}),
      writer_(options.compression_level) {
  BERTH_CHECK(options_.max_frame_size > 0, "spdy: max_frame_size must be positive");
  options_.max_frame_size = std::min(options_.max_frame_size, kMaxFrameLength);
}

Status Session::Feed(std::string_view bytes) {
  if (error_) {
    return *error_;
  }
  // spdystream stops reading at GOAWAY; whatever follows is not looked at.
  if (goaway_received_) {
    return Ok();
  }
  parser_.Append(bytes);
  while (!goaway_received_) {
    auto next = parser_.Next();
    if (!next) {
      return Fail(std::move(next).error());
    }
    if (!next->has_value()) {
      break;
    }
    if (Status s = Handle(std::move(**next)); !s) {
      return Fail(std::move(s).error());
    }
  }
  return Ok();
}

std::vector<Event> Session::TakeEvents() { return std::exchange(events_, {}); }

Status Session::Handle(Frame frame) {
  struct Visitor {
    Session& s;
    Status operator()(SynStream& f) { return s.OnSynStream(std::move(f)); }
    // The server never opens streams, so a reply answers nothing.
    Status operator()(SynReply&) { return Ok(); }
    Status operator()(RstStream& f) {
      s.OnRst(f);
      return Ok();
    }
    // No flow control on either side (spdystream sends and honours neither).
    Status operator()(Settings&) { return Ok(); }
    Status operator()(WindowUpdate&) { return Ok(); }
    Status operator()(Ping& f) {
      s.OnPing(f);
      return Ok();
    }
    Status operator()(spdy::GoAway& f) {
      s.OnGoAway(f);
      return Ok();
    }
    Status operator()(Headers& f) {
      s.OnHeaders(std::move(f));
      return Ok();
    }
    Status operator()(Data& f) {
      s.OnData(std::move(f));
      return Ok();
    }
  };
  return std::visit(Visitor{*this}, frame);
}

Status Session::OnSynStream(SynStream f) {
  const uint32_t id = f.stream_id;
  // After our GOAWAY new streams are ignored, as SPDY/3 has it.
  if (goaway_sent_) {
    return Ok();
  }
  if (!IsClientId(id) || id <= last_stream_id_) {
    ResetFromSession(id, RstStatus::kProtocolError);
    return Ok();
  }
  if (streams_.size() >= options_.max_streams) {
    return Error(Errc::kResourceExhausted,
                 fmt::format("spdy: client opened more than {} streams at once (stream {})",
                             options_.max_streams, id));
  }
  last_stream_id_ = id;
  auto [it, inserted] = streams_.emplace(id, Stream{});
  BERTH_CHECK(inserted, "spdy: a new stream id is already open");
  // The recipient of a unidirectional stream may not send on it.
  it->second.local_fin = (f.flags & kFlagUnidirectional) != 0;
  events_.push_back(
      {.kind = Event::Kind::kStreamOpened, .stream_id = id, .headers = std::move(f.headers)});
  if ((f.flags & kFlagFin) != 0) {
    PeerFinished(id, it);
  }
  return Ok();
}

void Session::OnData(Data f) {
  const uint32_t id = f.stream_id;
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    // A stream closed or reset earlier: the client sent this before it knew. Dropped.
    if (IsClientId(id) && id <= last_stream_id_) {
      return;
    }
    ResetFromSession(id, RstStatus::kInvalidStream);
    return;
  }
  if (it->second.remote_fin) {
    ResetFromSession(id, RstStatus::kStreamAlreadyClosed);
    return;
  }
  const bool fin = (f.flags & kFlagFin) != 0;
  // An empty frame carries nothing but its FIN, if that.
  if (!f.payload.empty()) {
    events_.push_back({.kind = Event::Kind::kData, .stream_id = id, .data = std::move(f.payload)});
  }
  if (fin) {
    PeerFinished(id, it);
  }
}

void Session::OnHeaders(Headers f) {
  auto it = streams_.find(f.stream_id);
  if (it == streams_.end()) {
    return;
  }
  if (it->second.remote_fin) {
    ResetFromSession(f.stream_id, RstStatus::kStreamAlreadyClosed);
    return;
  }
  events_.push_back(
      {.kind = Event::Kind::kHeaders, .stream_id = f.stream_id, .headers = std::move(f.headers)});
  if ((f.flags & kFlagFin) != 0) {
    PeerFinished(f.stream_id, it);
  }
}

void Session::OnRst(const RstStream& f) {
  auto it = streams_.find(f.stream_id);
  if (it == streams_.end()) {
    return;
  }
  streams_.erase(it);
  events_.push_back(
      {.kind = Event::Kind::kStreamReset, .stream_id = f.stream_id, .status = f.status});
}

void Session::OnPing(const Ping& f) {
  // The client's pings (odd ids) come back unchanged; an even id would answer a ping of ours,
  // and the server sends none.
  if (IsClientId(f.id)) {
    Write(Ping{.id = f.id});
  }
}

void Session::OnGoAway(const spdy::GoAway& f) {
  goaway_received_ = true;
  events_.push_back(
      {.kind = Event::Kind::kGoAway, .stream_id = f.last_good_stream_id, .status = f.status});
}

void Session::PeerFinished(uint32_t id, std::map<uint32_t, Stream>::iterator it) {
  it->second.remote_fin = true;
  events_.push_back({.kind = Event::Kind::kPeerFinished, .stream_id = id});
  CloseIfDone(it);
}

void Session::ResetFromSession(uint32_t id, RstStatus status) {
  Write(RstStream{.stream_id = id, .status = static_cast<uint32_t>(status)});
  auto it = streams_.find(id);
  if (it != streams_.end()) {
    streams_.erase(it);
    events_.push_back({.kind = Event::Kind::kStreamReset,
                       .stream_id = id,
                       .status = static_cast<uint32_t>(status)});
  }
}

void Session::CloseIfDone(std::map<uint32_t, Stream>::iterator it) {
  if (it->second.local_fin && it->second.remote_fin) {
    streams_.erase(it);
  }
}

void Session::Write(const Frame& frame) {
  // Only frames without header blocks come here: writing them cannot fail.
  Status s = writer_.Write(frame, output_);
  BERTH_CHECK(s.has_value(), s ? "" : s.error().ToString());
}

Status Session::Fail(Error error) {
  error_ = error;
  if (!goaway_sent_) {
    goaway_sent_ = true;
    Write(spdy::GoAway{.last_good_stream_id = last_stream_id_,
                       .status = static_cast<uint32_t>(GoAwayStatus::kProtocolError)});
  }
  return error;
}

Status Session::Reply(uint32_t stream_id, const HeaderBlock& headers, bool fin) {
  if (error_) {
    return FailedPrecondition(fmt::format("spdy: session failed: {}", error_->ToString()));
  }
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) {
    return NotOpen(stream_id);
  }
  if (it->second.replied || it->second.local_fin) {
    return FailedPrecondition(fmt::format("spdy: stream {} already replied to", stream_id));
  }
  Status s = writer_.Write(
      SynReply{.stream_id = stream_id, .flags = fin ? kFlagFin : uint8_t{0}, .headers = headers},
      output_);
  if (!s) {
    // A refused header block left the compression state alone; anything else broke it.
    return s.error().Is(Errc::kInvalidArgument) ? std::move(s).error() : Fail(std::move(s).error());
  }
  it->second.replied = true;
  it->second.local_fin = fin;
  CloseIfDone(it);
  return Ok();
}

Status Session::SendData(uint32_t stream_id, std::string_view data, bool fin) {
  if (error_) {
    return FailedPrecondition(fmt::format("spdy: session failed: {}", error_->ToString()));
  }
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) {
    return NotOpen(stream_id);
  }
  if (!it->second.replied) {
    return FailedPrecondition(fmt::format("spdy: stream {} not replied to yet", stream_id));
  }
  if (it->second.local_fin) {
    return FailedPrecondition(fmt::format("spdy: stream {} already finished", stream_id));
  }
  if (data.empty() && !fin) {
    return Ok();
  }
  // spdystream sends one frame per write; a large write here becomes several frames.
  do {
    const std::string_view chunk = data.substr(0, options_.max_frame_size);
    data.remove_prefix(chunk.size());
    const bool last = data.empty();
    AppendDataFrame(output_, stream_id, last && fin ? kFlagFin : uint8_t{0}, chunk);
  } while (!data.empty());
  if (fin) {
    it->second.local_fin = true;
    CloseIfDone(it);
  }
  return Ok();
}

Status Session::Reset(uint32_t stream_id, RstStatus status) {
  if (error_) {
    return FailedPrecondition(fmt::format("spdy: session failed: {}", error_->ToString()));
  }
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) {
    return NotOpen(stream_id);
  }
  streams_.erase(it);
  Write(RstStream{.stream_id = stream_id, .status = static_cast<uint32_t>(status)});
  return Ok();
}

void Session::GoAway(GoAwayStatus status) {
  if (goaway_sent_) {
    return;
  }
  goaway_sent_ = true;
  Write(spdy::GoAway{.last_good_stream_id = last_stream_id_,
                     .status = static_cast<uint32_t>(status)});
}

std::string Session::TakeOutput() { return std::exchange(output_, {}); }

}  // namespace berth::cri::streaming::spdy

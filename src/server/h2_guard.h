#pragma once
// A guard between berthd's unix socket and gRPC's HTTP/2 transport.
//
// Why: gRPC 1.51 (Debian 12) creates a call (a ~14 KB arena) for every HEADERS frame it reads and
// frees it only later, after work that waits behind the transport's reading. A client that opens
// streams and resets each at once (CVE-2023-44487, "rapid reset") keeps the transport reading,
// so berthd grew by ~14 KB a stream for as long as the client kept sending (20,000 streams:
// +400 MB). SETTINGS_MAX_CONCURRENT_STREAMS does not help: a reset stream no longer counts.
// gRPC's own fix (max_requests_per_read, counting reset-but-alive streams) came in 1.57+.
//
// How: the guard owns the listening socket, gives gRPC one end of a socketpair per client
// (grpc::AddInsecureChannelFromFd) and relays bytes on one thread, reading only HTTP/2 frame
// headers (never HPACK or payloads). Per connection it tracks the streams the server has not
// finished, and:
//   - a premature reset (RST_STREAM from the client on such a stream) takes a token from the
//     connection's bucket and from the daemon's; with one empty, that client is not read until
//     a token comes back, so gRPC is never handed more reset streams than it can retire;
//   - a client with more than `max_open_streams` unfinished streams (it ignores
//     SETTINGS_MAX_CONCURRENT_STREAMS, or floods before acknowledging it) gets
//     GOAWAY(ENHANCE_YOUR_CALM) and is disconnected.
// Well-behaved clients only pay the relay hop.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_set>

#include "common/errdefs.h"
#include "common/fs.h"

namespace grpc {
class Server;
}

namespace berth::server {

struct H2GuardLimits {
  // Streams of one connection the server has not finished; past it: GOAWAY and disconnect.
  size_t max_open_streams = 1000;
  // Premature resets, per connection and for the daemon: a steady rate and a burst. The daemon's
  // rate stays well under what gRPC retires (~10,000 reset streams/s on one core), so reset calls
  // never pile up; the bursts bound what can be in flight (~14 KB each).
  double resets_per_second = 500;
  double reset_burst = 500;
  double total_resets_per_second = 2000;
  double total_reset_burst = 1000;
};

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(double rate, double burst, Clock::time_point now)
      : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}
  // Refills up to `now`; true if a whole token is there.
  bool Ready(Clock::time_point now);
  void Take() { tokens_ -= 1; }
  // How long until `want` tokens (at most the burst) are there; 0 if they are.
  Clock::duration Until(Clock::time_point now, double want = 1) const;

 private:
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
};

// The frame accounting of one connection; no I/O. It is shown the bytes each way and says how
// many of them may go on.
class H2Meter {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Verdict {
    kForward,  // all that was returned may go; the rest is an incomplete frame header
    kWait,     // a premature reset needs a token: stop reading this client (see Until())
    kRefuse,   // the client broke a limit: GOAWAY and disconnect
  };

  H2Meter(const H2GuardLimits& limits, TokenBucket& total, Clock::time_point now)
      : limits_(limits), conn_(limits.resets_per_second, limits.reset_burst, now), total_(total) {}

  // Client bytes not yet let through (starting where the last call stopped): returns how many
  // of them, from the start, may go to the server now. A frame header goes only whole.
  size_t FromClient(std::string_view data, Clock::time_point now, Verdict* verdict);
  // Server bytes not yet let through: returns how many may go to the client (all but an
  // incomplete frame header).
  size_t FromServer(std::string_view data);
  // After kWait: when to look again. Both buckets then hold a few tokens, so a throttled client
  // is let through in small batches rather than woken for every reset.
  Clock::duration Until(Clock::time_point now) const;
  // True if what was let through to the client ends on a frame boundary (a frame may be added).
  bool ServerAtFrameBoundary() const { return server_.payload_left == 0; }

  size_t OpenStreams() const { return open_.size(); }
  uint32_t LastClientStream() const { return last_client_stream_; }
  uint64_t PrematureResets() const { return premature_resets_; }

 private:
  struct Header {
    uint32_t length;
    uint8_t type;
    uint8_t flags;
    uint32_t stream_id;
  };
  struct Direction {
    size_t preface_left = 0;  // client connection preface bytes still to see
    uint32_t payload_left = 0;
    bool opaque = false;  // not HTTP/2 (bad preface): passed through, gRPC will close
  };
  Verdict OnClientFrame(const Header& h, Clock::time_point now);
  void OnServerFrame(const Header& h);

  const H2GuardLimits& limits_;
  TokenBucket conn_;
  TokenBucket& total_;
  Direction client_{.preface_left = 24};
  Direction server_;
  std::unordered_set<uint32_t> open_;  // client streams the server has not finished
  uint32_t last_client_stream_ = 0;
  uint64_t premature_resets_ = 0;
};

// The relay: accepts on `listener` (a listening unix socket, now the guard's) and hands each
// client to `server` through a socketpair. One thread; Shutdown() joins it.
class H2Guard {
 public:
  static Result<std::unique_ptr<H2Guard>> Start(fs::UniqueFd listener, grpc::Server& server,
                                                H2GuardLimits limits = {});
  // Shutdown().
  ~H2Guard();
  H2Guard(const H2Guard&) = delete;
  H2Guard& operator=(const H2Guard&) = delete;

  // Closes the listening socket; relayed connections go on. Idempotent.
  void StopAccepting();
  // Closes the listening socket and every connection, joins the thread. Idempotent.
  void Shutdown();

 private:
  struct Impl;
  explicit H2Guard(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::server

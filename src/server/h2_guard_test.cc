#include "server/h2_guard.h"

#include <string>

#include <gtest/gtest.h>

namespace berth::server {
namespace {

using Clock = std::chrono::steady_clock;
using Verdict = H2Meter::Verdict;
using namespace std::chrono_literals;

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload = "") {
  std::string f;
  auto n = static_cast<uint32_t>(payload.size());
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  for (int shift = 24; shift >= 0; shift -= 8) f += static_cast<char>(stream >> shift);
  f += payload;
  return f;
}
std::string Headers(uint32_t stream, uint8_t flags = 0x4) {
  return Frame(1, flags, stream, "hpack");
}
std::string Rst(uint32_t stream) { return Frame(3, 0, stream, std::string("\0\0\0\x08", 4)); }
std::string Trailers(uint32_t stream) { return Frame(1, 0x5, stream, "trailers"); }

struct H2MeterTest : ::testing::Test {
  H2GuardLimits limits{.max_open_streams = 10,
                       .resets_per_second = 100,
                       .reset_burst = 3,
                       .total_resets_per_second = 1000,
                       .total_reset_burst = 100};
  Clock::time_point t0 = Clock::now();
  TokenBucket total{limits.total_resets_per_second, limits.total_reset_burst, t0};
  H2Meter meter{limits, total, t0};

  // Feeds `data` as the relay does: what is not let through is shown again with the next bytes.
  size_t Feed(std::string& pending, std::string_view more, Clock::time_point now, Verdict* v) {
    pending += more;
    size_t n = meter.FromClient(pending, now, v);
    pending.erase(0, n);
    return n;
  }
};

TEST_F(H2MeterTest, LetsAWellBehavedClientThroughAndHoldsOnlyAnIncompleteFrameHeader) {
  std::string in = std::string(kPreface) + Frame(4, 0, 0) + Headers(1) +
                   Frame(0, 1, 1, std::string("\0\0\0\0\0", 5));
  Verdict v;
  EXPECT_EQ(meter.FromClient(in, t0, &v), in.size());
  EXPECT_EQ(v, Verdict::kForward);
  EXPECT_EQ(meter.OpenStreams(), 1u);

  std::string next = Headers(3);
  EXPECT_EQ(meter.FromClient(next.substr(0, 5), t0, &v), 0u) << "a frame header goes only whole";
  EXPECT_EQ(meter.FromClient(next.substr(0, 12), t0, &v), 12u) << "then its payload as it comes";
  EXPECT_EQ(meter.FromClient(next.substr(12), t0, &v), next.size() - 12);
  EXPECT_EQ(meter.OpenStreams(), 2u);
  EXPECT_EQ(meter.LastClientStream(), 3u);

  std::string out = Frame(4, 0, 0) + Frame(1, 4, 1, "h") + Trailers(1) + Trailers(3).substr(0, 4);
  EXPECT_EQ(meter.FromServer(out), out.size() - 4);
  EXPECT_EQ(meter.OpenStreams(), 1u) << "stream 1 finished by its trailers";
}

TEST_F(H2MeterTest, PacesPrematureResetsAndResumesWhenTokensComeBack) {
  std::string pending;
  Verdict v;
  Feed(pending, std::string(kPreface) + Frame(4, 0, 0), t0, &v);
  std::string flood;
  for (uint32_t id = 1; id <= 9; id += 2) flood += Headers(id) + Rst(id);  // 5 streams
  Feed(pending, flood, t0, &v);
  EXPECT_EQ(v, Verdict::kWait) << "burst of 3 spent";
  EXPECT_EQ(meter.PrematureResets(), 3u);
  EXPECT_EQ(pending.substr(0, 13), Rst(7)) << "held before the 4th reset, its HEADERS let through";
  EXPECT_GT(meter.Until(t0), 0ns);
  Feed(pending, "", t0 + 5ms, &v);
  EXPECT_EQ(v, Verdict::kWait) << "half a token";
  Feed(pending, "", t0 + 1s, &v);
  EXPECT_EQ(v, Verdict::kForward);
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(meter.PrematureResets(), 5u);
  EXPECT_EQ(meter.OpenStreams(), 0u);
}

TEST_F(H2MeterTest, AResetAfterTheServerFinishedCostsNothing) {
  Verdict v;
  std::string in = std::string(kPreface) + Frame(4, 0, 0);
  for (uint32_t id = 1; id <= 19; id += 2) in += Headers(id);
  ASSERT_EQ(meter.FromClient(in, t0, &v), in.size());
  std::string out;
  for (uint32_t id = 1; id <= 19; id += 2) out += Trailers(id);
  meter.FromServer(out);
  std::string resets;
  for (uint32_t id = 1; id <= 19; id += 2) resets += Rst(id);
  EXPECT_EQ(meter.FromClient(resets, t0, &v), resets.size());
  EXPECT_EQ(v, Verdict::kForward);
  EXPECT_EQ(meter.PrematureResets(), 0u);
}

TEST_F(H2MeterTest, RefusesAClientPastTheOpenStreamLimit) {
  Verdict v;
  std::string in = std::string(kPreface) + Frame(4, 0, 0);
  for (uint32_t id = 1; id <= 19; id += 2) in += Headers(id);  // 10 open: at the limit
  ASSERT_EQ(meter.FromClient(in, t0, &v), in.size());
  EXPECT_EQ(v, Verdict::kForward);
  std::string more = Headers(21);
  EXPECT_EQ(meter.FromClient(more, t0, &v), 0u);
  EXPECT_EQ(v, Verdict::kRefuse);
}

TEST_F(H2MeterTest, TheDaemonBucketIsSharedByConnections) {
  H2GuardLimits tight = limits;
  tight.total_reset_burst = 2;
  TokenBucket shared(tight.total_resets_per_second, tight.total_reset_burst, t0);
  H2Meter a(tight, shared, t0);
  H2Meter b(tight, shared, t0);
  Verdict v;
  std::string in =
      std::string(kPreface) + Frame(4, 0, 0) + Headers(1) + Rst(1) + Headers(3) + Rst(3);
  EXPECT_EQ(a.FromClient(in, t0, &v), in.size());
  EXPECT_EQ(v, Verdict::kForward);
  EXPECT_LT(b.FromClient(in, t0, &v), in.size());
  EXPECT_EQ(v, Verdict::kWait) << "a took the daemon's two tokens";
}

TEST_F(H2MeterTest, PassesThroughWhatIsNotHttp2) {
  Verdict v;
  std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(100, 'x');
  EXPECT_EQ(meter.FromClient(junk, t0, &v), junk.size());
  EXPECT_EQ(v, Verdict::kForward);
}

TEST(TokenBucketTest, RefillsAtItsRateUpToItsBurst) {
  auto t0 = Clock::now();
  TokenBucket b(10, 2, t0);
  ASSERT_TRUE(b.Ready(t0));
  b.Take();
  b.Take();
  EXPECT_FALSE(b.Ready(t0));
  EXPECT_EQ(b.Until(t0), std::chrono::ceil<Clock::duration>(100ms));
  EXPECT_TRUE(b.Ready(t0 + 100ms));
  EXPECT_TRUE(b.Ready(t0 + 1h));
  b.Take();
  b.Take();
  EXPECT_FALSE(b.Ready(t0 + 1h)) << "no more than the burst";
}

}  // namespace
}  // namespace berth::server

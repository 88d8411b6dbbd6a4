#include <limits>

#include "common/timeutil.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

TEST(TimeTest, FormatsLikeGoRfc3339Nano) {
  EXPECT_EQ(FormatRfc3339Nano(FromUnixNanos(0)), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339Nano(FromUnixNanos(1'500'000'000)), "1970-01-01T00:00:01.5Z");
  EXPECT_EQ(FormatRfc3339Nano(FromUnixNanos(1'795'000'000'000'000'123)),
            "2026-11-18T11:06:40.000000123Z");
}

TEST(TimeTest, ParsesWhatItFormats) {
  for (int64_t ns : {int64_t{0}, int64_t{1'500'000'000}, int64_t{1'795'000'000'000'000'123}}) {
    auto t = ParseRfc3339(FormatRfc3339Nano(FromUnixNanos(ns)));
    ASSERT_TRUE(t);
    EXPECT_EQ(UnixNanos(*t), ns);
  }
}

TEST(TimeTest, ParsesOffsets) {
  auto t = ParseRfc3339("2026-01-01T02:00:00+02:00");
  ASSERT_TRUE(t);
  EXPECT_EQ(FormatRfc3339Nano(*t), "2026-01-01T00:00:00Z");
}

TEST(TimeTest, RejectsGarbage) {
  for (const char* s : {"", "yesterday", "2026-01-01", "2026-01-01T00:00:00",
                        "2026-01-01T00:00:00Zjunk", "2026-01-01T00:00:00.Z"}) {
    auto t = ParseRfc3339(s);
    ASSERT_FALSE(t) << s;
    EXPECT_TRUE(t.error().Is(Errc::kInvalidArgument));
  }
}

TEST(TimeTest, ProtoTimestampRoundTripAndRange) {
  Timestamp t = FromUnixNanos(-1'500'000'000);  // 1.5 s before the epoch
  ProtoTime p = ToProtoTimestamp(t);
  EXPECT_EQ(p.seconds, -2);
  EXPECT_EQ(p.nanos, 500'000'000);
  EXPECT_EQ(FromProtoTimestamp(p.seconds, p.nanos), t);
  // Go's zero time (0001-01-01T00:00:00Z) is "not set": the zero Timestamp, no overflow.
  EXPECT_EQ(FromProtoTimestamp(-62135596800, 0), Timestamp{});
  // The largest seconds in range with nanos past a second's worth overflowed before (UB under
  // UBSan); nanos outside 0..999999999 are no valid Timestamp.
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
  EXPECT_EQ(FromProtoTimestamp(kMaxSeconds, std::numeric_limits<int32_t>::max()), Timestamp{});
  EXPECT_EQ(FromProtoTimestamp(0, -1), Timestamp{});
}

// What the CLI prints for a server's timestamps: the exact value, any year, never overflowing.
TEST(TimeTest, FormatsAnyProtoTimestamp) {
  EXPECT_EQ(FormatRfc3339Nano(ProtoTime{.seconds = -62135596800}), "0001-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339Nano(ProtoTime{.seconds = 1, .nanos = 500'000'000}),
            "1970-01-01T00:00:01.5Z");
  EXPECT_EQ(FormatRfc3339Nano(ProtoTime{.seconds = 253402300799}), "9999-12-31T23:59:59Z");
  EXPECT_EQ(FormatRfc3339Nano(ProtoTime{.seconds = 0, .nanos = -5}), "1970-01-01T00:00:00Z");
  (void)FormatRfc3339Nano(ProtoTime{.seconds = std::numeric_limits<int64_t>::max()});
}

}  // namespace
}  // namespace berth

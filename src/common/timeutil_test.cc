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
}

}  // namespace
}  // namespace berth

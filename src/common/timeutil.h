#pragma once
// Wall-clock timestamps as containerd stores and prints them (UTC, nanoseconds).
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/errdefs.h"

namespace berth {

using Clock = std::chrono::system_clock;
using Timestamp = std::chrono::time_point<Clock, std::chrono::nanoseconds>;

Timestamp Now();
// "2006-01-02T15:04:05.999999999Z" (Go's RFC3339Nano: trailing zeros of the fraction dropped).
std::string FormatRfc3339Nano(Timestamp t);
// Accepts RFC 3339 with optional fraction and a Z or +hh:mm offset.
Result<Timestamp> ParseRfc3339(std::string_view text);

// Go duration text ("10s", "1m30s", "500ms", "0"); InvalidArgument otherwise.
Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

int64_t UnixNanos(Timestamp t);
Timestamp FromUnixNanos(int64_t nanos);
// google.protobuf.Timestamp fields <-> Timestamp. A value outside int64 nanoseconds (before
// 1678, after 2262; Go's zero time 0001-01-01, "not set", among them) becomes the zero
// Timestamp instead of overflowing.
Timestamp FromProtoTimestamp(int64_t seconds, int32_t nanos);
struct ProtoTime {
  int64_t seconds = 0;
  int32_t nanos = 0;  // 0..999999999, also for times before 1970
};
ProtoTime ToProtoTimestamp(Timestamp t);
// FormatRfc3339Nano of a google.protobuf.Timestamp's exact value, any year (Go's zero time is
// "0001-01-01T00:00:00Z"); nanos outside 0..999999999 print as 0.
std::string FormatRfc3339Nano(ProtoTime t);
// Go's time.RFC3339 in the local zone: "2006-01-02T15:04:05Z07:00" ("Z" for a zero offset).
std::string FormatRfc3339Local(int64_t unix_seconds);

}  // namespace berth

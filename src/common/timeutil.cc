#include "common/timeutil.h"

#include <ctime>
#include <limits>
#include <mutex>
#include <string>

#include <fmt/format.h>

namespace berth {

Timestamp Now() { return std::chrono::time_point_cast<std::chrono::nanoseconds>(Clock::now()); }

int64_t UnixNanos(Timestamp t) { return t.time_since_epoch().count(); }

Timestamp FromUnixNanos(int64_t nanos) { return Timestamp(std::chrono::nanoseconds(nanos)); }

Timestamp FromProtoTimestamp(int64_t seconds, int32_t nanos) {
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
  if (seconds < -kMaxSeconds || seconds > kMaxSeconds) return Timestamp{};
  if (nanos < 0 || nanos > 999'999'999) return Timestamp{};  // not a valid Timestamp either
  return FromUnixNanos(seconds * 1'000'000'000 + nanos);
}

ProtoTime ToProtoTimestamp(Timestamp t) {
  int64_t ns = UnixNanos(t);
  int64_t secs = ns / 1'000'000'000;
  int64_t frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    secs -= 1;
  }
  return {.seconds = secs, .nanos = static_cast<int32_t>(frac)};
}

std::string FormatRfc3339Nano(Timestamp t) { return FormatRfc3339Nano(ToProtoTimestamp(t)); }

std::string FormatRfc3339Nano(ProtoTime p) {
  const int64_t secs = p.seconds;
  const int64_t frac = p.nanos < 0 || p.nanos > 999'999'999 ? 0 : p.nanos;
  time_t tt = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (frac != 0) {
    std::string f = fmt::format("{:09}", frac);
    while (!f.empty() && f.back() == '0') {
      f.pop_back();
    }
    out += '.';
    out += f;
  }
  out += 'Z';
  return out;
}

Result<Timestamp> ParseRfc3339(std::string_view text) {
  auto bad = [&] { return InvalidArgument("invalid RFC 3339 time \"" + std::string(text) + "\""); };
  struct tm tm {};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) {
    return bad();
  }
  int64_t frac_ns = 0;
  if (*end == '.') {
    ++end;
    int digits = 0;
    while (*end >= '0' && *end <= '9') {
      if (digits < 9) {
        frac_ns = frac_ns * 10 + (*end - '0');
      }
      ++digits;
      ++end;
    }
    if (digits == 0) {
      return bad();
    }
    for (int i = digits; i < 9; ++i) {
      frac_ns *= 10;
    }
  }
  int64_t offset = 0;
  if (*end == 'Z' || *end == 'z') {
    ++end;
  } else if (*end == '+' || *end == '-') {
    int sign = *end == '-' ? -1 : 1;
    int hh = 0;
    int mm = 0;
    if (std::sscanf(end + 1, "%2d:%2d", &hh, &mm) != 2) {
      return bad();
    }
    offset = sign * (hh * 3600 + mm * 60);
    end += 6;
  } else {
    return bad();
  }
  if (*end != '\0') {
    return bad();
  }
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset;
  return FromUnixNanos(secs * 1'000'000'000 + frac_ns);
}

Result<std::chrono::nanoseconds> ParseGoDuration(std::string_view text) {
  if (text == "0") return std::chrono::nanoseconds(0);
  auto bad = [&] {
    return InvalidArgument(fmt::format("invalid duration {:?} (use e.g. 10s, 1m30s, 500ms)", text));
  };
  if (text.empty()) return bad();
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
    if (start == i) return bad();
    double value = std::stod(std::string(text.substr(start, i - start)));
    size_t ustart = i;
    while (i < text.size() && !(text[i] >= '0' && text[i] <= '9') && text[i] != '.') ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    double scale;
    if (unit == "ns")
      scale = 1;
    else if (unit == "us" || unit == "µs")
      scale = 1e3;
    else if (unit == "ms")
      scale = 1e6;
    else if (unit == "s")
      scale = 1e9;
    else if (unit == "m")
      scale = 60e9;
    else if (unit == "h")
      scale = 3600e9;
    else
      return bad();
    total += value * scale;
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

std::string FormatRfc3339Local(int64_t unix_seconds) {
  static std::once_flag tz_once;
  std::call_once(tz_once, [] { tzset(); });
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  localtime_r(&t, &tm);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  long offset = tm.tm_gmtoff;
  if (offset == 0) return out + "Z";
  char sign = offset < 0 ? '-' : '+';
  if (offset < 0) offset = -offset;
  return out + fmt::format("{}{:02}:{:02}", sign, offset / 3600, (offset % 3600) / 60);
}

}  // namespace berth

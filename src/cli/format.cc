#include "cli/format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/tabwriter.h"
#include "common/digest.h"

namespace berth::cli {

namespace {

struct Civil {
  int64_t year;
  int month;
  int day;
  int hour;
  int minute;
  int second;
};

// Proleptic Gregorian date of a Unix time (any range; H. Hinnant's civil_from_days).
Civil CivilFromUnix(int64_t secs) {
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days -= 1;
  }
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return {year,
          month,
          day,
          static_cast<int>(sod / 3600),
          static_cast<int>(sod % 3600 / 60),
          static_cast<int>(sod % 60)};
}

// Go's ".999999999": the fraction without trailing zeros, nothing when zero.
std::string Fraction(int32_t nanos) {
  if (nanos == 0) return "";
  std::string f = fmt::format(".{:09}", nanos);
  while (f.back() == '0') f.pop_back();
  return f;
}

std::string Year(int64_t year) {
  return year < 0 ? fmt::format("-{:04}", -year) : fmt::format("{:04}", year);
}

}  // namespace

// time.Time.String() of a UTC time: "2006-01-02 15:04:05.999999999 +0000 UTC".
std::string GoTimeString(int64_t secs, int32_t nanos) {
  Civil c = CivilFromUnix(secs);
  return fmt::format("{}-{:02}-{:02} {:02}:{:02}:{:02}{} +0000 UTC", Year(c.year), c.month, c.day,
                     c.hour, c.minute, c.second, Fraction(nanos));
}

std::string GoTimeString(std::chrono::system_clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  int64_t secs = ns / 1'000'000'000;
  int64_t rem = ns % 1'000'000'000;
  if (rem < 0) {
    rem += 1'000'000'000;
    secs -= 1;
  }
  return GoTimeString(secs, static_cast<int32_t>(rem));
}

// time.Time.MarshalJSON of a UTC time: RFC 3339 with nanoseconds; years outside [0, 9999] are an
// error in Go.
Result<std::string> GoTimeJson(int64_t secs, int32_t nanos) {
  Civil c = CivilFromUnix(secs);
  if (c.year < 0 || c.year > 9999) {
    return InvalidArgument("Time.MarshalJSON: year outside of range [0,9999]");
  }
  return fmt::format("\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}Z\"", c.year, c.month, c.day, c.hour,
                     c.minute, c.second, Fraction(nanos));
}

// ---- Text formatting ----

namespace {

std::string CFormat(const char* format, double value, std::string_view unit) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, value);
  return std::string(buf) + std::string(unit);
}

}  // namespace

std::string HumanSize(double size) {
  static constexpr std::string_view kUnits[] = {"B",  "kB", "MB", "GB", "TB",
                                                "PB", "EB", "ZB", "YB"};
  size_t i = 0;
  while (size >= 1000.0 && i + 1 < std::size(kUnits)) {
    size /= 1000.0;
    ++i;
  }
  return CFormat("%.4g", size, kUnits[i]);
}

std::string ProgressBytes(int64_t bytes) {
  static constexpr std::string_view kUnits[] = {"B",   "KiB", "MiB", "GiB", "TiB",
                                                "PiB", "EiB", "ZiB", "YiB"};
  double size = static_cast<double>(bytes);
  size_t i = 0;
  while (size >= 1024.0 && i + 1 < std::size(kUnits)) {
    size /= 1024.0;
    ++i;
  }
  return CFormat("%02.1f ", size, kUnits[i]);
}

std::string HumanDuration(std::chrono::nanoseconds d) {
  double ns = static_cast<double>(d.count());
  auto seconds = static_cast<int64_t>(ns / 1e9);
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return fmt::format("{} seconds", seconds);
  auto minutes = static_cast<int64_t>(ns / 60e9);
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return fmt::format("{} minutes", minutes);
  double hours_f = ns / 3600e9;
  auto hours = static_cast<int64_t>(hours_f + 0.5);
  if (hours == 1) return "About an hour";
  if (hours < 48) return fmt::format("{} hours", hours);
  if (hours < 24 * 7 * 2) return fmt::format("{} days", hours / 24);
  if (hours < 24 * 30 * 2) return fmt::format("{} weeks", hours / 24 / 7);
  if (hours < 24 * 365 * 2) return fmt::format("{} months", hours / 24 / 30);
  return fmt::format("{} years", static_cast<int64_t>(hours_f) / 24 / 365);
}

std::string JoinLabels(const std::map<std::string, std::string>& labels, std::string_view empty) {
  if (labels.empty()) return std::string(empty);
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ',';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// ^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$
bool MatchesDigestGrammar(std::string_view s) {
  size_t i = 0;
  auto component = [&] {
    size_t start = i;
    while (i < s.size() && IsLowerAlnum(s[i])) ++i;
    return i > start;
  };
  if (!component()) return false;
  while (i < s.size() && (s[i] == '.' || s[i] == '+' || s[i] == '_' || s[i] == '-')) {
    ++i;
    if (!component()) return false;
  }
  if (i >= s.size() || s[i] != ':') return false;
  ++i;
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '=' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Status ValidateDigest(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Unknown("invalid checksum digest format");
  }
  std::string_view alg = text.substr(0, colon);
  std::string_view encoded = text.substr(colon + 1);
  size_t hex_len = 0;
  if (alg == "sha256") {
    hex_len = 64;
  } else if (alg == "sha384") {
    hex_len = 96;
  } else if (alg == "sha512") {
    hex_len = 128;
  } else {
    if (!MatchesDigestGrammar(text)) return Unknown("invalid checksum digest format");
    return Unknown("unsupported digest algorithm");
  }
  if (encoded.size() != hex_len) return Unknown("invalid checksum digest length");
  for (char c : encoded) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return Unknown("invalid checksum digest format");
    }
  }
  return Ok();
}

}  // namespace berth::cli

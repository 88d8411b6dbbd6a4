#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "common/timeutil.h"

namespace berth::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};
std::mutex g_write_mu;

}  // namespace

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warning";
    case Level::kError:
      return "error";
    case Level::kFatal:
      return "fatal";
    case Level::kPanic:
      return "panic";
  }
  return "info";
}

namespace {

bool NeedsQuoting(std::string_view v) {
  if (v.empty()) {
    return true;
  }
  for (char c : v) {
    if (c <= ' ' || c == '=' || c == '"' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f) {
      return true;
    }
  }
  return false;
}

void AppendValue(std::string& out, std::string_view v) {
  if (!NeedsQuoting(v)) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  out += '"';
}

}  // namespace

Result<Level> ParseLevel(std::string_view name) {
  if (name == "trace") return Level::kTrace;
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "fatal") return Level::kFatal;
  if (name == "panic") return Level::kPanic;
  return InvalidArgument("not a valid log level: \"" + std::string(name) +
                         "\" (use trace, debug, info, warn, error, fatal or panic)");
}

void SetLevel(Level level) { g_level.store(level); }
Level GetLevel() { return g_level.load(); }
bool Enabled(Level level) { return level >= g_level.load(); }

Entry Entry::With(std::string_view key, std::string_view value) const {
  Entry copy = *this;
  copy.fields_.emplace_back(std::string(key), std::string(value));
  return copy;
}

Entry Entry::With(std::string_view key, long long value) const {
  return With(key, std::to_string(value));
}

std::string FormatLine(std::string_view time, Level level, std::string_view msg,
                       const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out = "time=\"";
  out += time;
  out += "\" level=";
  out += LevelName(level);
  out += " msg=";
  AppendValue(out, msg);
  for (const auto& [k, v] : fields) {
    out += ' ';
    out += k;
    out += '=';
    AppendValue(out, v);
  }
  out += '\n';
  return out;
}

void Entry::Write(Level level, std::string_view msg) const {
  if (!Enabled(level)) {
    return;
  }
  std::string line = FormatLine(FormatRfc3339Nano(Now()), level, msg, fields_);
  std::lock_guard lock(g_write_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace berth::log

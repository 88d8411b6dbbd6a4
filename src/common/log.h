#pragma once
// Structured logging in logfmt, as containerd's logrus prints it:
//   time="2026-11-23T10:00:00.000000000Z" level=info msg="shim started" id=web namespace=default
// Log an error once, where it is handled. info = lifecycle, debug = per request, warn = degraded.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/errdefs.h"

namespace berth::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kFatal, kPanic };

// Parses containerd's level names (trace, debug, info, warn/warning, error, fatal, panic).
Result<Level> ParseLevel(std::string_view name);
void SetLevel(Level level);
Level GetLevel();
// logrus's name of a level: "info", "warning", ...
std::string_view LevelName(Level level);
bool Enabled(Level level);

// A log entry under construction: fields are added with With(), then one of the level methods
// writes the line to stderr.
class Entry {
 public:
  Entry() = default;
  Entry With(std::string_view key, std::string_view value) const;
  Entry With(std::string_view key, long long value) const;
  Entry WithError(const Error& error) const { return With("error", error.ToString()); }

  void Trace(std::string_view msg) const { Write(Level::kTrace, msg); }
  void Debug(std::string_view msg) const { Write(Level::kDebug, msg); }
  void Info(std::string_view msg) const { Write(Level::kInfo, msg); }
  void Warn(std::string_view msg) const { Write(Level::kWarn, msg); }
  void Error(std::string_view msg) const { Write(Level::kError, msg); }

 private:
  void Write(Level level, std::string_view msg) const;
  std::vector<std::pair<std::string, std::string>> fields_;
};

// The root entry (no fields).
inline Entry L() { return {}; }

// Formats one logfmt line (exposed for tests).
std::string FormatLine(std::string_view time, Level level, std::string_view msg,
                       const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace berth::log

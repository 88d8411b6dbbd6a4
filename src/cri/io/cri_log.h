#pragma once
// The CRI container log format (containerd pkg/cri/io/logger.go, cri-api runtime/v1
// constants.go), as a pure encoder: output chunks of one stream in, whole log records out.
//
// One record per line:  <timestamp> <stream> <tag> <content>\n
//   timestamp  the time the record is made, Go's RFC3339Nano in UTC
//              ("2016-10-06T00:17:09.669794202Z"; trailing zeros of the fraction dropped, no
//              fraction at all on a whole second)
//   stream     "stdout" or "stderr"
//   tag        F = a whole line or the last piece of one, P = a partial piece
//   content    the line without its '\n' and without a '\r' right before that '\n'
// A line longer than the maximum line size becomes P records of exactly that many bytes and an
// F record with the rest (a line of exactly the maximum is one F record); an empty line is an F
// record with empty content. Output that ends without a newline is flushed as P records at the
// end of the stream (Flush). No line limit when the maximum is <= 0.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/timeutil.h"

namespace berth::cri::io {

enum class StreamType { kStdout, kStderr };

// "stdout" or "stderr".
std::string_view StreamName(StreamType stream);

// max_container_log_line_size's default.
inline constexpr int64_t kDefaultMaxLineSize = int64_t{16} * 1024;

// Where record timestamps come from (injectable for tests); empty = berth::Now().
using TimeSource = std::function<Timestamp()>;

// Turns one stream's output into CRI log records. Holds the unterminated tail of the output
// between calls. Not thread-safe: one per stream, fed in order.
class CriLineEncoder {
 public:
  // `max_line_size` <= 0: lines are never split.
  CriLineEncoder(StreamType stream, int64_t max_line_size, TimeSource now = nullptr);

  // Appends to `out` every record `chunk` completes: an F record per '\n' (with whatever was
  // buffered before it), and P records of exactly max_line_size bytes while the buffered,
  // unterminated line is longer than that (a trailing '\r' is not counted: it may be the start
  // of "\r\n"). The rest stays buffered.
  void Encode(std::string_view chunk, std::string& out);
  // End of the stream: appends the buffered unterminated output as P records (split as above,
  // '\r' kept); nothing when nothing is buffered.
  void Flush(std::string& out);
  // Bytes buffered (an unterminated line).
  size_t Buffered() const { return pending_.size(); }

 private:
  void Emit(char tag, std::string_view content, std::string& out);
  // Emits P records while the buffered line (minus a trailing '\r' unless `at_end`) exceeds the
  // limit.
  void SplitPending(bool at_end, std::string& out);

  StreamType stream_;
  size_t max_;  // 0 = unlimited
  TimeSource now_;
  std::string pending_;
};

}  // namespace berth::cri::io

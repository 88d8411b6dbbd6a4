#include "cri/io/cri_log.h"

#include <utility>

namespace berth::cri::io {

std::string_view StreamName(StreamType stream) {
  return stream == StreamType::kStdout ? "stdout" : "stderr";
}

CriLineEncoder::CriLineEncoder(StreamType stream, int64_t max_line_size, TimeSource now)
    : stream_(stream),
      max_(max_line_size > 0 ? static_cast<size_t>(max_line_size) : 0),
      now_(std::move(now)) {}

void CriLineEncoder::Emit(char tag, std::string_view content, std::string& out) {
  // Each record gets its own time, as containerd takes time.Now() per record.
  out += FormatRfc3339Nano(now_ ? now_() : Now());
  out += ' ';
  out += StreamName(stream_);
  out += ' ';
  out += tag;
  out += ' ';
  out += content;
  out += '\n';
}

void CriLineEncoder::SplitPending(bool at_end, std::string& out) {
  if (max_ == 0) {
    return;
  }
  // containerd reads with bufio and puts a '\r' that ends a full buffer back, so it is not
  // counted until the next byte shows whether "\r\n" follows (logger.go readLine).
  size_t countable = pending_.size();
  if (!at_end && countable > 0 && pending_.back() == '\r') {
    --countable;
  }
  size_t off = 0;
  while (countable - off > max_) {
    Emit('P', std::string_view(pending_).substr(off, max_), out);
    off += max_;
  }
  if (off > 0) {
    pending_.erase(0, off);
  }
}

void CriLineEncoder::Encode(std::string_view chunk, std::string& out) {
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    if (nl == std::string_view::npos) {
      pending_.append(chunk);
      SplitPending(false, out);
      return;
    }
    std::string_view line;
    if (pending_.empty()) {
      line = chunk.substr(0, nl);  // the common case: no copy
    } else {
      pending_.append(chunk.substr(0, nl));
      line = pending_;
    }
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (max_ > 0) {
      while (line.size() > max_) {
        Emit('P', line.substr(0, max_), out);
        line.remove_prefix(max_);
      }
    }
    Emit('F', line, out);
    pending_.clear();
    chunk.remove_prefix(nl + 1);
  }
}

void CriLineEncoder::Flush(std::string& out) {
  SplitPending(true, out);
  if (!pending_.empty()) {
    Emit('P', pending_, out);
    pending_.clear();
  }
}

}  // namespace berth::cri::io

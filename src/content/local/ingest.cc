#include "content/local/ingest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>

#include <fmt/format.h>

#include "common/digest.h"
#include "common/fs.h"

namespace berth::content::local {

std::string IngestDirName(std::string_view ref) {
  return std::string(Digest::FromBytes(ref).Encoded());
}

bool IsTempName(std::string_view name) {
  if (name.ends_with(kTempSuffix)) {
    return true;
  }
  auto pos = name.rfind(".tmp-");
  return pos != std::string_view::npos && pos > 0;
}

Timestamp FromTimespec(const struct timespec& ts) {
  return FromUnixNanos(static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec);
}

berth::Status WriteFileSynced(const std::string& path, std::string_view data, bool sync) {
  std::string tmp = path + std::string(kTempSuffix);
  {
    fs::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
    if (!fd.Valid()) {
      return ErrnoError(errno, "create tmp file " + tmp);
    }
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd.Get(), data.data() + off, data.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::unlink(tmp.c_str());
        return ErrnoError(err, "write tmp file " + tmp);
      }
      off += static_cast<size_t>(n);
    }
    if (sync && ::fsync(fd.Get()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoError(err, "sync tmp file " + tmp);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, "rename tmp file " + tmp);
  }
  return Ok();
}

berth::Status WriteTimestampFile(const std::string& path, Timestamp t) {
  return WriteFileSynced(path, FormatRfc3339Nano(t));
}

Result<Timestamp> ReadTimestampFile(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path));
  auto t = ParseRfc3339(text);
  if (!t) {
    return InvalidArgument(
        fmt::format("could not parse timestamp file {}: {}", path, t.error().What()));
  }
  return *t;
}

int64_t ReadTotal(const std::string& dir) {
  auto text = fs::ReadFile(dir + "/" + std::string(kTotalFile));
  if (!text) {
    return 0;
  }
  int64_t total = 0;
  const char* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, total);
  if (ec != std::errc() || ptr != end || total < 0) {
    return 0;  // corrupted: treat the total as unknown, as containerd does
  }
  return total;
}

Result<content::Status> ReadIngestStatus(const std::string& dir) {
  std::string data = dir + "/" + std::string(kDataFile);
  struct stat st {};
  if (::stat(data.c_str(), &st) != 0) {
    return ErrnoError(errno, "stat " + data);
  }
  BERTH_ASSIGN_OR_RETURN(std::string ref, fs::ReadFile(dir + "/" + std::string(kRefFile)));
  auto started_at = ReadTimestampFile(dir + "/" + std::string(kStartedAtFile));
  if (!started_at) {
    return std::move(started_at).error().Wrap("could not read startedat");
  }
  auto updated_at = ReadTimestampFile(dir + "/" + std::string(kUpdatedAtFile));
  if (!updated_at) {
    return std::move(updated_at).error().Wrap("could not read updatedat");
  }
  // updatedat is only written on Close: the data's mtime may be more recent.
  Timestamp mtime = FromTimespec(st.st_mtim);
  return content::Status{
      .ref = std::move(ref),
      .offset = static_cast<int64_t>(st.st_size),
      .total = ReadTotal(dir),
      .started_at = *started_at,
      .updated_at = mtime > *updated_at ? mtime : *updated_at,
  };
}

}  // namespace berth::content::local

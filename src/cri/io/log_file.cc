#include "cri/io/log_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace berth::cri::io {
namespace {

Result<fs::UniqueFd> OpenLog(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    BERTH_TRY(fs::MkdirAll(path.substr(0, slash), 0755));
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return ErrnoError(errno, "failed to open log file \"" + path + "\"");
  }
  return fs::UniqueFd(fd);
}

}  // namespace

Result<std::shared_ptr<LogFile>> LogFile::Open(std::string path) {
  if (path.empty()) {
    return InvalidArgument("empty log path");
  }
  BERTH_ASSIGN_OR_RETURN(fs::UniqueFd fd, OpenLog(path));
  return std::shared_ptr<LogFile>(new LogFile(std::move(path), std::move(fd)));
}

Status LogFile::Reopen() {
  // Open outside the lock: writers keep going to the old file meanwhile.
  BERTH_ASSIGN_OR_RETURN(fs::UniqueFd fresh, OpenLog(path_));
  fs::UniqueFd old;
  {
    std::lock_guard lock(mu_);
    if (!fd_.Valid()) {
      return FailedPrecondition("log file \"" + path_ + "\" is closed");
    }
    old = std::exchange(fd_, std::move(fresh));
  }
  return Ok();  // `old` closes here, after the swap
}

Status LogFile::Write(std::string_view records) {
  std::lock_guard lock(mu_);
  if (!fd_.Valid()) {
    return FailedPrecondition("log file \"" + path_ + "\" is closed");
  }
  while (!records.empty()) {
    ssize_t n = ::write(fd_.Get(), records.data(), records.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError(errno, "failed to write log file \"" + path_ + "\"");
    }
    records.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

void LogFile::Close() {
  fs::UniqueFd old;
  std::lock_guard lock(mu_);
  old = std::move(fd_);
}

}  // namespace berth::cri::io

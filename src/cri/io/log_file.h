#pragma once
// A container's CRI log file (containerd pkg/cri/server/container_start.go createContainerLoggers,
// container_log_reopen.go): one file shared by the container's stdout and stderr, whole records
// serialised, reopened in place when the kubelet rotates it.
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/errdefs.h"
#include "common/fs.h"

namespace berth::cri::io {

// Thread-safe. Shared (shared_ptr) by the CRI container record, which calls Reopen(), and the
// container's ContainerIo, which writes; the file is closed when the last owner lets go or on
// Close().
class LogFile {
 public:
  // Creates missing parent directories (0755) and opens `path` O_WRONLY|O_CREAT|O_APPEND (0640
  // when created). Errors: ErrnoError classes of mkdir/open (NotFound, PermissionDenied, ...).
  static Result<std::shared_ptr<LogFile>> Open(std::string path);

  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  const std::string& Path() const { return path_; }

  // ReopenContainerLog: opens Path() again as Open() does (the kubelet has renamed the old file
  // away), swaps it in and closes the old descriptor. Every record written before this returns
  // is complete in the old file, every record written after it in the new one; none is torn or
  // lost. On error the old file stays in use. FailedPrecondition after Close().
  Status Reopen();

  // Appends `records` (one or more whole records) with one write under the lock, so records of
  // concurrent writers never interleave. Errors: ErrnoError of write(2) (ENOSPC, EIO -> Unknown;
  // what was written before the error stays), FailedPrecondition after Close().
  Status Write(std::string_view records);

  // Closes the file; later writes fail. Idempotent.
  void Close();

 private:
  LogFile(std::string path, fs::UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  const std::string path_;
  std::mutex mu_;
  fs::UniqueFd fd_;  // guarded by mu_; invalid once closed
};

}  // namespace berth::cri::io

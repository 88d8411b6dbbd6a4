#pragma once
// Files and directories with owners: every acquire has a release.
#include <string>
#include <string_view>
#include <utility>

#include "common/errdefs.h"

namespace berth::fs {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int Get() const { return fd_; }
  bool Valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A directory created under `parent` (default $TMPDIR or /tmp) and removed recursively on
// destruction unless Release()d.
class TempDir {
 public:
  static Result<TempDir> Create(std::string_view prefix = "berth-", std::string_view parent = "");
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& Path() const { return path_; }
  std::string Release() { return std::exchange(path_, {}); }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// mkdir -p with `mode` for directories it creates; existing ones are left as they are.
Status MkdirAll(const std::string& path, unsigned mode);
// Ensures `path` exists as a directory with exactly `mode`.
Status EnsureDir(const std::string& path, unsigned mode);
// rm -rf that does not cross mount points (fails on them instead).
Status RemoveAll(const std::string& path);
Result<std::string> ReadFile(const std::string& path);
// Writes `data` to `path` atomically: temp file in the same dir, fsync, rename, fsync dir.
// For what must survive a power loss (stored data: content, configuration, identities).
Status WriteFileAtomic(const std::string& path, std::string_view data, unsigned mode = 0644);
// Replaces `path` with `data`: temp file in the same dir, rename; no fsync. For runtime state
// that describes processes (bundles, shim addresses, container status, CNI results, a pod's
// hostname/hosts/resolv.conf): a crash of the daemon leaves the old or the new file, never a
// torn one (the page cache survives it); only a power loss can lose the file, and with it the
// processes it describes. containerd writes these without fsync too.
Status ReplaceFile(const std::string& path, std::string_view data, unsigned mode = 0644);

// An exclusive advisory lock (flock) on a file; released when destroyed or when the process dies,
// so a kill -9 never leaves it held.
class FileLock {
 public:
  // Unavailable if another process holds it.
  static Result<FileLock> TryAcquire(const std::string& path);
  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace berth::fs

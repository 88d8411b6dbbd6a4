#include "common/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace berth::fs {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    Reset(other.Release());
  }
  return *this;
}

UniqueFd::~UniqueFd() { Reset(); }

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
}

Result<TempDir> TempDir::Create(std::string_view prefix, std::string_view parent) {
  std::string base(parent);
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  }
  std::string tmpl = base + "/" + std::string(prefix) + "XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return ErrnoError(errno, "create temporary directory in " + base);
  }
  return TempDir(std::string(buf.data()));
}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) {
      (void)RemoveAll(path_);
    }
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

TempDir::~TempDir() {
  if (!path_.empty()) {
    (void)RemoveAll(path_);
  }
}

Status MkdirAll(const std::string& path, unsigned mode) {
  if (path.empty()) {
    return InvalidArgument("mkdir: empty path");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return FailedPrecondition(fmt::format("mkdir {}: exists and is not a directory", path));
    }
    return Ok();
  }
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    BERTH_TRY(MkdirAll(path.substr(0, slash), mode));
  }
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "mkdir " + path);
  }
  return Ok();
}

Status EnsureDir(const std::string& path, unsigned mode) {
  BERTH_TRY(MkdirAll(path, mode));
  if (::chmod(path.c_str(), mode) != 0) {
    return ErrnoError(errno, "chmod " + path);
  }
  return Ok();
}

namespace {

Status RemoveAt(int dirfd, const char* name, dev_t dev) {
  struct stat st {};
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? Ok() : ErrnoError(errno, fmt::format("stat {}", name));
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != dev) {
      return FailedPrecondition(fmt::format("remove {}: is a mount point", name));
    }
    int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      return ErrnoError(errno, fmt::format("open {}", name));
    }
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      ::close(fd);
      return ErrnoError(errno, fmt::format("opendir {}", name));
    }
    std::vector<std::string> names;
    while (struct dirent* de = ::readdir(dir)) {
      if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) {
        names.emplace_back(de->d_name);
      }
    }
    Status status = Ok();
    for (const auto& n : names) {
      if (auto s = RemoveAt(::dirfd(dir), n.c_str(), dev); !s && status) {
        status = std::move(s).error().Wrap(name);
      }
    }
    ::closedir(dir);
    BERTH_TRY(status);
    if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return ErrnoError(errno, fmt::format("rmdir {}", name));
    }
    return Ok();
  }
  if (::unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
    return ErrnoError(errno, fmt::format("unlink {}", name));
  }
  return Ok();
}

}  // namespace

Status RemoveAll(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? Ok() : ErrnoError(errno, "stat " + path);
  }
  return RemoveAt(AT_FDCWD, path.c_str(), st.st_dev);
}

Result<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.Valid()) {
    return ErrnoError(errno, "open " + path);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.Get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

namespace {

Status WriteAndRename(const std::string& path, std::string_view data, unsigned mode, bool sync) {
  auto slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  // Unique per call: two threads replacing the same file never share a temp file.
  static std::atomic<uint64_t> seq{0};
  std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(seq++);
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd.Valid()) {
      return ErrnoError(errno, "create " + tmp);
    }
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd.Get(), data.data() + off, data.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::unlink(tmp.c_str());
        return ErrnoError(err, "write " + tmp);
      }
      off += static_cast<size_t>(n);
    }
    if (sync && ::fsync(fd.Get()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoError(err, "fsync " + tmp);
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, "rename " + tmp + " to " + path);
  }
  if (sync) {
    UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.Valid()) {
      (void)::fsync(dfd.Get());
    }
  }
  return Ok();
}

}  // namespace

Status WriteFileAtomic(const std::string& path, std::string_view data, unsigned mode) {
  return WriteAndRename(path, data, mode, /*sync=*/true);
}

Status ReplaceFile(const std::string& path, std::string_view data, unsigned mode) {
  return WriteAndRename(path, data, mode, /*sync=*/false);
}

Result<FileLock> FileLock::TryAcquire(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.Valid()) {
    return ErrnoError(errno, "open lock file " + path);
  }
  if (::flock(fd.Get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Unavailable("lock " + path + " is held by another process");
    }
    return ErrnoError(errno, "lock " + path);
  }
  // Record the holder's pid for people reading the file.
  std::string pid = std::to_string(::getpid()) + "\n";
  (void)::ftruncate(fd.Get(), 0);
  (void)::pwrite(fd.Get(), pid.data(), pid.size(), 0);
  return FileLock(std::move(fd));
}

}  // namespace berth::fs

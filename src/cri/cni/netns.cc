#include "cri/cni/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "common/fs.h"

namespace berth::cri::cni {
namespace {

constexpr long kNsfsMagic = 0x6e736673;  // NSFS_MAGIC, linux/magic.h

// Runs fn on a fresh thread and waits for it. Namespace changes made on that thread die with it.
Status OnOwnThread(const std::function<Status()>& fn) {
  Status result = Ok();
  try {
    std::jthread t([&] { result = fn(); });
  } catch (const std::system_error& e) {
    return Unavailable(fmt::format("start namespace thread: {}", e.what()));
  }
  return result;
}

Result<std::string> RandomName() {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "failed to generate random netns name");
    }
    got += static_cast<size_t>(n);
  }
  return fmt::format(
      "cni-{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}"
      "{:02x}{:02x}",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
      b[15]);
}

// Opens the path and checks that it is an nsfs file. NotFound if missing, FailedPrecondition if
// it is something else.
Result<fs::UniqueFd> OpenNs(const std::string& path) {
  fs::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.Valid()) return ErrnoError(errno, fmt::format("open netns {}", path));
  struct statfs sfs {};
  if (::fstatfs(fd.Get(), &sfs) != 0) return ErrnoError(errno, fmt::format("statfs {}", path));
  if (static_cast<long>(sfs.f_type) != kNsfsMagic) {
    return FailedPrecondition(fmt::format("{} is not a network namespace", path));
  }
  return fd;
}

}  // namespace

Result<NetNs> NetNs::Create(const std::string& dir) {
  BERTH_ASSIGN_OR_RETURN(std::string name, RandomName());
  BERTH_TRY(fs::MkdirAll(dir, 0755));
  std::string path = dir + "/" + name;
  {
    fs::UniqueFd f(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (!f.Valid()) return ErrnoError(errno, fmt::format("create netns file {}", path));
  }
  // The namespace is made on a thread of its own that ends right after the bind mount, so no
  // thread of the daemon is ever left inside a pod's namespace (containerd parks a goroutine's
  // locked OS thread for the same reason).
  Status st = OnOwnThread([&]() -> Status {
    if (::unshare(CLONE_NEWNET) != 0) return ErrnoError(errno, "unshare(CLONE_NEWNET)");
    std::string self = fmt::format("/proc/self/task/{}/ns/net", ::gettid());
    if (::mount(self.c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0) {
      return ErrnoError(errno, fmt::format("failed to bind mount ns at {}", path));
    }
    return Ok();
  });
  if (!st) {
    ::unlink(path.c_str());
    return std::move(st).error().Wrap("failed to create namespace");
  }
  return NetNs(std::move(path));
}

Result<bool> NetNs::Closed() const {
  auto fd = OpenNs(path_);
  if (fd) return false;
  if (fd.error().Is(Errc::kNotFound)) return true;
  if (fd.error().Is(Errc::kFailedPrecondition)) {
    // Not mounted any more: the file is a leftover (containerd's NetNS.Closed removes it too).
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError(errno, fmt::format("remove netns {}", path_));
    }
    return true;
  }
  return std::move(fd).error();
}

Status NetNs::Remove() const {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok();
    return ErrnoError(errno, fmt::format("failed to stat netns {}", path_));
  }
  // containerd follows symlinks (within /) before unmounting.
  std::string target = path_;
  if (S_ISLNK(st.st_mode)) {
    char buf[PATH_MAX];
    if (::realpath(path_.c_str(), buf) == nullptr) {
      if (errno != ENOENT) return ErrnoError(errno, fmt::format("resolve netns {}", path_));
    } else {
      target = buf;
    }
  }
  // Stacked mounts are possible only if someone else mounted here too; peel them all.
  for (int i = 0; i < 16; ++i) {
    if (::umount2(target.c_str(), MNT_DETACH) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) break;  // not (or no longer) a mount point
    return ErrnoError(errno, fmt::format("failed to umount netns {}", target));
  }
  if (::unlink(target.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, fmt::format("failed to remove netns {}", target));
  }
  if (target != path_ && ::unlink(path_.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, fmt::format("failed to remove netns {}", path_));
  }
  return Ok();
}

Status NetNs::Do(const std::function<Status()>& fn) const {
  BERTH_ASSIGN_OR_RETURN(fs::UniqueFd fd, OpenNs(path_));
  return OnOwnThread([&]() -> Status {
    if (::setns(fd.Get(), CLONE_NEWNET) != 0) {
      return ErrnoError(errno, fmt::format("setns {}", path_));
    }
    return fn();
  });
}

}  // namespace berth::cri::cni

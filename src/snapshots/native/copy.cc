#include "snapshots/native/copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/fs.h"

namespace berth::snapshots::native {
namespace {

// errno values meaning "this filesystem cannot do that xattr": skipped, as containerd's
// xattr error handler does.
bool IgnorableXattrError(int err) {
  return err == EPERM || err == EACCES || err == ENOTSUP || err == EOPNOTSUPP || err == EINVAL;
}

Status CopyXattrs(const std::string& dst, const std::string& src) {
  ssize_t n = ::llistxattr(src.c_str(), nullptr, 0);
  if (n < 0) {
    return errno == ENOTSUP || errno == EOPNOTSUPP ? Ok() : ErrnoError(errno, "list xattrs " + src);
  }
  if (n == 0) return Ok();
  std::vector<char> names(static_cast<size_t>(n));
  n = ::llistxattr(src.c_str(), names.data(), names.size());
  if (n < 0) return ErrnoError(errno, "list xattrs " + src);
  std::vector<char> value;
  for (size_t off = 0; off < static_cast<size_t>(n);) {
    const char* name = names.data() + off;
    off += std::strlen(name) + 1;
    ssize_t len = ::lgetxattr(src.c_str(), name, nullptr, 0);
    if (len < 0) {
      if (errno == ENODATA) continue;
      return ErrnoError(errno, fmt::format("get xattr {} of {}", name, src));
    }
    value.resize(static_cast<size_t>(len));
    len = ::lgetxattr(src.c_str(), name, value.data(), value.size());
    if (len < 0) return ErrnoError(errno, fmt::format("get xattr {} of {}", name, src));
    if (::lsetxattr(dst.c_str(), name, value.data(), static_cast<size_t>(len), 0) != 0 &&
        !IgnorableXattrError(errno)) {
      return ErrnoError(errno, fmt::format("set xattr {} on {}", name, dst));
    }
  }
  return Ok();
}

// Owner, then mode (chown clears setuid bits), then xattrs (chown also drops
// security.capability), then times (everything before touches ctime/mtime of `dst` only).
Status ApplyMetadata(const std::string& dst, const std::string& src, const struct stat& st) {
  if (::lchown(dst.c_str(), st.st_uid, st.st_gid) != 0) return ErrnoError(errno, "chown " + dst);
  if (!S_ISLNK(st.st_mode) && ::chmod(dst.c_str(), st.st_mode & 07777) != 0) {
    return ErrnoError(errno, "chmod " + dst);
  }
  BERTH_TRY(CopyXattrs(dst, src));
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError(errno, "set times of " + dst);
  }
  return Ok();
}

Status CopyData(int out, int in, const std::string& dst, const std::string& src, off_t size) {
  if (::ioctl(out, FICLONE, in) == 0) return Ok();  // reflink: shares extents, O(1)
  off_t done = 0;
  bool kernel_copy = true;
  while (done < size) {
    if (kernel_copy) {
      ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(size - done), 0);
      if (n > 0) {
        done += n;
        continue;
      }
      if (n == 0) break;  // file shrank under us
      if (errno == EINTR) continue;
      if (done == 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                        errno == EOPNOTSUPP || errno == EBADF)) {
        kernel_copy = false;
        continue;
      }
      return ErrnoError(errno, fmt::format("copy {} to {}", src, dst));
    }
    char buf[1 << 16];
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read " + src);
    }
    if (n == 0) break;
    for (ssize_t w = 0; w < n;) {
      ssize_t m = ::write(out, buf + w, static_cast<size_t>(n - w));
      if (m < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno, "write " + dst);
      }
      w += m;
    }
    done += n;
  }
  return Ok();
}

class Copier {
 public:
  Status Entry(const std::string& dst, const std::string& src, const struct stat& st) {
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR:
        if (::mkdir(dst.c_str(), 0700) != 0) return ErrnoError(errno, "mkdir " + dst);
        BERTH_TRY(Contents(dst, src));
        break;
      case S_IFREG: {
        if (st.st_nlink > 1) {
          auto [it, fresh] = links_.emplace(std::make_pair(st.st_dev, st.st_ino), dst);
          if (!fresh) {
            if (::link(it->second.c_str(), dst.c_str()) != 0) {
              return ErrnoError(errno, fmt::format("link {} to {}", dst, it->second));
            }
            return Ok();  // same inode: its metadata is already in place
          }
        }
        fs::UniqueFd in(::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!in.Valid()) return ErrnoError(errno, "open " + src);
        fs::UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!out.Valid()) return ErrnoError(errno, "create " + dst);
        BERTH_TRY(CopyData(out.Get(), in.Get(), dst, src, st.st_size));
        break;
      }
      case S_IFLNK: {
        std::vector<char> target(static_cast<size_t>(st.st_size) + 1);
        ssize_t n = ::readlink(src.c_str(), target.data(), target.size());
        if (n < 0) return ErrnoError(errno, "readlink " + src);
        std::string t(target.data(), static_cast<size_t>(n));
        if (::symlink(t.c_str(), dst.c_str()) != 0) return ErrnoError(errno, "symlink " + dst);
        break;
      }
      case S_IFCHR:
      case S_IFBLK:
      case S_IFIFO:
      case S_IFSOCK:
        if (::mknod(dst.c_str(), st.st_mode, st.st_rdev) != 0) {
          return ErrnoError(errno, "mknod " + dst);
        }
        break;
      default:
        return InvalidArgument(
            fmt::format("copy {}: unsupported file type {:o}", src, st.st_mode & S_IFMT));
    }
    return ApplyMetadata(dst, src, st);
  }

  Status Contents(const std::string& dst, const std::string& src) {
    std::vector<std::string> names;
    DIR* d = ::opendir(src.c_str());
    if (d == nullptr) return ErrnoError(errno, "opendir " + src);
    errno = 0;
    while (struct dirent* de = ::readdir(d)) {
      if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) {
        names.emplace_back(de->d_name);
      }
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoError(err, "readdir " + src);
    for (const auto& name : names) {
      std::string s = src + "/" + name;
      struct stat st {};
      if (::lstat(s.c_str(), &st) != 0) return ErrnoError(errno, "stat " + s);
      BERTH_TRY(Entry(dst + "/" + name, s, st));
    }
    return Ok();
  }

 private:
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

}  // namespace

Status CopyDir(const std::string& dst, const std::string& src) {
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) return ErrnoError(errno, "stat " + src);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(fmt::format("copy {}: not a directory", src));
  Copier c;
  BERTH_TRY(c.Contents(dst, src));
  return ApplyMetadata(dst, src, st);
}

}  // namespace berth::snapshots::native

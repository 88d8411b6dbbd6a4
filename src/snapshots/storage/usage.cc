#include "snapshots/storage/usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "common/fs.h"

namespace berth::snapshots::storage {
namespace {

using InodeSet = std::set<std::pair<dev_t, ino_t>>;

void Count(const struct stat& st, InodeSet& seen, snapshots::Usage& usage) {
  if (seen.emplace(st.st_dev, st.st_ino).second) {
    ++usage.inodes;
    usage.size += static_cast<int64_t>(st.st_blocks) * 512;
  }
}

// Counts the entries of the open directory `dirfd` (the directory itself is counted by the
// caller), recursively.
Status Walk(int dirfd, const std::string& path, InodeSet& seen, snapshots::Usage& usage) {
  DIR* dir = ::fdopendir(dirfd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dirfd);
    return ErrnoError(err, "opendir " + path);
  }
  Status status = Ok();
  errno = 0;
  while (struct dirent* de = ::readdir(dir)) {
    if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0) continue;
    struct stat st {};
    if (::fstatat(::dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while walking
      status = ErrnoError(errno, fmt::format("stat {}/{}", path, de->d_name));
      break;
    }
    Count(st, seen, usage);
    if (S_ISDIR(st.st_mode)) {
      int fd = ::openat(::dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOENT) continue;
        status = ErrnoError(errno, fmt::format("open {}/{}", path, de->d_name));
        break;
      }
      status = Walk(fd, path + "/" + de->d_name, seen, usage);
      if (!status) break;
    }
  }
  ::closedir(dir);
  return status;
}

}  // namespace

Result<snapshots::Usage> DiskUsage(const std::string& root) {
  snapshots::Usage usage;
  InodeSet seen;
  struct stat st {};
  if (::lstat(root.c_str(), &st) != 0) return ErrnoError(errno, "stat " + root);
  Count(st, seen, usage);
  if (!S_ISDIR(st.st_mode)) return usage;
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open " + root);
  BERTH_TRY(Walk(fd, root, seen, usage));
  return usage;
}

}  // namespace berth::snapshots::storage

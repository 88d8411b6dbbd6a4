#pragma once
// Filesystem access confined to a root directory, by file descriptor. Every lookup below a root
// goes through openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: the kernel refuses any
// resolution that would leave the root (a ".." too many, an absolute symlink, a relative symlink
// climbing out) with EXDEV, so there is no window between a check and a use. Final components are
// never followed: they are handled with *at() calls on the resolved parent and NOFOLLOW flags.
#include <cerrno>
#include <clocale>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/errdefs.h"
#include "common/fs.h"

namespace berth::diff {

// ErrnoError for the current errno, read before the message is formatted (formatting may
// allocate and clobber it).
template <class... Args>
Error SysError(fmt::format_string<Args...> format, Args&&... args) {
  int err = errno;
  return ErrnoError(err, fmt::format(format, std::forward<Args>(args)...));
}

// Cleans a relative tar name lexically, as Go's filepath.Clean ("./a//b/../c/" -> "a/c"); "" is
// the root itself. InvalidArgument when the name is absolute or climbs above the root ("../x",
// "a/../../x"): such entries are refused, never clamped.
Result<std::string> CleanRelative(std::string_view name);

// Splits a cleaned relative path into (parent, base): "a/b/c" -> ("a/b", "c"), "c" -> ("", "c").
std::pair<std::string, std::string> SplitParent(const std::string& rel);

// openat2(root_fd, rel, flags, RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS|extra_resolve). EXDEV (the
// path leaves the root through a symlink) and ELOOP become InvalidArgument; other errnos map as
// ErrnoError (ENOENT -> NotFound); ENOTDIR is FailedPrecondition. "" opens the root itself.
Result<fs::UniqueFd> OpenBeneath(int root_fd, const std::string& rel, int flags,
                                 uint64_t extra_resolve = 0);

// openat2 with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS: symlinks (absolute ones and ".." too) are
// resolved as if root_fd were "/" (chroot-like). For read-only lookups in trees berth does not
// write to (overlay lowerdirs).
Result<fs::UniqueFd> OpenInRoot(int root_fd, const std::string& rel, int flags);

// Called for each directory OpenDir creates, with its path below the root and an open fd.
using OnCreateDir = std::function<Status(const std::string& rel, int fd)>;

// Opens directory `rel` below root_fd (O_RDONLY|O_DIRECTORY). With `create`, missing components
// are made (mode exactly 0755, as containerd's mkparent) and reported to `on_create`. A component
// that exists but is no directory (ENOTDIR) is FailedPrecondition; a dangling symlink component is
// InvalidArgument.
Result<fs::UniqueFd> OpenDir(int root_fd, const std::string& rel, bool create,
                             const OnCreateDir& on_create = nullptr);

// rm -rf of `name` inside dirfd; never follows symlinks, never leaves dirfd. Missing is fine.
Status RemoveAllAt(int dirfd, const std::string& name);

// Names `name` inside dirfd for path-only calls (lsetxattr, lgetxattr): /proc/self/fd/<fd>/<name>.
// The directory is pinned by its fd and a single final component is not followed by l* calls.
std::string ProcPath(int dirfd, std::string_view name);

// What extended attributes are read from: an open fd (f* calls) or a path (l* calls: a final
// symlink is not followed).
struct XattrSource {
  int fd = -1;
  std::string path;
};
// All extended attributes; unsupported filesystems give an empty list.
Result<std::vector<std::pair<std::string, std::string>>> ListXattrs(const XattrSource& src);
// One attribute; NotFound if absent or unsupported.
Result<std::string> GetXattr(const XattrSource& src, const std::string& name);

// Switches the calling thread to the C.UTF-8 locale while alive (uselocale), so that libarchive
// takes names as UTF-8/bytes instead of converting PAX UTF-8 paths to ASCII (and warning).
class Utf8Locale {
 public:
  Utf8Locale();
  ~Utf8Locale();
  Utf8Locale(const Utf8Locale&) = delete;
  Utf8Locale& operator=(const Utf8Locale&) = delete;

 private:
  locale_t previous_ = nullptr;
};

// Names in a directory (without "." and ".."), sorted bytewise. Does not consume dirfd.
Result<std::vector<std::string>> ReadDirNames(int dirfd);

}  // namespace berth::diff

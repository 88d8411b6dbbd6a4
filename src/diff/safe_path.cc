#include "diff/safe_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace berth::diff {

Utf8Locale::Utf8Locale() {
  static const locale_t utf8 = [] {
    locale_t l = ::newlocale(LC_ALL_MASK, "C.UTF-8", nullptr);
    return l != nullptr ? l : ::newlocale(LC_ALL_MASK, "C.utf8", nullptr);
  }();
  if (utf8 != nullptr) previous_ = ::uselocale(utf8);
}

Utf8Locale::~Utf8Locale() {
  if (previous_ != nullptr) ::uselocale(previous_);
}

Result<std::string> CleanRelative(std::string_view name) {
  if (name.starts_with('/')) {
    return InvalidArgument("absolute path escapes the root");
  }
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= name.size()) {
    size_t slash = name.find('/', i);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(i, slash - i);
    i = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return InvalidArgument("path escapes the root with \"..\"");
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (auto p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

std::pair<std::string, std::string> SplitParent(const std::string& rel) {
  auto slash = rel.rfind('/');
  if (slash == std::string::npos) return {"", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

Result<fs::UniqueFd> OpenBeneath(int root_fd, const std::string& rel, int flags,
                                 uint64_t extra_resolve) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | extra_resolve;
  const char* path = rel.empty() ? "." : rel.c_str();
  for (;;) {
    long fd =
        ::syscall(SYS_openat2, root_fd, path, &how, sizeof how);  // NOLINT(google-runtime-int)
    if (fd >= 0) return fs::UniqueFd(static_cast<int>(fd));
    int err = errno;
    if (err == EINTR || err == EAGAIN) continue;
    if (err == EXDEV) {
      return InvalidArgument(fmt::format("\"{}\" escapes the root through a symlink", rel));
    }
    if (err == ELOOP) {
      return InvalidArgument(fmt::format("\"{}\": too many levels of symlinks", rel));
    }
    if (err == ENOTDIR) {
      return FailedPrecondition(fmt::format("\"{}\": not a directory", rel));
    }
    return ErrnoError(err, fmt::format("open \"{}\" below the root", rel));
  }
}

Result<fs::UniqueFd> OpenInRoot(int root_fd, const std::string& rel, int flags) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const char* path = rel.empty() ? "." : rel.c_str();
  for (;;) {
    long fd =
        ::syscall(SYS_openat2, root_fd, path, &how, sizeof how);  // NOLINT(google-runtime-int)
    if (fd >= 0) return fs::UniqueFd(static_cast<int>(fd));
    int err = errno;
    if (err == EINTR || err == EAGAIN) continue;
    if (err == ENOTDIR) return FailedPrecondition(fmt::format("\"{}\": not a directory", rel));
    return ErrnoError(err, fmt::format("open \"{}\"", rel));
  }
}

Result<fs::UniqueFd> OpenDir(int root_fd, const std::string& rel, bool create,
                             const OnCreateDir& on_create) {
  auto whole = OpenBeneath(root_fd, rel, O_RDONLY | O_DIRECTORY);
  if (whole || !create || !whole.error().Is(Errc::kNotFound)) return whole;

  // Some component is missing: walk the prefixes from the root (so that symlinks resolve
  // against the root exactly as in one lookup) and create what is absent.
  fs::UniqueFd cur;
  std::string prefix;
  size_t i = 0;
  while (i < rel.size()) {
    size_t slash = rel.find('/', i);
    if (slash == std::string::npos) slash = rel.size();
    std::string comp = rel.substr(i, slash - i);
    i = slash + 1;
    if (!prefix.empty()) prefix += '/';
    prefix += comp;
    auto next = OpenBeneath(root_fd, prefix, O_RDONLY | O_DIRECTORY);
    if (next) {
      cur = std::move(*next);
      continue;
    }
    if (!next.error().Is(Errc::kNotFound)) return std::move(next).error();
    int parent = cur.Valid() ? cur.Get() : root_fd;
    if (::mkdirat(parent, comp.c_str(), 0755) != 0) {
      if (errno == EEXIST) {
        return InvalidArgument(fmt::format("parent \"{}\" is a dangling symlink", prefix));
      }
      return SysError("mkdir \"{}\"", prefix);
    }
    fs::UniqueFd made(
        ::openat(parent, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!made.Valid()) return SysError("open \"{}\"", prefix);
    if (::fchmod(made.Get(), 0755) != 0) return SysError("chmod \"{}\"", prefix);
    if (on_create) BERTH_TRY(on_create(prefix, made.Get()));
    cur = std::move(made);
  }
  if (!cur.Valid()) return OpenBeneath(root_fd, "", O_RDONLY | O_DIRECTORY);
  return cur;
}

Result<std::vector<std::string>> ReadDirNames(int dirfd) {
  int dup = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) return ErrnoError(errno, "open directory");
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    int err = errno;
    ::close(dup);
    return ErrnoError(err, "opendir");
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* de = ::readdir(dir)) {
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) {
      names.emplace_back(de->d_name);
    }
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return ErrnoError(err, "readdir");
  std::sort(names.begin(), names.end());
  return names;
}

Status RemoveAllAt(int dirfd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? Status(Ok()) : SysError("stat \"{}\"", name);
  }
  if (S_ISDIR(st.st_mode)) {
    fs::UniqueFd sub(
        ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub.Valid()) return SysError("open \"{}\"", name);
    BERTH_ASSIGN_OR_RETURN(auto names, ReadDirNames(sub.Get()));
    for (const auto& n : names) {
      if (auto s = RemoveAllAt(sub.Get(), n); !s) return std::move(s).error().Wrap(name);
    }
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return SysError("rmdir \"{}\"", name);
    }
    return Ok();
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return SysError("unlink \"{}\"", name);
  }
  return Ok();
}

std::string ProcPath(int dirfd, std::string_view name) {
  return fmt::format("/proc/self/fd/{}/{}", dirfd, name);
}

namespace {

ssize_t DoList(const XattrSource& src, char* buf, size_t n) {
  return src.fd >= 0 ? ::flistxattr(src.fd, buf, n) : ::llistxattr(src.path.c_str(), buf, n);
}

ssize_t DoGet(const XattrSource& src, const std::string& name, char* buf, size_t n) {
  return src.fd >= 0 ? ::fgetxattr(src.fd, name.c_str(), buf, n)
                     : ::lgetxattr(src.path.c_str(), name.c_str(), buf, n);
}

std::string Name(const XattrSource& src) {
  return src.fd >= 0 ? fmt::format("fd {}", src.fd) : src.path;
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> ListXattrs(const XattrSource& src) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string names;
  for (;;) {
    ssize_t n = DoList(src, nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP) return out;
      return SysError("list xattrs of {}", Name(src));
    }
    names.resize(static_cast<size_t>(n));
    n = DoList(src, names.data(), names.size());
    if (n < 0 && errno == ERANGE) continue;  // grew in between
    if (n < 0) return SysError("list xattrs of {}", Name(src));
    names.resize(static_cast<size_t>(n));
    break;
  }
  for (size_t i = 0; i < names.size();) {
    std::string name(names.c_str() + i);
    i += name.size() + 1;
    if (name.empty()) continue;
    auto value = GetXattr(src, name);
    if (!value) {
      if (value.error().Is(Errc::kNotFound)) continue;  // removed in between
      return std::move(value).error();
    }
    out.emplace_back(std::move(name), std::move(*value));
  }
  return out;
}

Result<std::string> GetXattr(const XattrSource& src, const std::string& name) {
  std::string value;
  for (;;) {
    ssize_t n = DoGet(src, name, nullptr, 0);
    if (n >= 0) {
      value.resize(static_cast<size_t>(n));
      n = DoGet(src, name, value.data(), value.size());
      if (n < 0 && errno == ERANGE) continue;
    }
    if (n < 0) {
      if (errno == ENODATA || errno == ENOTSUP) return NotFound("xattr " + name);
      return SysError("get xattr {} of {}", name, Name(src));
    }
    value.resize(static_cast<size_t>(n));
    return value;
  }
}

}  // namespace berth::diff

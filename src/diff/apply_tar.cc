#include "diff/apply_tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <optional>
#include <unordered_set>

#include <fmt/format.h>

#include "common/log.h"
#include "diff/safe_path.h"
#include "diff/tar_types.h"

namespace berth::diff {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutOpaque = ".wh..wh..opq";
constexpr const char* kOverlayOpaqueXattr = "trusted.overlay.opaque";

// Feeds libarchive from a Reader, keeping the reader's own error; the scanner sees every byte.
struct Source {
  explicit Source(Reader& r) : reader(r), buf(256 << 10) {}
  Reader& reader;
  std::vector<char> buf;
  std::optional<Error> error;
  TarTypeScanner types;
};

la_ssize_t ReadCallback(struct archive* /*a*/, void* client, const void** out) {
  auto* src = static_cast<Source*>(client);
  auto n = src->reader.Read(src->buf.data(), src->buf.size());
  if (!n) {
    src->error = std::move(n).error();
    return -1;
  }
  src->types.Feed(std::string_view(src->buf.data(), *n));
  *out = src->buf.data();
  return static_cast<la_ssize_t>(*n);
}

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// containerd's boundTime(latestTime(atime, mtime)) and boundTime(mtime), as timespecs.
void EntryTimes(archive_entry* e, struct timespec out[2]) {
  struct timespec mtime {
    archive_entry_mtime(e), archive_entry_mtime_nsec(e)
  };
  struct timespec atime = mtime;
  if (archive_entry_atime_is_set(e)) {
    struct timespec a {
      archive_entry_atime(e), archive_entry_atime_nsec(e)
    };
    if (a.tv_sec > mtime.tv_sec || (a.tv_sec == mtime.tv_sec && a.tv_nsec > mtime.tv_nsec)) {
      atime = a;
    }
  }
  constexpr time_t kMaxSec = INT64_MAX / 1000000000;  // Go's time.Unix(0, 1<<63-1)
  for (auto* t : {&atime, &mtime}) {
    if (t->tv_sec < 0 || t->tv_sec >= kMaxSec) *t = {0, 0};
  }
  out[0] = atime;
  out[1] = mtime;
}

struct DirTimes {
  std::string rel;
  struct timespec times[2];
};

class Extractor {
 public:
  Extractor(fs::UniqueFd root, const ApplyOptions& opts, struct archive* a, Source& src)
      : root_(std::move(root)), opts_(opts), a_(a), src_(src), userns_(RunningInUserNS()) {}

  Status Run() {
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(a_, &e);
      if (r == ARCHIVE_EOF) {
        if (src_.types.Refusal()) return *src_.types.Refusal();
        break;
      }
      if (r == ARCHIVE_WARN) {
        log::L().With("warning", archive_error_string(a_)).Warn("tar header warning");
      } else if (r != ARCHIVE_OK) {
        return ArchiveError("read tar header");
      }
      // The scanner has seen this entry's header (and maybe more): refused before it is applied.
      if (src_.types.Refusal()) return *src_.types.Refusal();
      BERTH_TRY(ApplyEntry(e));
    }
    for (const auto& d : dirs_) {
      auto [parent, base] = SplitParent(d.rel);
      auto pfd = OpenBeneath(root_.Get(), parent, O_RDONLY | O_DIRECTORY);
      if (!pfd) continue;  // removed or replaced by a later entry
      if (::utimensat(pfd->Get(), base.c_str(), d.times, AT_SYMLINK_NOFOLLOW) != 0 &&
          errno != ENOENT) {
        return SysError("set times of \"{}\"", d.rel);
      }
    }
    return Ok();
  }

 private:
  Error ArchiveError(std::string_view what) {
    if (src_.error) return std::move(*src_.error).Wrap(what);
    const char* msg = archive_error_string(a_);
    return InvalidArgument(fmt::format("{}: {}", what, msg != nullptr ? msg : "unknown error"));
  }

  Status ApplyEntry(archive_entry* e) {
    const char* raw_name = archive_entry_pathname(e);
    if (raw_name == nullptr) raw_name = archive_entry_pathname_utf8(e);
    if (raw_name == nullptr) return InvalidArgument("tar entry without a name");
    const std::string where = fmt::format("tar entry {:?}", raw_name);

    auto cleaned = CleanRelative(raw_name);
    if (!cleaned) return std::move(cleaned).error().Wrap(where);
    const std::string& rel = *cleaned;
    if (rel.empty()) return Ok();  // "./": the root itself is left alone, as containerd

    const mode_t type = archive_entry_filetype(e);
    const char* hardlink = archive_entry_hardlink(e);
    if (hardlink == nullptr && (type == AE_IFCHR || type == AE_IFBLK) && userns_) {
      log::L().With("entry", rel).Warn("device node skipped in a user namespace");
      return Ok();
    }
    auto [parent, base] = SplitParent(rel);

    // Everything that can be refused is checked before anything is written for this entry.
    const bool opaque = base == kWhiteoutOpaque;
    const bool whiteout = !opaque && base.starts_with(kWhiteoutPrefix);
    std::string hidden;
    if (whiteout) {
      hidden = base.substr(kWhiteoutPrefix.size());
      if (hidden.empty() || hidden == "." || hidden == "..") {
        return InvalidArgument(fmt::format("{}: invalid whiteout name {:?}", where, base));
      }
    }
    fs::UniqueFd link_dir;
    std::string link_base;
    if (hardlink != nullptr && !whiteout && !opaque) {
      auto target = CleanRelative(hardlink);
      if (!target) {
        return std::move(target).error().Wrap(
            fmt::format("{}: hardlink target {:?}", where, hardlink));
      }
      if (target->empty()) return InvalidArgument(where + ": hardlink to the root directory");
      auto [link_parent, lb] = SplitParent(*target);
      auto dir = OpenDir(root_.Get(), link_parent, false);
      if (!dir) {
        return std::move(dir).error().Wrap(
            fmt::format("{}: hardlink target {:?}", where, hardlink));
      }
      struct stat st {};
      if (::fstatat(dir->Get(), lb.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return SysError("{}: hardlink target {:?}", where, hardlink);
      }
      if (S_ISDIR(st.st_mode)) {
        return InvalidArgument(
            fmt::format("{}: hardlink target {:?} is a directory", where, hardlink));
      }
      link_dir = std::move(*dir);
      link_base = lb;
    } else if (hardlink == nullptr && !whiteout && !opaque && !IsSupported(type)) {
      return InvalidArgument(fmt::format("{}: unhandled tar header type (mode {:o})", where, type));
    }

    OnCreateDir on_create;
    if (opts_.overlay && !opts_.parents.empty()) {
      on_create = [this](const std::string& dir_rel, int fd) {
        return CopyParentInfo(dir_rel, fd);
      };
    }
    auto pfd_or = OpenDir(root_.Get(), parent, true, on_create);
    if (!pfd_or) return std::move(pfd_or).error().Wrap(where);
    const int pfd = pfd_or->Get();

    if (opaque) {
      if (opts_.overlay) {
        if (::fsetxattr(pfd, kOverlayOpaqueXattr, "y", 1, 0) != 0) {
          return SysError("{}: set {}", where, kOverlayOpaqueXattr);
        }
        return Ok();
      }
      if (auto s = RemoveNotUnpacked(pfd, parent); !s) return std::move(s).error().Wrap(where);
      return Ok();
    }
    if (whiteout) {
      if (!opts_.overlay) {
        if (auto s = RemoveAllAt(pfd, hidden); !s) return std::move(s).error().Wrap(where);
        return Ok();
      }
      if (::mknodat(pfd, hidden.c_str(), S_IFCHR, makedev(0, 0)) != 0) {
        return SysError("{}: create whiteout device", where);
      }
      if (::fchownat(pfd, hidden.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                     static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) != 0) {
        return SysError("{}: chown whiteout device", where);
      }
      return Ok();
    }

    struct stat existing {};
    if (::fstatat(pfd, base.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) {
      if (!(S_ISDIR(existing.st_mode) && type == AE_IFDIR && hardlink == nullptr)) {
        if (auto s = RemoveAllAt(pfd, base); !s) return std::move(s).error().Wrap(where);
      }
    } else if (errno != ENOENT) {
      return SysError("{}: stat", where);
    }

    if (auto s =
            Create(e, rel, pfd, base, type, hardlink != nullptr ? &link_dir : nullptr, link_base);
        !s) {
      return std::move(s).error().Wrap(where);
    }
    unpacked_.insert(rel);
    return Ok();
  }

  static bool IsSupported(mode_t type) {
    switch (type) {
      case AE_IFDIR:
      case AE_IFREG:
      case AE_IFLNK:
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        return true;
      default:
        return false;
    }
  }

  // Creates the entry `base` in pfd (nothing is there now) and sets its metadata.
  Status Create(archive_entry* e, const std::string& rel, int pfd, const std::string& base,
                mode_t type, const fs::UniqueFd* link_dir, const std::string& link_base) {
    const mode_t perm = archive_entry_perm(e) & 07777;
    fs::UniqueFd fd;  // set for regular files and directories: metadata goes through it
    if (link_dir != nullptr) {
      if (::linkat(link_dir->Get(), link_base.c_str(), pfd, base.c_str(), 0) != 0) {
        return SysError("hardlink");
      }
    } else {
      switch (type) {
        case AE_IFDIR: {
          if (::mkdirat(pfd, base.c_str(), perm) != 0 && errno != EEXIST) return SysError("mkdir");
          fd.Reset(::openat(pfd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
          if (!fd.Valid()) return SysError("open directory");
          struct timespec times[2];
          EntryTimes(e, times);
          dirs_.push_back({.rel = rel, .times = {times[0], times[1]}});
          break;
        }
        case AE_IFREG:
          fd.Reset(::openat(pfd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            perm));
          if (!fd.Valid()) return SysError("create file");
          BERTH_TRY(WriteData(e, fd.Get()));
          break;
        case AE_IFLNK: {
          const char* target = archive_entry_symlink(e);
          if (::symlinkat(target != nullptr ? target : "", pfd, base.c_str()) != 0) {
            return SysError("symlink");
          }
          break;
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO: {
          dev_t dev = type == AE_IFIFO
                          ? 0
                          : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
          if (::mknodat(pfd, base.c_str(), type | perm, dev) != 0) return SysError("mknod");
          break;
        }
        default:
          return InvalidArgument("unhandled tar header type");
      }
    }
    return SetMetadata(e, pfd, base, fd);
  }

  Status WriteData(archive_entry* e, int fd) {
    int64_t end = 0;
    for (;;) {
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      int r = archive_read_data_block(a_, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return ArchiveError("read file data");
      const char* p = static_cast<const char*>(buf);
      while (size > 0) {
        ssize_t n = ::pwrite(fd, p, size, offset);
        if (n < 0) {
          if (errno == EINTR) continue;
          return SysError("write");
        }
        p += n;
        size -= static_cast<size_t>(n);
        offset += n;
      }
      end = std::max<int64_t>(end, offset);
    }
    // A sparse file ending in a hole: the last data block stops short of the size.
    if (archive_entry_size_is_set(e) && end < archive_entry_size(e)) {
      if (::ftruncate(fd, archive_entry_size(e)) != 0) return SysError("truncate");
    }
    return Ok();
  }

  Status SetMetadata(archive_entry* e, int pfd, const std::string& base, const fs::UniqueFd& fd) {
    // What is on disk decides (a hardlink takes its target's type), as containerd's Lstat.
    mode_t type = archive_entry_filetype(e);
    if (!fd.Valid()) {
      struct stat st {};
      if (::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return SysError("stat");
      type = st.st_mode & S_IFMT;
    }
    const auto uid = static_cast<uid_t>(archive_entry_uid(e));
    const auto gid = static_cast<gid_t>(archive_entry_gid(e));
    int rc = fd.Valid() ? ::fchown(fd.Get(), uid, gid)
                        : ::fchownat(pfd, base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) return SysError("lchown to uid {} gid {}", uid, gid);

    const std::string path = ProcPath(pfd, base);
    archive_entry_xattr_reset(e);
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      std::string_view key(name);
      if (key.starts_with("trusted.")) {  // containerd: "admin attributes ... not supported"
        log::L().With("xattr", key).Warn("ignored xattr in archive");
        continue;
      }
      rc = fd.Valid() ? ::fsetxattr(fd.Get(), name, value, size, 0)
                      : ::lsetxattr(path.c_str(), name, value, size, 0);
      if (rc == 0) continue;
      int err = errno;
      bool plain = type == S_IFREG || type == S_IFDIR;
      if (err == ENOTSUP || (err == EPERM && key.starts_with("user.") && !plain)) {
        log::L()
            .With("xattr", key)
            .With("error", std::strerror(err))
            .Warn("ignored xattr in archive");
        continue;
      }
      return ErrnoError(err, fmt::format("setxattr {}", key));
    }

    const mode_t perm = archive_entry_perm(e) & 07777;
    if (type != S_IFLNK) {
      rc = fd.Valid() ? ::fchmod(fd.Get(), perm)
                      : ::fchmodat(pfd, base.c_str(), perm, AT_SYMLINK_NOFOLLOW);
      if (rc != 0) return SysError("chmod {:o}", perm);
    }
    struct timespec times[2];
    EntryTimes(e, times);
    if (archive_entry_filetype(e) == AE_IFDIR && archive_entry_hardlink(e) == nullptr) {
      return Ok();  // directory times go last (dirs_): entries below would change them
    }
    rc = fd.Valid() ? ::futimens(fd.Get(), times)
                    : ::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) return SysError("set times");
    return Ok();
  }

  // Plain-mode opaque whiteout: removes what this layer did not add, recursively.
  Status RemoveNotUnpacked(int dirfd, const std::string& dir_rel) {
    BERTH_ASSIGN_OR_RETURN(auto names, ReadDirNames(dirfd));
    for (const auto& name : names) {
      std::string rel = dir_rel.empty() ? name : fmt::format("{}/{}", dir_rel, name);
      if (unpacked_.count(rel) == 0) {
        BERTH_TRY(RemoveAllAt(dirfd, name));
        continue;
      }
      struct stat st {};
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        fs::UniqueFd sub(
            ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub.Valid()) return SysError("open \"{}\"", rel);
        BERTH_TRY(RemoveNotUnpacked(sub.Get(), rel));
      }
    }
    return Ok();
  }

  // containerd's mkparent with parents: a directory made for the layer takes its metadata from
  // the first lowerdir that has the same path (a non-directory there stops the search).
  Status CopyParentInfo(const std::string& rel, int fd) {
    for (size_t i = 0; i < opts_.parents.size(); ++i) {
      if (lowers_.size() <= i) {
        fs::UniqueFd lower(::open(opts_.parents[i].c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!lower.Valid()) return SysError("open lowerdir {}", opts_.parents[i]);
        lowers_.push_back(std::move(lower));
      }
      auto src = OpenInRoot(lowers_[i].Get(), rel, O_RDONLY | O_DIRECTORY);
      if (!src) {
        if (src.error().Is(Errc::kNotFound)) continue;
        if (src.error().Is(Errc::kFailedPrecondition)) break;  // not a directory there
        return std::move(src).error().Wrap("lowerdir " + opts_.parents[i]);
      }
      struct stat st {};
      if (::fstat(src->Get(), &st) != 0) return SysError("stat \"{}\" in lowerdir", rel);
      if (::fchown(fd, st.st_uid, st.st_gid) != 0) return SysError("chown \"{}\"", rel);
      if (::fchmod(fd, st.st_mode & 07777) != 0) return SysError("chmod \"{}\"", rel);
      struct timespec times[2] = {st.st_atim, st.st_mtim};
      if (::futimens(fd, times) != 0) return SysError("set times of \"{}\"", rel);
      BERTH_ASSIGN_OR_RETURN(auto xattrs, ListXattrs({.fd = src->Get()}));
      for (const auto& [key, value] : xattrs) {
        if (key.starts_with("trusted.")) continue;
        if (::fsetxattr(fd, key.c_str(), value.data(), value.size(), XATTR_CREATE) != 0 &&
            errno != ENOTSUP && errno != ENODATA && errno != EEXIST) {
          return SysError("copy xattr {} to \"{}\"", key, rel);
        }
      }
      return Ok();
    }
    return Ok();
  }

  fs::UniqueFd root_;
  const ApplyOptions& opts_;
  struct archive* a_;
  Source& src_;
  const bool userns_;
  std::vector<fs::UniqueFd> lowers_;
  std::unordered_set<std::string> unpacked_;
  std::vector<DirTimes> dirs_;
};

}  // namespace

Status ApplyTar(const std::string& root, Reader& src, const ApplyOptions& opts) {
  fs::UniqueFd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.Valid()) return SysError("open apply root {}", root);
  Utf8Locale locale;  // before the archive: libarchive caches conversions per archive
  std::unique_ptr<struct archive, ArchiveFree> a(archive_read_new());
  if (!a) return Unknown("archive_read_new failed");
  archive_read_support_format_tar(a.get());
  archive_read_support_format_empty(a.get());
  Source source(src);
  if (archive_read_open(a.get(), &source, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    if (source.error) return std::move(*source.error).Wrap("read tar");
    return InvalidArgument(fmt::format("read tar: {}", archive_error_string(a.get())));
  }
  Extractor x(std::move(root_fd), opts, a.get(), source);
  return x.Run();
}

bool RunningInUserNS() {
  static const bool in_userns = [] {
    FILE* f = std::fopen("/proc/self/uid_map", "re");
    if (f == nullptr) return false;    // no user namespaces in this kernel
    long long a = -1, b = -1, c = -1;  // NOLINT(google-runtime-int)
    int n = std::fscanf(f, "%lld %lld %lld", &a, &b, &c);
    std::fclose(f);
    if (n != 3) return false;
    return !(a == 0 && b == 0 && c == 4294967295LL);
  }();
  return in_userns;
}

}  // namespace berth::diff

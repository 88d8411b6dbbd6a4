#include "diff/write_tar.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "diff/safe_path.h"

namespace berth::diff {
namespace {

constexpr const char* kCapability = "security.capability";

// One path of a tree, in filepath.Walk order. `dirfd` (the parent directory) stays open until
// the walker's next Next().
struct Node {
  std::string path;  // "/a/b"
  struct stat st {};
  int dirfd = -1;
  std::string name;
};

class TreeWalker {
 public:
  static Result<TreeWalker> Open(const std::string& root) {
    fs::UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.Valid()) return SysError("open {}", root);
    TreeWalker w;
    BERTH_ASSIGN_OR_RETURN(auto names, ReadDirNames(fd.Get()));
    w.stack_.push_back({std::move(fd), "", std::move(names)});
    return w;
  }

  // The next path in pre-order with names sorted bytewise; nullopt at the end.
  Result<std::optional<Node>> Next() {
    if (descend_) {
      descend_ = false;
      Frame& top = stack_.back();
      const std::string& name = top.names[top.i - 1];
      fs::UniqueFd fd(
          ::openat(top.fd.Get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.Valid()) return SysError("open \"{}/{}\"", top.path, name);
      BERTH_ASSIGN_OR_RETURN(auto names, ReadDirNames(fd.Get()));
      std::string path = top.path + "/" + name;
      stack_.push_back({std::move(fd), std::move(path), std::move(names)});
    }
    while (!stack_.empty()) {
      Frame& top = stack_.back();
      if (top.i == top.names.size()) {
        stack_.pop_back();
        continue;
      }
      const std::string& name = top.names[top.i++];
      Node n{.path = top.path + "/" + name, .dirfd = top.fd.Get(), .name = name};
      if (::fstatat(top.fd.Get(), name.c_str(), &n.st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // gone while walking
        return SysError("stat \"{}\"", n.path);
      }
      descend_ = S_ISDIR(n.st.st_mode);
      return std::optional<Node>(std::move(n));
    }
    return std::optional<Node>();
  }

 private:
  struct Frame {
    fs::UniqueFd fd;
    std::string path;
    std::vector<std::string> names;
    size_t i = 0;
  };
  std::vector<Frame> stack_;
  bool descend_ = false;
};

// continuity's directoryCompare: byte order with '/' sorting before everything.
int DirectoryCompare(const std::string& a, const std::string& b) {
  size_t l = std::min(a.size(), b.size());
  for (size_t i = 0; i < l; ++i) {
    unsigned char c1 = a[i] == '/' ? 0 : static_cast<unsigned char>(a[i]);
    unsigned char c2 = b[i] == '/' ? 0 : static_cast<unsigned char>(b[i]);
    if (c1 != c2) return c1 < c2 ? -1 : 1;
  }
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

std::optional<std::string> Capability(int dirfd, const std::string& name) {
  auto v = GetXattr({.path = ProcPath(dirfd, name)}, kCapability);
  if (!v) return std::nullopt;
  return std::move(*v);
}

Result<std::string> ReadLink(int dirfd, const std::string& name) {
  std::string buf(PATH_MAX, '\0');
  ssize_t n = ::readlinkat(dirfd, name.c_str(), buf.data(), buf.size());
  if (n < 0) return SysError("readlink \"{}\"", name);
  buf.resize(static_cast<size_t>(n));
  return buf;
}

Result<bool> SameContent(const Node& a, const Node& b) {
  fs::UniqueFd fa(::openat(a.dirfd, a.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fa.Valid()) return SysError("open \"{}\"", a.path);
  fs::UniqueFd fb(::openat(b.dirfd, b.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fb.Valid()) return SysError("open \"{}\"", b.path);
  std::vector<char> ba(32 << 10), bb(32 << 10);
  for (;;) {
    ssize_t na = ::read(fa.Get(), ba.data(), ba.size());
    ssize_t nb = ::read(fb.Get(), bb.data(), bb.size());
    if (na < 0 || nb < 0) return SysError("read \"{}\"", a.path);
    if (na != nb || std::memcmp(ba.data(), bb.data(), static_cast<size_t>(na)) != 0) return false;
    if (na == 0) return true;
  }
}

// continuity's sameFile (fs/path.go) with compareSysStat and compareCapabilities.
Result<bool> SameFile(const Node& a, const Node& b) {
  if (a.st.st_dev == b.st.st_dev && a.st.st_ino == b.st.st_ino) return true;
  if (a.st.st_mode != b.st.st_mode || a.st.st_uid != b.st.st_uid || a.st.st_gid != b.st.st_gid ||
      a.st.st_rdev != b.st.st_rdev) {
    return false;
  }
  if (Capability(a.dirfd, a.name) != Capability(b.dirfd, b.name)) return false;
  if (S_ISDIR(a.st.st_mode)) return true;
  if (a.st.st_size != b.st.st_size || a.st.st_mtim.tv_sec != b.st.st_mtim.tv_sec) return false;
  if (a.st.st_mtim.tv_nsec == 0 && b.st.st_mtim.tv_nsec == 0) {
    if (S_ISLNK(a.st.st_mode)) {
      BERTH_ASSIGN_OR_RETURN(auto ta, ReadLink(a.dirfd, a.name));
      BERTH_ASSIGN_OR_RETURN(auto tb, ReadLink(b.dirfd, b.name));
      return ta == tb;
    }
    if (a.st.st_size == 0) return true;
    return SameContent(a, b);
  }
  return a.st.st_mtim.tv_nsec == b.st.st_mtim.tv_nsec;
}

bool IsLinked(const struct stat& st) { return !S_ISDIR(st.st_mode) && st.st_nlink > 1; }

enum class Kind { kUnmodified, kAdd, kModify, kDelete };

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

la_ssize_t WriteCallback(struct archive* /*a*/, void* client, const void* buf, size_t n);

// containerd's ChangeWriter (archive/tar.go) over a libarchive PAX writer.
class ChangeWriter {
 public:
  ChangeWriter(Sink& out, int upper_fd)
      : out_(out), upper_fd_(upper_fd), whiteout_time_(::time(nullptr)) {}

  Status Open() {
    a_.reset(archive_write_new());
    if (!a_) return Unknown("archive_write_new failed");
    if (archive_write_set_format_pax_restricted(a_.get()) != ARCHIVE_OK ||
        archive_write_set_format_option(a_.get(), "pax", "xattrheader", "SCHILY") < ARCHIVE_OK ||
        archive_write_set_bytes_per_block(a_.get(), 0) != ARCHIVE_OK ||
        archive_write_open(a_.get(), this, nullptr, WriteCallback, nullptr) != ARCHIVE_OK) {
      return ArchiveError("open tar writer");
    }
    return Ok();
  }

  Status Close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) return ArchiveError("close tar writer");
    return Ok();
  }

  // `p` is "/a/b"; `node` is null for deletions.
  Status HandleChange(Kind k, const std::string& p, const Node* node) {
    if (k == Kind::kDelete) {
      auto slash = p.rfind('/');
      std::string name = p.substr(1, slash) + ".wh." + p.substr(slash + 1);
      std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
      archive_entry_set_pathname(e.get(), name.c_str());
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_perm(e.get(), 0);
      archive_entry_set_size(e.get(), 0);
      archive_entry_set_mtime(e.get(), whiteout_time_, 0);
      BERTH_TRY(IncludeParents(name, false));
      return WriteHeader(e.get(), name);
    }
    const struct stat& st = node->st;
    if (S_ISSOCK(st.st_mode)) return Ok();  // ignore sockets
    std::string name = p.starts_with('/') ? p.substr(1) : p;
    if (S_ISDIR(st.st_mode) && !name.ends_with('/')) name += '/';

    std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), st.st_mode & S_IFMT);
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    archive_entry_set_uid(e.get(), st.st_uid);
    archive_entry_set_gid(e.get(), st.st_gid);
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, 0);
    archive_entry_set_size(e.get(), S_ISREG(st.st_mode) ? st.st_size : 0);
    if (S_ISLNK(st.st_mode)) {
      BERTH_ASSIGN_OR_RETURN(auto target, ReadLink(node->dirfd, node->name));
      archive_entry_set_symlink(e.get(), target.c_str());
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
      archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
    }

    std::vector<std::string> additional_links;
    bool is_link = false;
    if (IsLinked(st)) {
      if (auto it = inode_src_.find(st.st_ino); it != inode_src_.end()) {
        archive_entry_set_hardlink(e.get(), it->second.c_str());
        archive_entry_set_size(e.get(), 0);
        is_link = true;
      } else {
        if (k == Kind::kUnmodified) {
          inode_refs_[st.st_ino].push_back(name);
          return Ok();
        }
        inode_src_[st.st_ino] = name;
        if (auto r = inode_refs_.find(st.st_ino); r != inode_refs_.end()) {
          additional_links = std::move(r->second);
          inode_refs_.erase(r);
        }
      }
    } else if (k == Kind::kUnmodified) {
      return Ok();
    }

    if (auto cap = Capability(node->dirfd, node->name)) {
      archive_entry_xattr_add_entry(e.get(), kCapability, cap->data(), cap->size());
    }
    BERTH_TRY(IncludeParents(name, S_ISDIR(st.st_mode)));
    BERTH_TRY(WriteHeader(e.get(), name));
    if (S_ISREG(st.st_mode) && !is_link && st.st_size > 0) {
      BERTH_TRY(CopyData(*node, st.st_size));
    }
    for (const auto& extra : additional_links) {
      archive_entry_set_pathname(e.get(), extra.c_str());
      archive_entry_set_hardlink(e.get(), name.c_str());
      archive_entry_set_size(e.get(), 0);
      BERTH_TRY(IncludeParents(extra, false));
      BERTH_TRY(WriteHeader(e.get(), extra));
    }
    return Ok();
  }

  Error ArchiveError(std::string_view what) {
    if (error_) return std::move(*error_).Wrap(what);
    const char* msg = archive_error_string(a_.get());
    return Unknown(fmt::format("{}: {}", what, msg != nullptr ? msg : "unknown error"));
  }

  Sink& Out() { return out_; }
  std::optional<Error>& PendingError() { return error_; }

 private:
  Status WriteHeader(archive_entry* e, const std::string& name) {
    if (archive_write_header(a_.get(), e) < ARCHIVE_WARN) {
      return ArchiveError(fmt::format("write tar header {:?}", name));
    }
    return Ok();
  }

  Status CopyData(const Node& node, int64_t size) {
    fs::UniqueFd fd(::openat(node.dirfd, node.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.Valid()) return SysError("open \"{}\"", node.path);
    std::vector<char> buf(256 << 10);
    int64_t total = 0;
    for (;;) {
      ssize_t n = ::read(fd.Get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return SysError("read \"{}\"", node.path);
      }
      if (n == 0) break;
      n = std::min<ssize_t>(n, size - total);  // never more than the header promised
      if (n > 0 && archive_write_data(a_.get(), buf.data(), static_cast<size_t>(n)) < 0) {
        return ArchiveError(fmt::format("write \"{}\"", node.path));
      }
      total += n;
      if (total == size) break;
    }
    if (total != size) return Unknown(fmt::format("short write copying file \"{}\"", node.path));
    return Ok();
  }

  // containerd's includeParents: writes the parent directory of `name` (and, recursively, its
  // parents) unless already written.
  Status IncludeParents(const std::string& name, bool is_dir) {
    std::string trimmed = name;
    while (trimmed.ends_with('/')) trimmed.pop_back();
    auto [parent, base] = SplitParent(trimmed);
    if (!trimmed.empty() && !parent.empty() && added_dirs_.count(parent) == 0) {
      added_dirs_.insert(parent);
      auto [gp, pb] = SplitParent(parent);
      BERTH_ASSIGN_OR_RETURN(auto gfd, OpenBeneath(upper_fd_, gp, O_RDONLY | O_DIRECTORY));
      Node n{.path = "/" + parent, .dirfd = gfd.Get(), .name = pb};
      if (::fstatat(gfd.Get(), pb.c_str(), &n.st, AT_SYMLINK_NOFOLLOW) != 0)
        return SysError("stat \"{}\"", parent);
      BERTH_TRY(HandleChange(Kind::kModify, parent, &n));
    }
    if (is_dir) added_dirs_.insert(trimmed);
    return Ok();
  }

  Sink& out_;
  int upper_fd_;
  time_t whiteout_time_;
  std::unique_ptr<struct archive, ArchiveFree> a_;
  std::optional<Error> error_;
  std::map<ino_t, std::string> inode_src_;
  std::map<ino_t, std::vector<std::string>> inode_refs_;
  std::set<std::string> added_dirs_;
};

la_ssize_t WriteCallback(struct archive* /*a*/, void* client, const void* buf, size_t n) {
  auto* w = static_cast<ChangeWriter*>(client);
  if (auto s = w->Out().Write({static_cast<const char*>(buf), n}); !s) {
    w->PendingError() = std::move(s).error();
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

// continuity's doubleWalkDiff.
Status DoubleWalk(TreeWalker& lower, TreeWalker& upper, ChangeWriter& cw) {
  std::optional<Node> f1, f2;
  bool lower_done = false, upper_done = false;
  std::string rmdir;
  for (;;) {
    if (!f1 && !lower_done) {
      BERTH_ASSIGN_OR_RETURN(f1, lower.Next());
      lower_done = !f1;
    }
    if (!f2 && !upper_done) {
      BERTH_ASSIGN_OR_RETURN(f2, upper.Next());
      upper_done = !f2;
    }
    if (!f1 && !f2) return Ok();
    int cmp = !f1 ? 1 : (!f2 ? -1 : DirectoryCompare(f1->path, f2->path));
    if (cmp > 0) {  // added
      rmdir.clear();
      BERTH_TRY(cw.HandleChange(Kind::kAdd, f2->path, &*f2));
      f2.reset();
    } else if (cmp < 0) {  // deleted
      if (!rmdir.empty() && f1->path.starts_with(rmdir)) {
        f1.reset();
        continue;
      }
      if (S_ISDIR(f1->st.st_mode)) {
        rmdir = f1->path + "/";
      } else {
        rmdir.clear();
      }
      BERTH_TRY(cw.HandleChange(Kind::kDelete, f1->path, nullptr));
      f1.reset();
    } else {
      BERTH_ASSIGN_OR_RETURN(bool same, SameFile(*f1, *f2));
      if (S_ISDIR(f1->st.st_mode) && !S_ISDIR(f2->st.st_mode)) {
        rmdir = f1->path + "/";
      } else {
        rmdir.clear();
      }
      Kind k = Kind::kModify;
      if (same) {
        if (!IsLinked(f2->st)) {
          f1.reset();
          f2.reset();
          continue;
        }
        k = Kind::kUnmodified;
      }
      BERTH_TRY(cw.HandleChange(k, f2->path, &*f2));
      f1.reset();
      f2.reset();
    }
  }
}

}  // namespace

Status WriteDiff(const std::string& lower, const std::string& upper, Sink& out) {
  BERTH_ASSIGN_OR_RETURN(auto lw, TreeWalker::Open(lower));
  BERTH_ASSIGN_OR_RETURN(auto uw, TreeWalker::Open(upper));
  fs::UniqueFd upper_fd(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!upper_fd.Valid()) return SysError("open {}", upper);
  Utf8Locale locale;
  ChangeWriter cw(out, upper_fd.Get());
  BERTH_TRY(cw.Open());
  if (auto s = DoubleWalk(lw, uw, cw); !s) {
    return std::move(s).error().Wrap("failed to create diff tar stream");
  }
  return cw.Close();
}

}  // namespace berth::diff

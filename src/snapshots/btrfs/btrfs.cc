#include "snapshots/btrfs/btrfs.h"

#include <btrfsutil.h>
#include <dirent.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/log.h"
#include "plugin/plugin.h"
#include "snapshots/storage/fsutil.h"
#include "snapshots/storage/usage.h"

namespace berth::snapshots::btrfs {
namespace {

constexpr Kind kDirKinds[] = {Kind::kActive, Kind::kView, Kind::kCommitted};

Error BtrfsError(btrfs_util_error err, const std::string& what) {
  int e = errno;
  std::string text = fmt::format("{}: {}", what, btrfs_util_strerror(err));
  return e != 0 ? ErrnoError(e, text) : Unknown(text);
}

// "\040" -> " " etc., as the kernel escapes mountinfo paths.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t j = 1; j <= 3 && ok; ++j) {
        char c = s[i + j];
        ok = c >= '0' && c <= '7';
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

struct MountEntry {
  std::string fstype;
  std::string source;
};

// The mount holding `path` (containerd's mount.Lookup): the longest mount point that is `path` or
// one of its parents; among equals the last (topmost) one.
Result<MountEntry> LookupMount(const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(auto text, fs::ReadFile("/proc/self/mountinfo"));
  std::istringstream in(text);
  std::string line;
  size_t best = 0;
  std::optional<MountEntry> found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mountpoint;
    fields >> id >> parent >> devno >> root >> mountpoint;
    auto sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream tail(line.substr(sep + 3));
    MountEntry e;
    tail >> e.fstype >> e.source;
    mountpoint = Unescape(mountpoint);
    bool covers = mountpoint == "/" || path == mountpoint ||
                  (path.starts_with(mountpoint) && path[mountpoint.size()] == '/');
    if (covers && mountpoint.size() >= best) {
      best = mountpoint.size();
      e.source = Unescape(e.source);
      found = std::move(e);
    }
  }
  if (!found) return NotFound("no mount holds " + path);
  return *found;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* de = ::readdir(d)) {
      if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) {
        names.emplace_back(de->d_name);
      }
    }
    ::closedir(d);
  }
  return names;
}

// Deletes a subvolume, or a plain directory (a leftover of something else).
Status DeletePath(const std::string& path) {
  errno = 0;
  btrfs_util_error err = btrfs_util_is_subvolume(path.c_str());
  if (err == BTRFS_UTIL_OK) {
    errno = 0;
    err = btrfs_util_delete_subvolume(path.c_str(), 0);
    return err == BTRFS_UTIL_OK ? Ok() : Status(BtrfsError(err, "delete subvolume " + path));
  }
  if (err == BTRFS_UTIL_ERROR_STATFS_FAILED || err == BTRFS_UTIL_ERROR_STAT_FAILED) {
    if (errno == ENOENT) return Ok();
  }
  return fs::RemoveAll(path);
}

void DeleteLogged(const std::string& path) {
  if (auto s = DeletePath(path); !s) {
    log::L().WithError(s.error()).With("subvolume", path).Warn("failed to delete subvolume");
  }
}

bool SameCtime(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_ctim.tv_sec == b.st_ctim.tv_sec &&
         a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

// Usage of what `dir` adds or changes over `base` (a snapshot of which `dir` started as).
Status DiffUsage(const std::string& base, const std::string& dir,
                 std::set<std::pair<dev_t, ino_t>>& seen, snapshots::Usage& usage) {
  for (const auto& name : ListDir(dir)) {
    std::string p = dir + "/" + name;
    std::string b = base + "/" + name;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoError(errno, "stat " + p);
    }
    struct stat bst {};
    bool in_base = ::lstat(b.c_str(), &bst) == 0;
    if ((!in_base || !SameCtime(st, bst)) && seen.emplace(st.st_dev, st.st_ino).second) {
      ++usage.inodes;
      usage.size += static_cast<int64_t>(st.st_blocks) * 512;
    }
    if (S_ISDIR(st.st_mode)) {
      if (in_base && S_ISDIR(bst.st_mode)) {
        BERTH_TRY(DiffUsage(b, p, seen, usage));
      } else {
        BERTH_ASSIGN_OR_RETURN(auto du, storage::DiskUsage(p));
        usage.inodes += du.inodes - 1;  // the directory itself was counted above
        usage.size += du.size - static_cast<int64_t>(st.st_blocks) * 512;
      }
    }
  }
  return Ok();
}

}  // namespace

std::string Snapshotter::Dir(Kind kind, const std::string& id) const {
  switch (kind) {
    case Kind::kActive:
      return root_ + "/active/" + id;
    case Kind::kView:
      return root_ + "/view/" + id;
    default:
      return root_ + "/snapshots/" + id;
  }
}

Result<std::unique_ptr<Snapshotter>> Snapshotter::Open(const std::string& root) {
  BERTH_ASSIGN_OR_RETURN(std::string abs, storage::PrepareRoot(root));
  if (::chmod(abs.c_str(), 0700) != 0) return ErrnoError(errno, "chmod " + abs);
  struct statfs sfs {};
  if (::statfs(abs.c_str(), &sfs) != 0) return ErrnoError(errno, "statfs " + abs);
  auto mnt = LookupMount(abs);
  if (sfs.f_type != BTRFS_SUPER_MAGIC) {
    return plugin::Skip(
        fmt::format("path {} ({}) must be a btrfs filesystem to be used with the btrfs snapshotter",
                    abs, mnt ? mnt->fstype : "unknown"));
  }
  if (!mnt) return std::move(mnt).error();
  for (const char* dir : {"active", "view", "snapshots"}) {
    std::string path = abs + "/" + dir;
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir " + path);
    }
  }
  BERTH_ASSIGN_OR_RETURN(auto ms, storage::MetaStore::Open(abs + "/metadata.db"));
  return std::unique_ptr<Snapshotter>(
      new Snapshotter(std::move(abs), std::move(mnt->source), std::move(ms)));
}

Result<snapshots::Info> Snapshotter::Stat(const Context&, const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
  BERTH_ASSIGN_OR_RETURN(auto rec, t.GetInfo(key));
  return rec.info;
}

Result<snapshots::Info> Snapshotter::Update(const Context&, const snapshots::Info& info,
                                            const std::vector<std::string>& fieldpaths) {
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  BERTH_ASSIGN_OR_RETURN(auto updated, t.UpdateInfo(info, fieldpaths));
  BERTH_TRY(t.Commit());
  return updated;
}

Result<snapshots::Usage> Snapshotter::ComputeUsage(const std::string& key, std::string* id) {
  storage::Record rec;
  std::string parent_id;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
    BERTH_ASSIGN_OR_RETURN(rec, t.GetInfo(key));
    if (rec.info.kind == Kind::kActive && !rec.info.parent.empty()) {
      BERTH_ASSIGN_OR_RETURN(auto p, t.GetInfo(rec.info.parent));
      parent_id = p.id;
    }
  }
  if (id != nullptr) *id = rec.id;
  if (rec.info.kind != Kind::kActive) return rec.usage;
  std::string dir = Dir(Kind::kActive, rec.id);
  if (parent_id.empty()) return storage::DiskUsage(dir);
  snapshots::Usage usage;
  std::set<std::pair<dev_t, ino_t>> seen;
  BERTH_TRY(DiffUsage(Dir(Kind::kCommitted, parent_id), dir, seen, usage));
  return usage;
}

Result<snapshots::Usage> Snapshotter::Usage(const Context&, const std::string& key) {
  return ComputeUsage(key, nullptr);
}

Status Snapshotter::Walk(const Context&, const std::function<Status(const snapshots::Info&)>& fn,
                         const std::vector<std::string>& filters) {
  std::vector<snapshots::Info> infos;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
    BERTH_TRY(t.WalkInfo(filters, [&](const storage::Record& r) {
      infos.push_back(r.info);
      return Ok();
    }));
  }
  for (const auto& info : infos) BERTH_TRY(fn(info));
  return Ok();
}

Result<std::vector<mount::Mount>> Snapshotter::Prepare(const Context&, const std::string& key,
                                                       const std::string& parent,
                                                       const Labels& labels) {
  return CreateSnapshot(Kind::kActive, key, parent, labels);
}

Result<std::vector<mount::Mount>> Snapshotter::View(const Context&, const std::string& key,
                                                    const std::string& parent,
                                                    const Labels& labels) {
  return CreateSnapshot(Kind::kView, key, parent, labels);
}

Result<std::vector<mount::Mount>> Snapshotter::CreateSnapshot(Kind kind, const std::string& key,
                                                              const std::string& parent,
                                                              const Labels& labels) {
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  BERTH_ASSIGN_OR_RETURN(auto s, t.CreateSnapshot(kind, key, parent, labels));
  std::string target = Dir(kind, s.id);
  // A crash after creating the subvolume but before the commit leaves one with this id.
  BERTH_TRY(DeletePath(target));
  errno = 0;
  btrfs_util_error err;
  if (s.parent_ids.empty()) {
    err = btrfs_util_create_subvolume(target.c_str(), 0, nullptr, nullptr);
  } else {
    std::string source = Dir(Kind::kCommitted, s.parent_ids.front());
    int flags = kind == Kind::kView ? BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY : 0;
    err = btrfs_util_create_snapshot(source.c_str(), target.c_str(), flags, nullptr, nullptr);
  }
  if (err != BTRFS_UTIL_OK) return BtrfsError(err, "create subvolume " + target);
  storage::ScopeExit undo([&] { DeleteLogged(target); });  // runs while we hold the transaction
  BERTH_ASSIGN_OR_RETURN(auto mounts, MountsFor(target, kind));
  undo.Dismiss();
  // If the commit fails the subvolume stays: once the transaction is gone the id may be handed
  // out again, and its next owner (under its transaction) or Cleanup deletes it.
  BERTH_TRY(t.Commit());
  return mounts;
}

Result<std::vector<mount::Mount>> Snapshotter::MountsFor(const std::string& dir, Kind kind) const {
  uint64_t subvol = 0;
  errno = 0;
  if (auto err = btrfs_util_subvolume_id(dir.c_str(), &subvol); err != BTRFS_UTIL_OK) {
    return BtrfsError(err, "subvolume id of " + dir);
  }
  std::vector<std::string> options{fmt::format("subvolid={}", subvol)};
  if (kind != Kind::kActive) options.emplace_back("ro");
  return std::vector<mount::Mount>{
      {.type = "btrfs", .source = device_, .target = "", .options = std::move(options)}};
}

Result<std::vector<mount::Mount>> Snapshotter::Mounts(const Context&, const std::string& key) {
  storage::Snapshot s;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
    BERTH_ASSIGN_OR_RETURN(s, t.GetSnapshot(key));
  }
  return MountsFor(Dir(s.kind, s.id), s.kind);
}

Status Snapshotter::Commit(const Context&, const std::string& name, const std::string& key,
                           const Labels& labels) {
  std::string expected_id;
  BERTH_ASSIGN_OR_RETURN(auto usage, ComputeUsage(key, &expected_id));
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  BERTH_ASSIGN_OR_RETURN(auto id, t.CommitActive(key, name, usage, labels));
  if (id != expected_id) {
    return Error(Errc::kAborted, fmt::format("snapshot {} changed during commit", key));
  }
  std::string source = Dir(Kind::kActive, id);
  std::string target = Dir(Kind::kCommitted, id);
  BERTH_TRY(DeletePath(target));
  errno = 0;
  auto err = btrfs_util_create_snapshot(source.c_str(), target.c_str(),
                                        BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY, nullptr, nullptr);
  if (err != BTRFS_UTIL_OK) return BtrfsError(err, "snapshot " + source);
  storage::ScopeExit undo([&] { DeleteLogged(target); });
  BERTH_TRY(t.Commit());
  undo.Dismiss();
  DeleteLogged(source);  // only space: the name is free either way, Cleanup retries
  return Ok();
}

Status Snapshotter::Remove(const Context&, const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  BERTH_ASSIGN_OR_RETURN(auto removed, t.Remove(key));
  std::string source = Dir(removed.kind, removed.id);
  std::string renamed = Dir(removed.kind, "rm-" + removed.id);
  bool moved = ::rename(source.c_str(), renamed.c_str()) == 0;
  if (!moved && errno != ENOENT) {
    return ErrnoError(errno, fmt::format("failed to rename {} to {}", source, renamed));
  }
  if (auto s = t.Commit(); !s) {
    if (moved && ::rename(renamed.c_str(), source.c_str()) != 0) {
      log::L().With("subvolume", renamed).Error("failed to restore subvolume after failed commit");
    }
    return s;
  }
  if (moved) DeleteLogged(renamed);
  return Ok();
}

Status Snapshotter::Cleanup(const Context&) {
  // Under the write transaction: creators hold it while a subvolume is not yet recorded.
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  std::set<std::string> owned;  // "<dir>" paths stored snapshots use
  BERTH_TRY(t.WalkInfo({}, [&](const storage::Record& r) {
    owned.insert(Dir(r.info.kind, r.id));
    return Ok();
  }));
  for (Kind kind : kDirKinds) {
    std::string dir = Dir(kind, "");
    dir.pop_back();
    for (const auto& name : ListDir(dir)) {
      std::string path = dir + "/" + name;
      if (!owned.contains(path)) DeleteLogged(path);
    }
  }
  return Ok();
}

}  // namespace berth::snapshots::btrfs

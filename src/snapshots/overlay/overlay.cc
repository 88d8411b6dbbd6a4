#include "snapshots/overlay/overlay.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/log.h"
#include "snapshots/storage/fsutil.h"
#include "snapshots/storage/usage.h"

namespace berth::snapshots::overlay {
namespace {

constexpr const char* kLinkDir = "l";

// containerd's supportsIndex(): index=off is only accepted where the module has the parameter.
bool SupportsIndex() { return ::access("/sys/module/overlay/parameters/index", F_OK) == 0; }

// overlayutils.NeedsUserXAttr, simplified: outside a user namespace trusted.* xattrs work; inside
// one, kernels >= 5.11 accept (and need) userxattr.
bool NeedsUserXattr() {
  auto map = fs::ReadFile("/proc/self/uid_map");
  if (!map) return false;
  unsigned inner = 0;
  unsigned outer = 0;
  unsigned long long len = 0;
  bool initial_ns = std::sscanf(map->c_str(), "%u %u %llu", &inner, &outer, &len) == 3 &&
                    inner == 0 && outer == 0 && len == 4294967295ULL;
  if (initial_ns) return false;
  struct utsname u {};
  int major = 0;
  int minor = 0;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 5 || (major == 5 && minor >= 11);
}

// Ids are the metastore's decimal numbers.
uint64_t IdNumber(const std::string& id) {
  uint64_t v = 0;
  std::from_chars(id.data(), id.data() + id.size(), v);
  return v;
}

std::string Base36(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[v % 36]);
    v /= 36;
  } while (v != 0);
  return out;
}

std::optional<uint64_t> ParseBase36(std::string_view s) {
  if (s.empty() || s.size() > 12) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'z') ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v * 36 + static_cast<uint64_t>(d);
  }
  return v;
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

size_t DataBytes(const std::vector<std::string>& options) {
  size_t n = 0;
  for (const auto& o : options) n += o.size() + 1;  // joined by ","
  return n;
}

}  // namespace

Result<std::unique_ptr<Snapshotter>> Snapshotter::Open(const std::string& root, Options options) {
  BERTH_ASSIGN_OR_RETURN(std::string abs, storage::PrepareRoot(root));
  BERTH_ASSIGN_OR_RETURN(bool dtype, storage::SupportsDType(abs));
  if (!dtype) {
    return FailedPrecondition(
        fmt::format("{} does not support d_type. If the backing filesystem is xfs, please "
                    "reformat with ftype=1 to enable d_type support",
                    abs));
  }
  BERTH_ASSIGN_OR_RETURN(auto ms, storage::MetaStore::Open(abs + "/metadata.db"));
  for (const char* dir : {"snapshots", kLinkDir}) {
    std::string path = abs + "/" + dir;
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir " + path);
    }
  }
  return std::unique_ptr<Snapshotter>(new Snapshotter(std::move(abs), options, std::move(ms)));
}

Snapshotter::Snapshotter(std::string root, Options options, std::unique_ptr<storage::MetaStore> ms)
    : root_(std::move(root)),
      options_(options),
      ms_(std::move(ms)),
      index_off_(SupportsIndex()),
      userxattr_(NeedsUserXattr()) {
  long page = ::sysconf(_SC_PAGESIZE);
  max_option_bytes_ = static_cast<size_t>(page > 0 ? page : 4096) - 512;
}

std::string Snapshotter::UpperPath(const std::string& id) const {
  return root_ + "/snapshots/" + id + "/fs";
}

std::string Snapshotter::WorkPath(const std::string& id) const {
  return root_ + "/snapshots/" + id + "/work";
}

void Snapshotter::AddUpperdirLabel(const std::string& id, snapshots::Info& info) const {
  if (options_.upperdir_label) info.labels[kUpperdirLabel] = UpperPath(id);
}

Result<snapshots::Info> Snapshotter::Stat(const Context&, const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
  BERTH_ASSIGN_OR_RETURN(auto rec, t.GetInfo(key));
  AddUpperdirLabel(rec.id, rec.info);
  return rec.info;
}

Result<snapshots::Info> Snapshotter::Update(const Context&, const snapshots::Info& info,
                                            const std::vector<std::string>& fieldpaths) {
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  BERTH_ASSIGN_OR_RETURN(auto updated, t.UpdateInfo(info, fieldpaths));
  if (options_.upperdir_label) {
    BERTH_ASSIGN_OR_RETURN(auto rec, t.GetInfo(info.name));
    AddUpperdirLabel(rec.id, updated);
  }
  BERTH_TRY(t.Commit());
  return updated;
}

Result<snapshots::Usage> Snapshotter::Usage(const Context&, const std::string& key) {
  storage::Record rec;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
    BERTH_ASSIGN_OR_RETURN(rec, t.GetInfo(key));
  }
  if (rec.info.kind == Kind::kActive) return storage::DiskUsage(UpperPath(rec.id));
  return rec.usage;
}

Result<std::vector<mount::Mount>> Snapshotter::Mounts(const Context&, const std::string& key) {
  storage::Snapshot s;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
    BERTH_ASSIGN_OR_RETURN(s, t.GetSnapshot(key));
  }
  return MountsFor(s);
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
  // As containerd: the whole build happens under the write transaction, so Cleanup (which also
  // takes it) never sees a half-built new-XXXXXX directory.
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  std::string snapshot_dir = root_ + "/snapshots";
  BERTH_ASSIGN_OR_RETURN(std::string td, storage::MakeTempDir(snapshot_dir, "new-"));
  std::string path;  // the final directory once renamed
  storage::ScopeExit undo([&] {
    for (const auto& dir : {td, path}) {
      if (dir.empty()) continue;
      if (auto s = fs::RemoveAll(dir); !s) {
        log::L().WithError(s.error()).With("path", dir).Warn("failed to remove snapshot directory");
      }
    }
  });

  if (::mkdir((td + "/fs").c_str(), 0755) != 0) return ErrnoError(errno, "mkdir " + td + "/fs");
  if (::chmod((td + "/fs").c_str(), 0755) != 0) return ErrnoError(errno, "chmod " + td + "/fs");
  if (kind == Kind::kActive && ::mkdir((td + "/work").c_str(), 0711) != 0) {
    return ErrnoError(errno, "mkdir " + td + "/work");
  }

  BERTH_ASSIGN_OR_RETURN(auto s, t.CreateSnapshot(kind, key, parent, labels));
  if (!s.parent_ids.empty()) {
    struct stat st {};
    std::string pfs = UpperPath(s.parent_ids.front());
    if (::stat(pfs.c_str(), &st) != 0) return ErrnoError(errno, "failed to stat parent " + pfs);
    if (::lchown((td + "/fs").c_str(), st.st_uid, st.st_gid) != 0) {
      return ErrnoError(errno, "failed to chown " + td + "/fs");
    }
  }

  // A crash between rename and commit leaves snapshots/<id> behind while the id goes back to the
  // pool; nobody owns it (we hold the write transaction), so it goes.
  std::string target = snapshot_dir + "/" + s.id;
  BERTH_TRY(fs::RemoveAll(target));
  if (::rename(td.c_str(), target.c_str()) != 0) {
    return ErrnoError(errno, fmt::format("failed to rename {} to {}", td, target));
  }
  td.clear();
  path = target;

  BERTH_ASSIGN_OR_RETURN(auto mounts, MountsFor(s));
  if (auto committed = t.Commit(); !committed) {
    // The transaction is gone and the id may be handed out again: deleting now could race the
    // next owner. The next creator of this id (under its transaction) or Cleanup removes it.
    path.clear();
    return std::move(committed).error();
  }
  undo.Dismiss();
  return mounts;
}

Status Snapshotter::Commit(const Context&, const std::string& name, const std::string& key,
                           const Labels& labels) {
  // du runs outside the write transaction (a big layer would stall every other writer); the id
  // check below catches a key removed and re-created meanwhile.
  storage::Record rec;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
    BERTH_ASSIGN_OR_RETURN(rec, t.GetInfo(key));
  }
  snapshots::Usage usage;
  if (rec.info.kind == Kind::kActive) {
    BERTH_ASSIGN_OR_RETURN(usage, storage::DiskUsage(UpperPath(rec.id)));
  }
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  BERTH_ASSIGN_OR_RETURN(auto id, t.CommitActive(key, name, usage, labels));
  if (id != rec.id) {
    return Error(Errc::kAborted, fmt::format("snapshot {} changed during commit", key));
  }
  return t.Commit();
}

Status Snapshotter::Remove(const Context&, const std::string& key) {
  storage::Removed removed;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
    BERTH_ASSIGN_OR_RETURN(removed, t.Remove(key));
    BERTH_TRY(t.Commit());
  }
  if (!options_.async_remove) {
    // The id is never handed out again, so nothing races for these paths. Failures only leave
    // work for Cleanup: the removal itself is committed.
    std::string dir = root_ + "/snapshots/" + removed.id;
    if (auto s = fs::RemoveAll(dir); !s) {
      log::L().WithError(s.error()).With("path", dir).Warn("failed to remove directory");
    }
    ::unlink((root_ + "/" + kLinkDir + "/" + Base36(IdNumber(removed.id))).c_str());
  }
  return Ok();
}

Status Snapshotter::Walk(const Context&, const std::function<Status(const snapshots::Info&)>& fn,
                         const std::vector<std::string>& filters) {
  // Collected first: fn may call back into the snapshotter, and no transaction should stay open
  // for as long as a caller likes.
  std::vector<storage::Record> records;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
    BERTH_TRY(t.WalkInfo(filters, [&](const storage::Record& r) {
      records.push_back(r);
      return Ok();
    }));
  }
  for (auto& r : records) {
    AddUpperdirLabel(r.id, r.info);
    BERTH_TRY(fn(r.info));
  }
  return Ok();
}

Status Snapshotter::Cleanup(const Context&) {
  std::vector<std::string> doomed;
  {
    // The write transaction keeps creators out while we decide what is orphaned; orphans are
    // renamed to rm-* (which no id can collide with) and deleted after it is released.
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
    BERTH_ASSIGN_OR_RETURN(auto ids, t.IdMap());
    std::string snapshot_dir = root_ + "/snapshots";
    for (const auto& name : ListDir(snapshot_dir)) {
      if (ids.contains(name)) continue;
      std::string path = snapshot_dir + "/" + name;
      if (!name.starts_with("rm-") && !name.starts_with("new-")) {
        // A numeric orphan's id may be handed out again: it must be gone before we let go.
        std::string renamed = snapshot_dir + "/rm-" + name;
        if (::rename(path.c_str(), renamed.c_str()) != 0) {
          if (auto s = fs::RemoveAll(path); !s) {
            log::L().WithError(s.error()).With("path", path).Warn("failed to remove directory");
          }
          continue;
        }
        path = renamed;
      }
      doomed.push_back(path);
    }
    std::string link_dir = root_ + "/" + kLinkDir;
    for (const auto& name : ListDir(link_dir)) {
      auto id = ParseBase36(name);
      if (!id || !ids.contains(std::to_string(*id))) ::unlink((link_dir + "/" + name).c_str());
    }
  }
  for (const auto& path : doomed) {
    if (auto s = fs::RemoveAll(path); !s) {
      log::L().WithError(s.error()).With("path", path).Warn("failed to remove directory");
    }
  }
  return Ok();
}

Result<std::string> Snapshotter::ShortLink(const std::string& id) {
  std::string link = root_ + "/" + kLinkDir + "/" + Base36(IdNumber(id));
  std::string target = "../snapshots/" + id + "/fs";
  if (::symlink(target.c_str(), link.c_str()) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "symlink " + link);
  }
  // Ids are never reused, so an existing link already points at this snapshot.
  return link;
}

Result<std::vector<mount::Mount>> Snapshotter::MountsFor(const storage::Snapshot& s) {
  if (s.parent_ids.empty()) {
    // One layer: overlay needs a lowerdir, so a bind mount does it.
    return std::vector<mount::Mount>{{.type = "bind",
                                      .source = UpperPath(s.id),
                                      .target = "",
                                      .options = {s.kind == Kind::kView ? "ro" : "rw", "rbind"}}};
  }
  if (s.kind != Kind::kActive && s.parent_ids.size() == 1) {
    return std::vector<mount::Mount>{{.type = "bind",
                                      .source = UpperPath(s.parent_ids.front()),
                                      .target = "",
                                      .options = {"ro", "rbind"}}};
  }
  std::vector<std::string> options;
  if (index_off_) options.emplace_back("index=off");
  if (userxattr_) options.emplace_back("userxattr");
  if (s.kind == Kind::kActive) {
    options.push_back("workdir=" + WorkPath(s.id));
    options.push_back("upperdir=" + UpperPath(s.id));
  }
  std::string lower = "lowerdir=";
  for (size_t i = 0; i < s.parent_ids.size(); ++i) {
    if (i > 0) lower += ':';
    lower += UpperPath(s.parent_ids[i]);
  }
  if (DataBytes(options) + lower.size() > max_option_bytes_) {
    lower = "lowerdir=";
    for (size_t i = 0; i < s.parent_ids.size(); ++i) {
      BERTH_ASSIGN_OR_RETURN(auto link, ShortLink(s.parent_ids[i]));
      if (i > 0) lower += ':';
      lower += link;
    }
  }
  options.push_back(std::move(lower));
  return std::vector<mount::Mount>{
      {.type = "overlay", .source = "overlay", .target = "", .options = std::move(options)}};
}

}  // namespace berth::snapshots::overlay

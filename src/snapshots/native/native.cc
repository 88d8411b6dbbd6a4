#include "snapshots/native/native.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "common/fs.h"
#include "common/log.h"
#include "snapshots/native/copy.h"
#include "snapshots/storage/fsutil.h"
#include "snapshots/storage/usage.h"

namespace berth::snapshots::native {
namespace {

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

void RemoveLogged(const std::string& path) {
  if (auto s = fs::RemoveAll(path); !s) {
    log::L().WithError(s.error()).With("path", path).Warn("failed to remove directory");
  }
}

}  // namespace

Result<std::unique_ptr<Snapshotter>> Snapshotter::Open(const std::string& root) {
  BERTH_ASSIGN_OR_RETURN(std::string abs, storage::PrepareRoot(root));
  BERTH_ASSIGN_OR_RETURN(auto ms, storage::MetaStore::Open(abs + "/metadata.db"));
  std::string snapshots = abs + "/snapshots";
  if (::mkdir(snapshots.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "mkdir " + snapshots);
  }
  return std::unique_ptr<Snapshotter>(new Snapshotter(std::move(abs), std::move(ms)));
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

Result<snapshots::Usage> Snapshotter::Usage(const Context&, const std::string& key) {
  storage::Record rec;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
    BERTH_ASSIGN_OR_RETURN(rec, t.GetInfo(key));
  }
  if (rec.info.kind == Kind::kActive) return storage::DiskUsage(Dir(rec.id));
  return rec.usage;
}

Result<std::vector<mount::Mount>> Snapshotter::Mounts(const Context&, const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
  BERTH_ASSIGN_OR_RETURN(auto s, t.GetSnapshot(key));
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
  const bool own_dir = kind == Kind::kActive || parent.empty();
  std::string td;
  std::string td_name;
  storage::ScopeExit undo([&] {
    if (!td.empty()) RemoveLogged(td);
    if (!td_name.empty()) {
      std::lock_guard lock(in_flight_mu_);
      in_flight_.erase(td_name);
    }
  });

  std::string copied_from;  // parent id whose tree was copied
  if (own_dir) {
    {
      std::lock_guard lock(in_flight_mu_);
      BERTH_ASSIGN_OR_RETURN(td, storage::MakeTempDir(root_ + "/snapshots", "new-"));
      td_name = td.substr(td.find_last_of('/') + 1);
      in_flight_.insert(td_name);
    }
    if (::chmod(td.c_str(), 0755) != 0) return ErrnoError(errno, "chmod " + td);
    if (!parent.empty()) {
      // Copy only when the request can succeed; otherwise the transaction below reports why.
      std::optional<storage::Record> p;
      {
        BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
        auto existing = t.GetInfo(key);
        auto rec = t.GetInfo(parent);
        if (!existing && rec && rec->info.kind == Kind::kCommitted) p = std::move(*rec);
      }
      if (p) {
        if (auto s = CopyDir(td, Dir(p->id)); !s) {
          return std::move(s).error().Wrap("copying of parent failed");
        }
        copied_from = p->id;
      }
    }
  }

  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  BERTH_ASSIGN_OR_RETURN(auto s, t.CreateSnapshot(kind, key, parent, labels));
  if (own_dir) {
    if (!s.parent_ids.empty() && s.parent_ids.front() != copied_from) {
      return Error(Errc::kAborted,
                   fmt::format("parent \"{}\" of snapshot {} changed while copying", parent, key));
    }
    // A crash between rename and commit leaves snapshots/<id> behind while the id goes back to
    // the pool; we hold the write transaction, so nobody owns it.
    std::string target = Dir(s.id);
    BERTH_TRY(fs::RemoveAll(target));
    if (::rename(td.c_str(), target.c_str()) != 0) {
      return ErrnoError(errno, fmt::format("failed to rename {} to {}", td, target));
    }
    td.clear();
  }
  // If the commit fails, the renamed tree stays: the id may be handed out again once the
  // transaction is gone, and its next owner (under its transaction) or Cleanup removes it.
  BERTH_TRY(t.Commit());
  return MountsFor(s);
}

std::vector<mount::Mount> Snapshotter::MountsFor(const storage::Snapshot& s) const {
  std::string source =
      s.parent_ids.empty() || s.kind == Kind::kActive ? Dir(s.id) : Dir(s.parent_ids.front());
  return {{.type = "bind",
           .source = std::move(source),
           .target = "",
           .options = {"rbind", s.kind == Kind::kView ? "ro" : "rw"}}};
}

Status Snapshotter::Commit(const Context&, const std::string& name, const std::string& key,
                           const Labels& labels) {
  storage::Record rec;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginRead());
    BERTH_ASSIGN_OR_RETURN(rec, t.GetInfo(key));
  }
  snapshots::Usage usage;
  if (rec.info.kind == Kind::kActive) {
    BERTH_ASSIGN_OR_RETURN(usage, storage::DiskUsage(Dir(rec.id)));
  }
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  BERTH_ASSIGN_OR_RETURN(auto id, t.CommitActive(key, name, usage, labels));
  if (id != rec.id) {
    return Error(Errc::kAborted, fmt::format("snapshot {} changed during commit", key));
  }
  return t.Commit();
}

Status Snapshotter::Remove(const Context&, const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
  BERTH_ASSIGN_OR_RETURN(auto removed, t.Remove(key));
  std::string path = Dir(removed.id);
  std::string renamed = root_ + "/snapshots/rm-" + removed.id;
  bool moved = ::rename(path.c_str(), renamed.c_str()) == 0;
  if (!moved && errno != ENOENT) {
    return ErrnoError(errno, fmt::format("failed to rename {} to {}", path, renamed));
  }
  if (auto s = t.Commit(); !s) {
    if (moved && ::rename(renamed.c_str(), path.c_str()) != 0) {
      log::L().With("path", renamed).Error("failed to rename back after failed commit");
    }
    return s;
  }
  if (moved) RemoveLogged(renamed);  // what fails here, Cleanup finishes
  return Ok();
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

Status Snapshotter::Cleanup(const Context&) {
  std::vector<std::string> doomed;
  {
    BERTH_ASSIGN_OR_RETURN(auto t, ms_->BeginWrite());
    BERTH_ASSIGN_OR_RETURN(auto ids, t.IdMap());
    std::lock_guard lock(in_flight_mu_);
    std::string dir = root_ + "/snapshots";
    for (const auto& name : ListDir(dir)) {
      if (ids.contains(name) || in_flight_.contains(name)) continue;
      std::string path = dir + "/" + name;
      if (!name.starts_with("rm-") && !name.starts_with("new-")) {
        // A numeric orphan's id may be handed out again: it must be gone before we let go.
        std::string renamed = dir + "/rm-" + name;
        if (::rename(path.c_str(), renamed.c_str()) != 0) {
          RemoveLogged(path);
          continue;
        }
        path = renamed;
      }
      doomed.push_back(path);
    }
  }
  for (const auto& path : doomed) RemoveLogged(path);
  return Ok();
}

}  // namespace berth::snapshots::native

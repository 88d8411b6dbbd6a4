#include "metadata/snapshot_store.h"

#include <mutex>

#include <fmt/format.h>

#include "common/filters.h"
#include "metadata/leases.h"
#include "metadata/namespaces.h"

namespace berth::metadata {
namespace {

constexpr std::string_view kInheritedPrefix = "containerd.io/snapshot/";
constexpr std::string_view kSnapshotRef = "containerd.io/snapshot.ref";

Labels Inherited(const Labels& labels) {
  Labels out;
  for (const auto& [k, v] : labels) {
    if (k == kSnapshotRef || k.rfind(kInheritedPrefix, 0) == 0) out.emplace(k, v);
  }
  return out;
}

// The kind as filters spell it ("active", "view", "committed").
std::string KindFilterValue(snapshots::Kind k) {
  switch (k) {
    case snapshots::Kind::kActive:
      return "active";
    case snapshots::Kind::kView:
      return "view";
    case snapshots::Kind::kCommitted:
      return "committed";
    case snapshots::Kind::kUnknown:
      return "unknown";
  }
  return "unknown";
}

}  // namespace

Result<snapshots::Info> SnapshotStore::Stat(const Context& ctx, const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  std::optional<std::string> bkey;
  snapshots::Info info{.name = key};
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    Key k = NsKey(ns, {kBucketSnapshots, name_, key});
    BERTH_ASSIGN_OR_RETURN(bkey, txn.Get([&] {
      Key c = k;
      c.push_back("name");
      return c;
    }()));
    if (!bkey) return NotFound(fmt::format("snapshot {} does not exist", key));
    auto get = [&](const char* field) -> Result<std::optional<std::string>> {
      Key c = k;
      c.push_back(field);
      return txn.Get(c);
    };
    BERTH_ASSIGN_OR_RETURN(auto parent, get("parent"));
    BERTH_ASSIGN_OR_RETURN(auto created, get("createdat"));
    BERTH_ASSIGN_OR_RETURN(auto updated, get("updatedat"));
    info.parent = parent.value_or("");
    info.created = DecodeTime(created.value_or(""));
    info.updated = DecodeTime(updated.value_or(""));
    Key lk = k;
    lk.push_back("labels");
    BERTH_ASSIGN_OR_RETURN(info.labels, ReadLabels(txn, lk));
    return Ok();
  }));
  BERTH_ASSIGN_OR_RETURN(snapshots::Info backend, backend_.Stat({}, *bkey));
  info.kind = backend.kind;
  return info;
}

Result<snapshots::Info> SnapshotStore::Update(const Context& ctx, const snapshots::Info& in,
                                              const std::vector<std::string>& fieldpaths) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_TRY(labels::ValidateAll(in.labels));
  BERTH_ASSIGN_OR_RETURN(snapshots::Info cur, Stat(ctx, in.name));
  Labels updated = cur.labels;
  if (fieldpaths.empty()) updated = in.labels;
  for (const auto& path : fieldpaths) {
    if (path.rfind("labels.", 0) == 0) {
      std::string key = path.substr(7);
      auto it = in.labels.find(key);
      updated[key] = it == in.labels.end() ? "" : it->second;
    } else if (path == "labels") {
      updated = in.labels;
    } else {
      return InvalidArgument(
          fmt::format("cannot update {:?} field on snapshot {:?}", path, in.name));
    }
  }
  std::erase_if(updated, [](const auto& kv) { return kv.second.empty(); });
  cur.labels = updated;
  cur.updated = Now();
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    Key k = NsKey(ns, {kBucketSnapshots, name_, in.name});
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(k));
    if (!exists) return NotFound(fmt::format("snapshot {} does not exist", in.name));
    Key lk = k;
    lk.push_back("labels");
    BERTH_TRY(WriteLabels(txn, lk, updated));
    Key uk = k;
    uk.push_back("updatedat");
    return txn.Put(uk, EncodeTime(cur.updated));
  }));
  db_.NotifyMutation(false);
  return cur;
}

Result<std::string> SnapshotStore::BackendKey(const Context& ctx, const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  std::optional<std::string> bkey;
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(bkey, txn.Get(NsKey(ns, {kBucketSnapshots, name_, key, "name"})));
    return Ok();
  }));
  if (!bkey) return NotFound(fmt::format("snapshot {} does not exist", key));
  return *bkey;
}

Result<snapshots::Usage> SnapshotStore::Usage(const Context& ctx, const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(std::string bkey, BackendKey(ctx, key));
  return backend_.Usage({}, bkey);
}

Result<std::vector<mount::Mount>> SnapshotStore::Mounts(const Context& ctx,
                                                        const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(std::string bkey, BackendKey(ctx, key));
  return backend_.Mounts({}, bkey);
}

Result<std::vector<mount::Mount>> SnapshotStore::Prepare(const Context& ctx, const std::string& key,
                                                         const std::string& parent,
                                                         const Labels& labels) {
  return Create(ctx, key, parent, labels, false);
}

Result<std::vector<mount::Mount>> SnapshotStore::View(const Context& ctx, const std::string& key,
                                                      const std::string& parent,
                                                      const Labels& labels) {
  return Create(ctx, key, parent, labels, true);
}

Result<std::vector<mount::Mount>> SnapshotStore::Create(const Context& ctx, const std::string& key,
                                                        const std::string& parent,
                                                        const Labels& labels, bool readonly) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  if (key.empty()) return InvalidArgument("snapshot key must not be empty");
  BERTH_TRY(labels::ValidateAll(labels));
  std::shared_lock gc(db_.GcLock());
  std::string bkey;
  std::string bparent;
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_TRY(NamespaceStore::CreateIfMissing(txn, ns));
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(NsKey(ns, {kBucketSnapshots, name_, key})));
    if (exists) return AlreadyExists(fmt::format("snapshot {:?}", key));
    if (!parent.empty()) {
      BERTH_ASSIGN_OR_RETURN(auto pb,
                             txn.Get(NsKey(ns, {kBucketSnapshots, name_, parent, "name"})));
      if (!pb) return NotFound(fmt::format("parent snapshot {} does not exist", parent));
      bparent = *pb;
    }
    BERTH_ASSIGN_OR_RETURN(uint64_t seq, Db::NextSequence(txn));
    bkey = fmt::format("{}/{}/{}", ns, seq, key);
    return Ok();
  }));
  auto mounts = readonly ? backend_.View({}, bkey, bparent, Inherited(labels))
                         : backend_.Prepare({}, bkey, bparent, Inherited(labels));
  if (!mounts) {
    if (mounts.error().Is(Errc::kAlreadyExists)) {
      return Unknown(
          fmt::format("unexpected error from snapshotter: {}", mounts.error().ToString()));
    }
    return std::move(mounts).error();
  }
  Timestamp now = Now();
  auto recorded = db_.Update([&](Txn& txn) -> Status {
    Key k = NsKey(ns, {kBucketSnapshots, name_, key});
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(k));
    if (exists) return AlreadyExists(fmt::format("snapshot {:?}", key));
    auto put = [&](const char* field, const std::string& v) {
      Key c = k;
      c.push_back(field);
      return txn.Put(c, v);
    };
    if (!parent.empty()) {
      BERTH_ASSIGN_OR_RETURN(auto pb,
                             txn.Get(NsKey(ns, {kBucketSnapshots, name_, parent, "name"})));
      if (!pb || *pb != bparent) {
        return NotFound(fmt::format("parent snapshot {} does not exist", parent));
      }
      BERTH_TRY(txn.Put(NsKey(ns, {kBucketSnapshots, name_, parent, "children", key}), ""));
      BERTH_TRY(put("parent", parent));
    }
    BERTH_TRY(put("name", bkey));
    BERTH_TRY(put("createdat", EncodeTime(now)));
    BERTH_TRY(put("updatedat", EncodeTime(now)));
    Key lk = k;
    lk.push_back("labels");
    BERTH_TRY(WriteLabels(txn, lk, labels));
    return LeaseStore::AddToContextLease(txn, ctx, {"snapshots", name_}, key);
  });
  if (!recorded) {
    (void)backend_.Remove({}, bkey);  // undo: nothing refers to it
    return std::move(recorded).error();
  }
  return mounts;
}

Status SnapshotStore::Commit(const Context& ctx, const std::string& name, const std::string& key,
                             const Labels& labels) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  if (name.empty()) return InvalidArgument("snapshot name must not be empty");
  BERTH_TRY(labels::ValidateAll(labels));
  std::shared_lock gc(db_.GcLock());
  std::string bkey;
  std::string bname;
  std::string parent;
  Labels merged;
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(bool taken, txn.Exists(NsKey(ns, {kBucketSnapshots, name_, name})));
    if (taken) return AlreadyExists(fmt::format("snapshot {:?}", name));
    BERTH_ASSIGN_OR_RETURN(auto kb, txn.Get(NsKey(ns, {kBucketSnapshots, name_, key, "name"})));
    if (!kb) return NotFound(fmt::format("snapshot {} does not exist", key));
    bkey = *kb;
    BERTH_ASSIGN_OR_RETURN(auto p, txn.Get(NsKey(ns, {kBucketSnapshots, name_, key, "parent"})));
    parent = p.value_or("");
    BERTH_ASSIGN_OR_RETURN(merged,
                           ReadLabels(txn, NsKey(ns, {kBucketSnapshots, name_, key, "labels"})));
    for (const auto& [k, v] : labels) merged[k] = v;
    BERTH_ASSIGN_OR_RETURN(uint64_t seq, Db::NextSequence(txn));
    bname = fmt::format("{}/{}/{}", ns, seq, name);
    return Ok();
  }));
  BERTH_ASSIGN_OR_RETURN(snapshots::Info binfo, backend_.Stat({}, bkey));
  if (binfo.kind != snapshots::Kind::kActive) {
    return FailedPrecondition(fmt::format("snapshot {} is not active", key));
  }
  BERTH_TRY(backend_.Commit({}, bname, bkey, Inherited(merged)));
  Timestamp now = Now();
  // The backend commit ran outside a transaction: another commit of the same name (two
  // unpackers of one chain) may have been recorded meanwhile. The first one wins; this one's
  // backend snapshot and active key go, and the caller gets AlreadyExists (as from the check
  // above), never a record overwritten under a snapshot that is already someone's parent.
  bool lost = false;
  auto recorded = db_.Update([&](Txn& txn) -> Status {
    Key nk = NsKey(ns, {kBucketSnapshots, name_, name});
    BERTH_ASSIGN_OR_RETURN(bool taken, txn.Exists(nk));
    if (taken) {
      lost = true;
      BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketSnapshots, name_, key})));
      if (!parent.empty()) {
        BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketSnapshots, name_, parent, "children", key})));
      }
      return LeaseStore::RemoveFromContextLease(txn, ctx, {"snapshots", name_}, key);
    }
    auto put = [&](const char* field, const std::string& v) {
      Key c = nk;
      c.push_back(field);
      return txn.Put(c, v);
    };
    BERTH_TRY(put("name", bname));
    if (!parent.empty()) {
      BERTH_TRY(put("parent", parent));
      BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketSnapshots, name_, parent, "children", key})));
      BERTH_TRY(txn.Put(NsKey(ns, {kBucketSnapshots, name_, parent, "children", name}), ""));
    }
    BERTH_TRY(put("createdat", EncodeTime(now)));
    BERTH_TRY(put("updatedat", EncodeTime(now)));
    Key lk = nk;
    lk.push_back("labels");
    BERTH_TRY(WriteLabels(txn, lk, merged));
    BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketSnapshots, name_, key})));
    BERTH_TRY(LeaseStore::RemoveFromContextLease(txn, ctx, {"snapshots", name_}, key));
    return LeaseStore::AddToContextLease(txn, ctx, {"snapshots", name_}, name);
  });
  if (!recorded || lost) {
    (void)backend_.Remove({}, bname);  // undo: nothing refers to it
    if (!recorded) return recorded;
    return AlreadyExists(fmt::format("snapshot {:?}", name));
  }
  return Ok();
}

Status SnapshotStore::Remove(const Context& ctx, const std::string& key) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(bool exists,
                           txn.Exists(NsKey(ns, {kBucketSnapshots, name_, key, "name"})));
    if (!exists) return NotFound(fmt::format("snapshot {} does not exist", key));
    BERTH_ASSIGN_OR_RETURN(bool has_children,
                           txn.Exists(NsKey(ns, {kBucketSnapshots, name_, key, "children"})));
    if (has_children) return FailedPrecondition("cannot remove snapshot with child");
    BERTH_ASSIGN_OR_RETURN(auto parent,
                           txn.Get(NsKey(ns, {kBucketSnapshots, name_, key, "parent"})));
    if (parent) {
      BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketSnapshots, name_, *parent, "children", key})));
    }
    BERTH_TRY(txn.DeleteTree(NsKey(ns, {kBucketSnapshots, name_, key})));
    return LeaseStore::RemoveFromContextLease(txn, ctx, {"snapshots", name_}, key);
  }));
  db_.NotifyMutation(true);
  return Ok();
}

Status SnapshotStore::Walk(const Context& ctx,
                           const std::function<Status(const snapshots::Info&)>& fn,
                           const std::vector<std::string>& filter_strings) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::ParseAll(filter_strings));
  std::vector<std::string> keys;
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    keys = txn.Children(NsKey(ns, {kBucketSnapshots, name_}));
    return Ok();
  }));
  std::vector<snapshots::Info> infos;
  for (const auto& key : keys) {
    auto info = Stat(ctx, key);
    if (!info) continue;  // removed meanwhile, or its backend snapshot is gone
    std::string kind = KindFilterValue(info->kind);
    auto adaptor =
        filters::MakeAdaptor({{"name", info->name}, {"parent", info->parent}, {"kind", kind}},
                             {{"labels", &info->labels}}, filters::EmptyField::kPresent);
    if (filter.Match(adaptor)) infos.push_back(std::move(*info));
  }
  for (const auto& info : infos) BERTH_TRY(fn(info));
  return Ok();
}

Status SnapshotStore::Cleanup(const Context& ctx) {
  BERTH_TRY(RequireNamespace(ctx));
  return backend_.Cleanup({});
}

Result<snapshots::Snapshotter*> Snapshotters::Get(const std::string& name) const {
  if (name.empty()) return InvalidArgument("snapshotter argument missing");
  auto it = stores_.find(name);
  if (it == stores_.end()) return InvalidArgument("snapshotter not loaded: " + name);
  return static_cast<snapshots::Snapshotter*>(it->second.get());
}

}  // namespace berth::metadata

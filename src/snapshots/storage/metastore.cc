#include "snapshots/storage/metastore.h"

#include <mutex>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "common/filters.h"
#include "common/timeutil.h"
#include "snapshots/storage/record.h"

namespace berth::snapshots::storage {
namespace {

constexpr char kTagVersion = 'V';
constexpr char kTagNextId = 'N';
constexpr char kTagSnapshot = 'S';
constexpr char kTagId = 'I';
constexpr char kTagChild = 'C';
constexpr std::string_view kSchemaVersion = "1";
constexpr size_t kMapSize = size_t{1} << 32;  // address space only; the file grows as used

// LMDB forbids opening one environment twice in a process (closing one breaks the other's
// locks), so a second Open of the same file is refused instead.
std::mutex open_mu;
std::set<std::string>& OpenPaths() {
  static auto* paths = new std::set<std::string>();
  return *paths;
}

Error LmdbError(int rc, std::string_view what) {
  if (rc == MDB_MAP_FULL) {
    return {Errc::kResourceExhausted, fmt::format("{}: snapshot metadata store is full", what)};
  }
  return Unknown(fmt::format("{}: lmdb: {}", what, mdb_strerror(rc)));
}

MDB_val Val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};  // NOLINT: LMDB's C API is not const
}

std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

std::string SnapshotKey(std::string_view name) {
  std::string k(1, kTagSnapshot);
  k.append(name);
  return k;
}
std::string IdKey(uint64_t id) { return std::string(1, kTagId) + EncodeId(id); }
std::string ChildPrefix(uint64_t parent) { return std::string(1, kTagChild) + EncodeId(parent); }
std::string ChildKey(uint64_t parent, uint64_t child) {
  return ChildPrefix(parent) + EncodeId(child);
}

// RAII cursor.
class Cursor {
 public:
  Cursor(MDB_txn* txn, MDB_dbi dbi) { rc_ = mdb_cursor_open(txn, dbi, &c_); }
  ~Cursor() {
    if (rc_ == 0) mdb_cursor_close(c_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  int Rc() const { return rc_; }

  // Positions at the first key >= `from`; false at the end.
  Result<bool> Seek(std::string_view from, std::string_view* key, std::string_view* value) {
    MDB_val k = Val(from);
    MDB_val v;
    return Step(mdb_cursor_get(c_, &k, &v, MDB_SET_RANGE), k, v, key, value);
  }
  Result<bool> Next(std::string_view* key, std::string_view* value) {
    MDB_val k;
    MDB_val v;
    return Step(mdb_cursor_get(c_, &k, &v, MDB_NEXT), k, v, key, value);
  }

 private:
  static Result<bool> Step(int rc, const MDB_val& k, const MDB_val& v, std::string_view* key,
                           std::string_view* value) {
    if (rc == MDB_NOTFOUND) return false;
    if (rc != 0) return LmdbError(rc, "read snapshot metadata");
    *key = View(k);
    *value = View(v);
    return true;
  }
  MDB_cursor* c_ = nullptr;
  int rc_;
};

std::string KindFilterValue(Kind k) {
  switch (k) {
    case Kind::kActive:
      return "active";
    case Kind::kView:
      return "view";
    case Kind::kCommitted:
      return "committed";
    case Kind::kUnknown:
      break;
  }
  return "";
}

// containerd stores no empty label values: setting one to "" deletes it.
Labels DropEmpty(Labels labels) {
  std::erase_if(labels, [](const auto& kv) { return kv.second.empty(); });
  return labels;
}

snapshots::Info ToInfo(const std::string& name, const StoredSnapshot& s) {
  return snapshots::Info{.kind = s.kind,
                         .name = name,
                         .parent = s.parent,
                         .labels = s.labels,
                         .created = s.created,
                         .updated = s.updated};
}

// Low-level access shared by the operations.
class Access {
 public:
  Access(MDB_txn* txn, MDB_dbi dbi) : txn_(txn), dbi_(dbi) {}

  Result<std::optional<std::string>> Get(std::string_view key) const {
    MDB_val k = Val(key);
    MDB_val v;
    int rc = mdb_get(txn_, dbi_, &k, &v);
    if (rc == MDB_NOTFOUND) return std::optional<std::string>();
    if (rc != 0) return LmdbError(rc, "read snapshot metadata");
    return std::optional<std::string>(std::string(View(v)));
  }
  Status Put(std::string_view key, std::string_view value) {
    MDB_val k = Val(key);
    MDB_val v = Val(value);
    int rc = mdb_put(txn_, dbi_, &k, &v, 0);
    return rc == 0 ? Ok() : Status(LmdbError(rc, "write snapshot metadata"));
  }
  Status Del(std::string_view key) {
    MDB_val k = Val(key);
    int rc = mdb_del(txn_, dbi_, &k, nullptr);
    return rc == 0 || rc == MDB_NOTFOUND ? Ok() : Status(LmdbError(rc, "delete snapshot metadata"));
  }
  Result<std::optional<StoredSnapshot>> Load(const std::string& name) const {
    if (name.empty() || name.size() + 1 > MaxKey()) return std::optional<StoredSnapshot>();
    BERTH_ASSIGN_OR_RETURN(auto data, Get(SnapshotKey(name)));
    if (!data) return std::optional<StoredSnapshot>();
    BERTH_ASSIGN_OR_RETURN(auto s, DecodeRecord(name, *data));
    return std::optional<StoredSnapshot>(std::move(s));
  }
  Status Store(const std::string& name, const StoredSnapshot& s) {
    return Put(SnapshotKey(name), EncodeRecord(s));
  }
  Result<uint64_t> NextId() {
    BERTH_ASSIGN_OR_RETURN(auto last, Get(std::string(1, kTagNextId)));
    uint64_t id = (last ? DecodeId(*last) : 0) + 1;
    BERTH_TRY(Put(std::string(1, kTagNextId), EncodeId(id)));
    return id;
  }
  // Ids of `parent` and its ancestors, immediate parent first.
  Result<std::vector<std::string>> Chain(const StoredSnapshot& parent) const {
    std::vector<std::string> ids{std::to_string(parent.id)};
    std::string next = parent.parent;
    while (!next.empty()) {
      BERTH_ASSIGN_OR_RETURN(auto p, Load(next));
      if (!p) return NotFound(fmt::format("missing parent \"{}\" in chain", next));
      ids.push_back(std::to_string(p->id));
      next = p->parent;
    }
    return ids;
  }
  size_t MaxKey() const { return static_cast<size_t>(mdb_env_get_maxkeysize(mdb_txn_env(txn_))); }
  Status ValidateName(const std::string& name, std::string_view what) const {
    if (name.empty()) return InvalidArgument(fmt::format("{} must not be empty", what));
    if (name.size() + 1 > MaxKey()) {
      return InvalidArgument(
          fmt::format("{} is longer than {} bytes: {}...", what, MaxKey() - 1, name.substr(0, 64)));
    }
    return Ok();
  }
  MDB_txn* Txn() const { return txn_; }
  MDB_dbi Dbi() const { return dbi_; }

 private:
  MDB_txn* txn_;
  MDB_dbi dbi_;
};

}  // namespace

Transaction::Transaction(Transaction&& other) noexcept
    : txn_(std::exchange(other.txn_, nullptr)), dbi_(other.dbi_), writable_(other.writable_) {}

Transaction::~Transaction() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
}

Status Transaction::RequireWritable(std::string_view op) const {
  if (!writable_) return FailedPrecondition(fmt::format("{}: read-only transaction", op));
  return Ok();
}

Status Transaction::Commit() {
  MDB_txn* txn = std::exchange(txn_, nullptr);
  if (txn == nullptr) return FailedPrecondition("snapshot metadata: transaction already finished");
  if (!writable_) {
    mdb_txn_abort(txn);
    return Ok();
  }
  int rc = mdb_txn_commit(txn);
  return rc == 0 ? Ok() : Status(LmdbError(rc, "commit snapshot metadata"));
}

Result<Record> Transaction::GetInfo(const std::string& key) const {
  Access a(txn_, dbi_);
  BERTH_ASSIGN_OR_RETURN(auto s, a.Load(key));
  if (!s) return NotFound(fmt::format("snapshot {}", key));
  return Record{.id = std::to_string(s->id), .info = ToInfo(key, *s), .usage = s->usage};
}

Result<snapshots::Info> Transaction::UpdateInfo(const snapshots::Info& info,
                                                const std::vector<std::string>& fieldpaths) {
  BERTH_TRY(RequireWritable("update snapshot"));
  Access a(txn_, dbi_);
  BERTH_ASSIGN_OR_RETURN(auto s, a.Load(info.name));
  if (!s) return NotFound(fmt::format("snapshot {}", info.name));
  Labels labels = s->labels;
  if (fieldpaths.empty()) {
    labels = info.labels;
  }
  for (const auto& path : fieldpaths) {
    if (path.starts_with("labels.")) {
      std::string k = path.substr(std::string_view("labels.").size());
      auto it = info.labels.find(k);
      labels[k] = it == info.labels.end() ? "" : it->second;
    } else if (path == "labels") {
      labels = info.labels;
    } else {
      return InvalidArgument(
          fmt::format("cannot update \"{}\" field on snapshot \"{}\"", path, info.name));
    }
  }
  s->labels = DropEmpty(std::move(labels));
  BERTH_TRY(labels::ValidateAll(s->labels));
  s->updated = Now();
  BERTH_TRY(a.Store(info.name, *s));
  return ToInfo(info.name, *s);
}

Status Transaction::WalkInfo(const std::vector<std::string>& filters,
                             const std::function<Status(const Record&)>& fn) const {
  BERTH_ASSIGN_OR_RETURN(auto filter, filters::ParseAll(filters));
  Cursor c(txn_, dbi_);
  if (c.Rc() != 0) return LmdbError(c.Rc(), "walk snapshots");
  std::string_view key;
  std::string_view value;
  BERTH_ASSIGN_OR_RETURN(bool more, c.Seek(std::string(1, kTagSnapshot), &key, &value));
  for (; more && !key.empty() && key[0] == kTagSnapshot;) {
    std::string name(key.substr(1));
    BERTH_ASSIGN_OR_RETURN(auto s, DecodeRecord(name, value));
    bool match = filter.MatchesAll();
    if (!match) {
      auto adaptor = filters::MakeAdaptor(
          {{"name", name}, {"parent", s.parent}, {"kind", KindFilterValue(s.kind)}},
          {{"labels", &s.labels}}, filters::EmptyField::kPresent);
      match = filter.Match(adaptor);
    }
    if (match) {
      BERTH_TRY(fn(Record{.id = std::to_string(s.id), .info = ToInfo(name, s), .usage = s.usage}));
    }
    BERTH_ASSIGN_OR_RETURN(more, c.Next(&key, &value));
  }
  return Ok();
}

Result<Snapshot> Transaction::GetSnapshot(const std::string& key) const {
  Access a(txn_, dbi_);
  BERTH_ASSIGN_OR_RETURN(auto s, a.Load(key));
  if (!s) return NotFound(fmt::format("snapshot {}", key));
  if (s->kind != Kind::kActive && s->kind != Kind::kView) {
    return FailedPrecondition(fmt::format("requested snapshot {} not active or view", key));
  }
  Snapshot out{.id = std::to_string(s->id), .kind = s->kind, .parent_ids = {}};
  if (!s->parent.empty()) {
    BERTH_ASSIGN_OR_RETURN(auto p, a.Load(s->parent));
    if (!p) return NotFound(fmt::format("missing parent \"{}\" of snapshot {}", s->parent, key));
    BERTH_ASSIGN_OR_RETURN(out.parent_ids, a.Chain(*p));
  }
  return out;
}

Result<Snapshot> Transaction::CreateSnapshot(Kind kind, const std::string& key,
                                             const std::string& parent, const Labels& labels) {
  BERTH_TRY(RequireWritable("create snapshot"));
  if (kind != Kind::kActive && kind != Kind::kView) {
    return InvalidArgument(fmt::format(
        "snapshot type {} invalid; only snapshots of type Active or View can be created",
        KindName(kind)));
  }
  Access a(txn_, dbi_);
  BERTH_TRY(a.ValidateName(key, "snapshot key"));
  Labels stored = DropEmpty(labels);
  BERTH_TRY(labels::ValidateAll(stored));
  std::optional<StoredSnapshot> p;
  if (!parent.empty()) {
    BERTH_ASSIGN_OR_RETURN(p, a.Load(parent));
    if (!p) return NotFound(fmt::format("missing parent \"{}\"", parent));
    if (p->kind != Kind::kCommitted) {
      return InvalidArgument(fmt::format("parent \"{}\" is not committed snapshot", parent));
    }
  }
  BERTH_ASSIGN_OR_RETURN(auto existing, a.Get(SnapshotKey(key)));
  if (existing) return AlreadyExists(fmt::format("snapshot {}", key));

  BERTH_ASSIGN_OR_RETURN(uint64_t id, a.NextId());
  Timestamp now = Now();
  StoredSnapshot s{.id = id,
                   .kind = kind,
                   .parent = parent,
                   .created = now,
                   .updated = now,
                   .usage = {},
                   .labels = std::move(stored)};
  BERTH_TRY(a.Store(key, s));
  BERTH_TRY(a.Put(IdKey(id), key));
  Snapshot out{.id = std::to_string(id), .kind = kind, .parent_ids = {}};
  if (p) {
    BERTH_TRY(a.Put(ChildKey(p->id, id), key));
    BERTH_ASSIGN_OR_RETURN(out.parent_ids, a.Chain(*p));
  }
  return out;
}

Result<Removed> Transaction::Remove(const std::string& key) {
  BERTH_TRY(RequireWritable("remove snapshot"));
  Access a(txn_, dbi_);
  BERTH_ASSIGN_OR_RETURN(auto s, a.Load(key));
  if (!s) return NotFound(fmt::format("snapshot {}", key));

  Cursor c(txn_, dbi_);
  if (c.Rc() != 0) return LmdbError(c.Rc(), "remove snapshot");
  std::string prefix = ChildPrefix(s->id);
  std::string_view k;
  std::string_view v;
  BERTH_ASSIGN_OR_RETURN(bool found, c.Seek(prefix, &k, &v));
  if (found && k.starts_with(prefix)) {
    return FailedPrecondition("cannot remove snapshot with child");
  }
  if (!s->parent.empty()) {
    BERTH_ASSIGN_OR_RETURN(auto p, a.Load(s->parent));
    if (!p) return NotFound(fmt::format("missing parent \"{}\" of snapshot {}", s->parent, key));
    BERTH_TRY(a.Del(ChildKey(p->id, s->id)));
  }
  BERTH_TRY(a.Del(SnapshotKey(key)));
  BERTH_TRY(a.Del(IdKey(s->id)));
  return Removed{.id = std::to_string(s->id), .kind = s->kind};
}

Result<std::string> Transaction::CommitActive(const std::string& key, const std::string& name,
                                              const snapshots::Usage& usage, const Labels& labels) {
  BERTH_TRY(RequireWritable("commit snapshot"));
  Access a(txn_, dbi_);
  BERTH_TRY(a.ValidateName(name, "committed snapshot name"));
  Labels stored = DropEmpty(labels);
  BERTH_TRY(labels::ValidateAll(stored));
  BERTH_ASSIGN_OR_RETURN(auto taken, a.Get(SnapshotKey(name)));
  if (taken) return AlreadyExists(fmt::format("committed snapshot {}", name));
  BERTH_ASSIGN_OR_RETURN(auto s, a.Load(key));
  if (!s) return NotFound(fmt::format("failed to get active snapshot \"{}\"", key));
  if (s->kind != Kind::kActive) {
    return FailedPrecondition(fmt::format("snapshot \"{}\" is not active", key));
  }
  s->kind = Kind::kCommitted;
  s->created = Now();
  s->updated = s->created;
  s->labels = std::move(stored);  // replaced, not inherited (as containerd)
  s->usage = usage;
  BERTH_TRY(a.Store(name, *s));
  BERTH_TRY(a.Del(SnapshotKey(key)));
  BERTH_TRY(a.Put(IdKey(s->id), name));
  if (!s->parent.empty()) {
    BERTH_ASSIGN_OR_RETURN(auto p, a.Load(s->parent));
    if (!p)
      return NotFound(fmt::format("missing parent \"{}\" of snapshot \"{}\"", s->parent, key));
    BERTH_TRY(a.Put(ChildKey(p->id, s->id), name));
  }
  return std::to_string(s->id);
}

Result<std::map<std::string, std::string>> Transaction::IdMap() const {
  std::map<std::string, std::string> out;
  Cursor c(txn_, dbi_);
  if (c.Rc() != 0) return LmdbError(c.Rc(), "list snapshot ids");
  std::string_view k;
  std::string_view v;
  BERTH_ASSIGN_OR_RETURN(bool more, c.Seek(std::string(1, kTagId), &k, &v));
  while (more && !k.empty() && k[0] == kTagId) {
    out.emplace(std::to_string(DecodeId(k.substr(1))), std::string(v));
    BERTH_ASSIGN_OR_RETURN(more, c.Next(&k, &v));
  }
  return out;
}

// --- MetaStore ---

Result<std::unique_ptr<MetaStore>> MetaStore::Open(const std::string& path) {
  std::lock_guard lock(open_mu);
  if (OpenPaths().contains(path)) {
    return FailedPrecondition(fmt::format("snapshot metadata {} is already open", path));
  }
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return LmdbError(rc, "open " + path);
  auto fail = [&](int code, std::string_view what) -> Error {
    mdb_env_close(env);
    return LmdbError(code, fmt::format("{} {}", what, path));
  };
  if ((rc = mdb_env_set_mapsize(env, kMapSize)) != 0) return fail(rc, "set map size of");
  if ((rc = mdb_env_set_maxreaders(env, 1024)) != 0) return fail(rc, "set readers of");
  rc = mdb_env_open(env, path.c_str(), MDB_NOSUBDIR | MDB_NOTLS, 0600);
  if (rc != 0) {
    mdb_env_close(env);
    return ErrnoError(rc > 0 ? rc : EIO, "open snapshot metadata " + path);
  }
  int dead = 0;
  (void)mdb_reader_check(env, &dead);  // slots of readers that died

  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env, nullptr, 0, &txn)) != 0) return fail(rc, "begin");
  MDB_dbi dbi = 0;
  if ((rc = mdb_dbi_open(txn, nullptr, 0, &dbi)) != 0) {
    mdb_txn_abort(txn);
    return fail(rc, "open database in");
  }
  Access a(txn, dbi);
  auto version = a.Get(std::string(1, kTagVersion));
  Status st = version ? Ok() : Status(version.error());
  if (st && !*version) {
    st = a.Put(std::string(1, kTagVersion), kSchemaVersion);
  } else if (st && **version != kSchemaVersion) {
    st = FailedPrecondition(
        fmt::format("snapshot metadata {}: unsupported schema version {}", path, **version));
  }
  if (!st) {
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return std::move(st).error();
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return fail(rc, "initialise");
  OpenPaths().insert(path);
  return std::unique_ptr<MetaStore>(new MetaStore(env, dbi, path));
}

MetaStore::~MetaStore() {
  mdb_env_close(env_);
  std::lock_guard lock(open_mu);
  OpenPaths().erase(path_);
}

Result<Transaction> MetaStore::BeginRead() const {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return LmdbError(rc, "begin read of snapshot metadata");
  return Transaction(txn, dbi_, false);
}

Result<Transaction> MetaStore::BeginWrite() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != 0) return LmdbError(rc, "begin write of snapshot metadata");
  return Transaction(txn, dbi_, true);
}

Status MetaStore::View(const std::function<Status(Transaction&)>& fn) const {
  BERTH_ASSIGN_OR_RETURN(Transaction t, BeginRead());
  return fn(t);
}

Status MetaStore::Update(const std::function<Status(Transaction&)>& fn) {
  BERTH_ASSIGN_OR_RETURN(Transaction t, BeginWrite());
  BERTH_TRY(fn(t));
  return t.Commit();
}

}  // namespace berth::snapshots::storage

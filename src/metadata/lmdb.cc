#include "metadata/lmdb.h"

#include <map>

#include <fmt/format.h>

namespace berth::metadata {
namespace {

constexpr char kEsc = '\x00';
constexpr char kEscZero = '\xff';
constexpr char kTerm = '\x01';

Error LmdbError(int rc, std::string_view what) {
  if (rc == MDB_MAP_FULL) {
    return {Errc::kResourceExhausted, fmt::format("{}: metadata store is full", what)};
  }
  return Unknown(fmt::format("{}: lmdb: {}", what, mdb_strerror(rc)));
}

MDB_val Val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};  // NOLINT: LMDB's C API is not const
}

std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

bool HasPrefix(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
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
  MDB_cursor* Get() const { return c_; }

 private:
  MDB_cursor* c_ = nullptr;
  int rc_;
};

}  // namespace

std::string EncodeKey(const Key& key) {
  std::string out;
  for (const auto& comp : key) {
    for (char c : comp) {
      if (c == kEsc) {
        out += kEsc;
        out += kEscZero;
      } else {
        out += c;
      }
    }
    out += kEsc;
    out += kTerm;
  }
  return out;
}

Key DecodeKey(std::string_view encoded) {
  Key key;
  std::string cur;
  for (size_t i = 0; i < encoded.size(); ++i) {
    char c = encoded[i];
    if (c == kEsc && i + 1 < encoded.size()) {
      char n = encoded[++i];
      if (n == kTerm) {
        key.push_back(std::move(cur));
        cur.clear();
      } else {
        cur += kEsc;
      }
    } else {
      cur += c;
    }
  }
  return key;
}

Txn::Txn(Txn&& other) noexcept
    : txn_(std::exchange(other.txn_, nullptr)), dbi_(other.dbi_), writable_(other.writable_) {}

Txn::~Txn() {
  if (txn_ != nullptr) {
    mdb_txn_abort(txn_);
  }
}

Result<std::optional<std::string>> Txn::Get(const Key& key) const {
  std::string k = EncodeKey(key);
  MDB_val kv = Val(k);
  MDB_val vv{};
  int rc = mdb_get(txn_, dbi_, &kv, &vv);
  if (rc == MDB_NOTFOUND) {
    return std::optional<std::string>();
  }
  if (rc != 0) {
    return LmdbError(rc, "get");
  }
  return std::optional<std::string>(std::string(View(vv)));
}

Result<bool> Txn::Exists(const Key& prefix) const {
  std::string p = EncodeKey(prefix);
  Cursor cur(txn_, dbi_);
  if (cur.Rc() != 0) return LmdbError(cur.Rc(), "cursor");
  MDB_val kv = Val(p);
  MDB_val vv{};
  int rc = mdb_cursor_get(cur.Get(), &kv, &vv, MDB_SET_RANGE);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return LmdbError(rc, "seek");
  return HasPrefix(View(kv), p);
}

Status Txn::Put(const Key& key, std::string_view value) {
  std::string k = EncodeKey(key);
  if (k.size() > 511) {
    // LMDB's default maximum key size.
    return InvalidArgument(fmt::format("metadata key too long ({} bytes)", k.size()));
  }
  MDB_val kv = Val(k);
  MDB_val vv = Val(value);
  int rc = mdb_put(txn_, dbi_, &kv, &vv, 0);
  if (rc != 0) {
    return LmdbError(rc, "put");
  }
  return Ok();
}

Status Txn::DeleteTree(const Key& prefix) {
  std::string p = EncodeKey(prefix);
  Cursor cur(txn_, dbi_);
  if (cur.Rc() != 0) return LmdbError(cur.Rc(), "cursor");
  MDB_val kv = Val(p);
  MDB_val vv{};
  int rc = mdb_cursor_get(cur.Get(), &kv, &vv, MDB_SET_RANGE);
  while (rc == 0 && HasPrefix(View(kv), p)) {
    if (int drc = mdb_cursor_del(cur.Get(), 0); drc != 0) {
      return LmdbError(drc, "delete");
    }
    rc = mdb_cursor_get(cur.Get(), &kv, &vv, MDB_GET_CURRENT);
    if (rc == MDB_NOTFOUND || rc == EINVAL) {
      // After deleting the last item the cursor has no current record.
      rc = MDB_NOTFOUND;
      break;
    }
  }
  if (rc != 0 && rc != MDB_NOTFOUND) {
    return LmdbError(rc, "walk");
  }
  return Ok();
}

Status Txn::ForEachChild(const Key& bucket,
                         const std::function<bool(const std::string&)>& fn) const {
  std::string p = EncodeKey(bucket);
  Cursor cur(txn_, dbi_);
  if (cur.Rc() != 0) return LmdbError(cur.Rc(), "cursor");
  std::string seek = p;
  MDB_val kv = Val(seek);
  MDB_val vv{};
  int rc = mdb_cursor_get(cur.Get(), &kv, &vv, MDB_SET_RANGE);
  while (rc == 0) {
    std::string_view k = View(kv);
    if (!HasPrefix(k, p)) break;
    if (k.size() == p.size()) {  // the bucket's own value
      rc = mdb_cursor_get(cur.Get(), &kv, &vv, MDB_NEXT);
      continue;
    }
    // Decode the next component.
    std::string_view rest = k.substr(p.size());
    std::string name;
    size_t i = 0;
    for (; i < rest.size(); ++i) {
      if (rest[i] == kEsc && i + 1 < rest.size()) {
        if (rest[i + 1] == kTerm) break;
        name += kEsc;
        ++i;
      } else {
        name += rest[i];
      }
    }
    if (!fn(name)) return Ok();
    // Skip the child's subtree: seek just past its terminator.
    seek = p;
    seek.append(rest.substr(0, i));
    seek += kEsc;
    seek += '\x02';
    kv = Val(seek);
    rc = mdb_cursor_get(cur.Get(), &kv, &vv, MDB_SET_RANGE);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(rc, "walk");
  return Ok();
}

std::vector<std::string> Txn::Children(const Key& bucket) const {
  std::vector<std::string> out;
  (void)ForEachChild(bucket, [&](const std::string& n) {
    out.push_back(n);
    return true;
  });
  return out;
}

Status Txn::ForEach(const Key& bucket,
                    const std::function<bool(const Key& rel, std::string_view value)>& fn) const {
  std::string p = EncodeKey(bucket);
  Cursor cur(txn_, dbi_);
  if (cur.Rc() != 0) return LmdbError(cur.Rc(), "cursor");
  MDB_val kv = Val(p);
  MDB_val vv{};
  int rc = mdb_cursor_get(cur.Get(), &kv, &vv, MDB_SET_RANGE);
  while (rc == 0) {
    std::string_view k = View(kv);
    if (!HasPrefix(k, p)) break;
    if (k.size() > p.size()) {
      if (!fn(DecodeKey(k.substr(p.size())), View(vv))) return Ok();
    }
    rc = mdb_cursor_get(cur.Get(), &kv, &vv, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbError(rc, "walk");
  return Ok();
}

Result<std::map<std::string, std::string>> Txn::ReadMap(const Key& bucket) const {
  std::map<std::string, std::string> out;
  BERTH_TRY(ForEach(bucket, [&](const Key& rel, std::string_view v) {
    if (rel.size() == 1) out.emplace(rel[0], std::string(v));
    return true;
  }));
  return out;
}

Status Txn::WriteMap(const Key& bucket, const std::map<std::string, std::string>& values) {
  BERTH_TRY(DeleteTree(bucket));
  for (const auto& [k, v] : values) {
    Key key = bucket;
    key.push_back(k);
    BERTH_TRY(Put(key, v));
  }
  return Ok();
}

Status Txn::Commit() {
  MDB_txn* t = std::exchange(txn_, nullptr);
  if (t == nullptr) {
    return FailedPrecondition("transaction already finished");
  }
  int rc = mdb_txn_commit(t);
  if (rc != 0) {
    return LmdbError(rc, "commit");
  }
  return Ok();
}

Result<std::unique_ptr<Env>> Env::Open(const std::string& dir, size_t map_size) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return LmdbError(rc, "create environment");
  auto fail = [&](int code, std::string_view what) {
    mdb_env_close(env);
    return LmdbError(code, fmt::format("{} {}", what, dir));
  };
  if ((rc = mdb_env_set_mapsize(env, map_size)) != 0) return fail(rc, "set map size");
  // MDB_NOTLS: read transactions are not tied to threads (the daemon's pool moves work around).
  if ((rc = mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0600)) != 0) return fail(rc, "open");
  MDB_txn* txn = nullptr;
  if ((rc = mdb_txn_begin(env, nullptr, 0, &txn)) != 0) return fail(rc, "begin");
  MDB_dbi dbi = 0;
  if ((rc = mdb_dbi_open(txn, nullptr, 0, &dbi)) != 0) {
    mdb_txn_abort(txn);
    return fail(rc, "open database");
  }
  if ((rc = mdb_txn_commit(txn)) != 0) return fail(rc, "commit");
  // Readers left behind by a killed process are cleared here.
  int dead = 0;
  mdb_reader_check(env, &dead);
  return std::unique_ptr<Env>(new Env(env, dbi, dir));
}

Env::~Env() { mdb_env_close(env_); }

Result<Txn> Env::BeginRead() const {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return LmdbError(rc, "begin read transaction");
  return Txn(txn, dbi_, false);
}

Result<Txn> Env::BeginWrite() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != 0) return LmdbError(rc, "begin write transaction");
  return Txn(txn, dbi_, true);
}

Status Env::View(const std::function<Status(const Txn&)>& fn) const {
  BERTH_ASSIGN_OR_RETURN(Txn txn, BeginRead());
  return fn(txn);
}

Status Env::Update(const std::function<Status(Txn&)>& fn) {
  BERTH_ASSIGN_OR_RETURN(Txn txn, BeginWrite());
  BERTH_TRY(fn(txn));
  return txn.Commit();
}

}  // namespace berth::metadata

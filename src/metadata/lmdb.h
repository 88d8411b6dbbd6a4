#pragma once
// LMDB with bolt's bucket tree mapped onto ordered keys.
//
// A key is a path of components, like bolt's nested buckets: {"v1", "default", "images", name,
// "labels", "k"}. Each component is escaped (0x00 -> 0x00 0xFF) and terminated by 0x00 0x01, so
// byte order equals component-wise order and every bucket is a contiguous key range: listing a
// bucket's children is one cursor walk, deleting a bucket is one range delete.
#include <lmdb.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"

namespace berth::metadata {

using Key = std::vector<std::string>;

std::string EncodeKey(const Key& key);
Key DecodeKey(std::string_view encoded);

class Env;

// One LMDB transaction. A write transaction aborts unless Commit() succeeds, so an early return
// leaves the old state.
class Txn {
 public:
  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn();

  bool Writable() const { return writable_; }

  Result<std::optional<std::string>> Get(const Key& key) const;
  // True if any key at or below `prefix` exists (a non-empty bucket or a value).
  Result<bool> Exists(const Key& prefix) const;
  Status Put(const Key& key, std::string_view value);
  // Deletes the key itself and everything below it.
  Status DeleteTree(const Key& prefix);
  // Calls fn with the names of the direct children of `bucket`, in order. Stops early when fn
  // returns false.
  Status ForEachChild(const Key& bucket, const std::function<bool(const std::string&)>& fn) const;
  std::vector<std::string> Children(const Key& bucket) const;
  // Calls fn for every key strictly below `bucket` with the path relative to it.
  Status ForEach(const Key& bucket,
                 const std::function<bool(const Key& rel, std::string_view value)>& fn) const;
  // The map of key -> value stored directly below `bucket` (e.g. a labels bucket).
  Result<std::map<std::string, std::string>> ReadMap(const Key& bucket) const;
  Status WriteMap(const Key& bucket, const std::map<std::string, std::string>& values);

  Status Commit();

 private:
  friend class Env;
  Txn(MDB_txn* txn, MDB_dbi dbi, bool writable) : txn_(txn), dbi_(dbi), writable_(writable) {}

  MDB_txn* txn_;
  MDB_dbi dbi_;
  bool writable_;
};

class Env {
 public:
  // Opens (creating) the environment in directory `dir` (data.mdb, lock.mdb).
  static Result<std::unique_ptr<Env>> Open(const std::string& dir, size_t map_size = 1ULL << 34);
  ~Env();
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  Result<Txn> BeginRead() const;
  Result<Txn> BeginWrite();

  // Runs fn in a read transaction.
  Status View(const std::function<Status(const Txn&)>& fn) const;
  // Runs fn in a write transaction and commits it when fn succeeds: old state or new, never torn.
  Status Update(const std::function<Status(Txn&)>& fn);

  const std::string& Path() const { return dir_; }

 private:
  Env(MDB_env* env, MDB_dbi dbi, std::string dir) : env_(env), dbi_(dbi), dir_(std::move(dir)) {}
  MDB_env* env_;
  MDB_dbi dbi_;
  std::string dir_;
};

}  // namespace berth::metadata

#pragma once
// The bookkeeping every snapshotter implementation shares (containerd's snapshots/storage): which
// snapshots exist, their kind, parent, labels, times, numeric ids and recorded usage, in one LMDB
// file. Implementations own the directories; the metastore only hands out ids and parent chains.
//
// On disk: an LMDB environment in the single file <path> (MDB_NOSUBDIR; LMDB adds
// <path>-lock). One unnamed database; every key starts with a one-byte tag:
//   "V"                           -> schema version, "1"
//   "N"                           -> last id handed out (u64, big endian); never reused
//   "S" <name>                    -> the snapshot's record (see record.h)
//   "I" <id: u64 big endian>      -> name          (id -> key map, for Cleanup)
//   "C" <parent id> <child id>    -> child's name  (children of a parent: one cursor range)
// Names are any bytes; LMDB limits a key to 511 bytes, so a name may be up to 510 bytes
// (InvalidArgument beyond).
//
// Every operation runs inside a Transaction. A write transaction aborts unless Commit() succeeds,
// so an early return leaves the old state; LMDB allows one writer at a time (others block) and
// any number of readers, from any thread (MDB_NOTLS).
//
// Errors (containerd's classes and, where reasonable, its texts):
//   NotFound           "snapshot <key>", "missing parent \"<p>\""
//   AlreadyExists      "snapshot <key>", "committed snapshot <name>"
//   InvalidArgument    "parent \"<p>\" is not committed snapshot", "cannot update \"<f>\" field
//                      on snapshot \"<key>\"", empty or too long names, oversized labels
//   FailedPrecondition "cannot remove snapshot with child", "snapshot \"<key>\" is not active",
//                      "requested snapshot <key> not active or view"
#include <lmdb.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/errdefs.h"
#include "common/labels.h"
#include "snapshots/snapshotter.h"

namespace berth::snapshots::storage {

// An active or view snapshot as an implementation needs it to build paths and mounts.
struct Snapshot {
  std::string id;  // decimal; names the snapshot's directory
  Kind kind = Kind::kUnknown;
  std::vector<std::string> parent_ids;  // immediate parent first, base layer last
};

// One stored snapshot.
struct Record {
  std::string id;
  snapshots::Info info;
  snapshots::Usage usage;  // recorded at commit; zero for active and view snapshots
};

struct Removed {
  std::string id;
  Kind kind = Kind::kUnknown;
};

class Transaction {
 public:
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();  // aborts unless committed

  bool Writable() const { return writable_; }

  // Any snapshot by key or committed name.
  Result<Record> GetInfo(const std::string& key) const;
  // Replaces the mutable fields: "labels" (whole map), "labels.<k>" (one key); no fieldpaths =
  // labels. A label set to "" is deleted. Bumps `updated`. Returns the stored info.
  Result<snapshots::Info> UpdateInfo(const snapshots::Info& info,
                                     const std::vector<std::string>& fieldpaths);
  // Calls fn for every snapshot matching `filters` (containerd's filter syntax over name, parent,
  // kind, labels.*), in name order. InvalidArgument if a filter does not parse. Stops at the first
  // error fn returns.
  Status WalkInfo(const std::vector<std::string>& filters,
                  const std::function<Status(const Record&)>& fn) const;
  // An active or view snapshot with its parent chain; FailedPrecondition for committed ones.
  Result<Snapshot> GetSnapshot(const std::string& key) const;
  // Records a new active or view snapshot `key` on committed `parent` ("" = none), with a fresh
  // id; created = updated = now.
  Result<Snapshot> CreateSnapshot(Kind kind, const std::string& key, const std::string& parent,
                                  const Labels& labels);
  // Forgets `key`. FailedPrecondition if it has children.
  Result<Removed> Remove(const std::string& key);
  // Turns active `key` into committed `name` (same id; labels replaced, not inherited; created =
  // updated = now; `usage` recorded). Returns the id.
  Result<std::string> CommitActive(const std::string& key, const std::string& name,
                                   const snapshots::Usage& usage, const Labels& labels);
  // Every stored id -> its key.
  Result<std::map<std::string, std::string>> IdMap() const;

  Status Commit();

 private:
  friend class MetaStore;
  Transaction(MDB_txn* txn, MDB_dbi dbi, bool writable)
      : txn_(txn), dbi_(dbi), writable_(writable) {}
  Status RequireWritable(std::string_view op) const;

  MDB_txn* txn_;
  MDB_dbi dbi_;
  bool writable_;
};

class MetaStore {
 public:
  // Opens (creating) the store in file `path`; its directory must exist. FailedPrecondition if
  // this process has it open already (LMDB allows one environment per file and process).
  static Result<std::unique_ptr<MetaStore>> Open(const std::string& path);
  ~MetaStore();
  MetaStore(const MetaStore&) = delete;
  MetaStore& operator=(const MetaStore&) = delete;

  Result<Transaction> BeginRead() const;
  // Blocks while another write transaction is open (in this or another process).
  Result<Transaction> BeginWrite();
  // fn in a read transaction.
  Status View(const std::function<Status(Transaction&)>& fn) const;
  // fn in a write transaction, committed when fn succeeds.
  Status Update(const std::function<Status(Transaction&)>& fn);

  const std::string& Path() const { return path_; }

 private:
  MetaStore(MDB_env* env, MDB_dbi dbi, std::string path)
      : env_(env), dbi_(dbi), path_(std::move(path)) {}
  MDB_env* env_;
  MDB_dbi dbi_;
  std::string path_;
};

}  // namespace berth::snapshots::storage

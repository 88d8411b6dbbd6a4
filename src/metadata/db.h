#pragma once
// The metadata store: one LMDB environment holding containerd's bucket tree (see
// ../shared/reference/storage.md): `version` at the top, everything else under v1/<namespace>/.
// It also owns what ties the namespaced views to their backends: the GC lock (backend objects
// are only created under its shared side and only swept under its exclusive side) and the
// "dirty" signal that schedules garbage collection.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>

#include "common/context.h"
#include "common/labels.h"
#include "common/timeutil.h"
#include "metadata/lmdb.h"

namespace berth::content {
class Store;
}
namespace berth::snapshots {
class Snapshotter;
}

namespace berth::metadata {

inline constexpr int kSchemaVersion = 3;
inline constexpr const char* kBucketVersion = "v1";

// Keys of a namespace's top-level buckets, as containerd names them.
inline constexpr const char* kBucketLabels = "labels";
inline constexpr const char* kBucketImages = "images";
inline constexpr const char* kBucketContainers = "containers";
inline constexpr const char* kBucketSnapshots = "snapshots";
inline constexpr const char* kBucketContent = "content";
inline constexpr const char* kBucketLeases = "leases";

class Db {
 public:
  // Opens or creates the store in `dir` (created 0700) and checks the schema version.
  // `content` is the backend blob store (may be null in tests that need no content).
  static Result<std::unique_ptr<Db>> Open(
      const std::string& dir, content::Store* content = nullptr,
      std::map<std::string, snapshots::Snapshotter*> snapshotters = {});

  Env& Store() { return *env_; }
  const Env& Store() const { return *env_; }
  const std::string& Path() const { return env_->Path(); }
  content::Store* ContentBackend() const { return content_; }
  // Backend snapshotters by name ("overlayfs", "native", ...).
  const std::map<std::string, snapshots::Snapshotter*>& SnapshotBackends() const {
    return snapshotters_;
  }

  Status View(const std::function<Status(const Txn&)>& fn) const { return env_->View(fn); }
  Status Update(const std::function<Status(Txn&)>& fn) { return env_->Update(fn); }

  // Held shared while a backend object is created and recorded; exclusively by the GC.
  std::shared_mutex& GcLock() { return gc_lock_; }

  // Called after a deletion (dirty = true) or another mutation; the GC scheduler listens.
  void SetMutationCallback(std::function<void(bool dirty)> fn) { on_mutation_ = std::move(fn); }
  void NotifyMutation(bool dirty) const {
    if (on_mutation_) on_mutation_(dirty);
  }

  // A database-wide sequence number (backend keys embed it so they never collide).
  static Result<uint64_t> NextSequence(Txn& txn);

 private:
  Db(std::unique_ptr<Env> env, content::Store* content,
     std::map<std::string, snapshots::Snapshotter*> snapshotters)
      : env_(std::move(env)), content_(content), snapshotters_(std::move(snapshotters)) {}
  std::unique_ptr<Env> env_;
  content::Store* content_;
  std::map<std::string, snapshots::Snapshotter*> snapshotters_;
  std::shared_mutex gc_lock_;
  std::function<void(bool)> on_mutation_;
};

// Key of a namespace's bucket: {"v1", ns, rest...}.
Key NsKey(const std::string& ns, std::initializer_list<std::string> rest = {});

// Value encodings shared by the stores.
std::string EncodeTime(Timestamp t);
Timestamp DecodeTime(std::string_view v);
std::string EncodeLabels(const Labels& labels);
Result<Labels> DecodeLabels(std::string_view v);
Result<Labels> ReadLabels(const Txn& txn, const Key& key);           // absent = empty
Status WriteLabels(Txn& txn, const Key& key, const Labels& labels);  // empty = delete key

// The namespace of a request, required ("namespace is required": FailedPrecondition).
Result<std::string> RequireNamespace(const Context& ctx);

}  // namespace berth::metadata

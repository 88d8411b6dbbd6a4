#pragma once
// The metadata store: one LMDB environment holding containerd's bucket tree (see
// ../shared/reference/storage.md): `version` at the top, everything else under v1/<namespace>/.
#include <memory>
#include <string>

#include "metadata/lmdb.h"

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
  static Result<std::unique_ptr<Db>> Open(const std::string& dir);

  Env& Store() { return *env_; }
  const Env& Store() const { return *env_; }
  const std::string& Path() const { return env_->Path(); }

  Status View(const std::function<Status(const Txn&)>& fn) const { return env_->View(fn); }
  Status Update(const std::function<Status(Txn&)>& fn) { return env_->Update(fn); }

 private:
  explicit Db(std::unique_ptr<Env> env) : env_(std::move(env)) {}
  std::unique_ptr<Env> env_;
};

// Key of a namespace's bucket: {"v1", ns, rest...}.
Key NsKey(const std::string& ns, std::initializer_list<std::string> rest = {});

}  // namespace berth::metadata

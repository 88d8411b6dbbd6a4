#include "metadata/db.h"

#include <fmt/format.h>

#include "common/fs.h"

namespace berth::metadata {

Key NsKey(const std::string& ns, std::initializer_list<std::string> rest) {
  Key k{kBucketVersion, ns};
  k.insert(k.end(), rest.begin(), rest.end());
  return k;
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& dir) {
  BERTH_TRY(fs::MkdirAll(dir, 0700));
  BERTH_ASSIGN_OR_RETURN(auto env, Env::Open(dir));
  BERTH_TRY(env->Update([](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(auto version, txn.Get({"version"}));
    if (!version) {
      return txn.Put({"version"}, std::to_string(kSchemaVersion));
    }
    if (*version != std::to_string(kSchemaVersion)) {
      return FailedPrecondition(
          fmt::format("metadata schema version {} is not supported (this berthd uses {})", *version,
                      kSchemaVersion));
    }
    return Ok();
  }));
  return std::unique_ptr<Db>(new Db(std::move(env)));
}

}  // namespace berth::metadata

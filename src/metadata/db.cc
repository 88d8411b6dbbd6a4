#include "metadata/db.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/identifiers.h"

namespace berth::metadata {

Key NsKey(const std::string& ns, std::initializer_list<std::string> rest) {
  Key k{kBucketVersion, ns};
  k.insert(k.end(), rest.begin(), rest.end());
  return k;
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& dir, content::Store* content,
                                     std::map<std::string, snapshots::Snapshotter*> snapshotters) {
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
  return std::unique_ptr<Db>(new Db(std::move(env), content, std::move(snapshotters)));
}

Result<uint64_t> Db::NextSequence(Txn& txn) {
  BERTH_ASSIGN_OR_RETURN(auto cur, txn.Get({"sequence"}));
  uint64_t next = cur ? std::stoull(*cur) + 1 : 1;
  BERTH_TRY(txn.Put({"sequence"}, std::to_string(next)));
  return next;
}

std::string EncodeTime(Timestamp t) { return std::to_string(UnixNanos(t)); }

Timestamp DecodeTime(std::string_view v) {
  if (v.empty()) return {};
  return FromUnixNanos(std::stoll(std::string(v)));
}

std::string EncodeLabels(const Labels& labels) {
  nlohmann::json j = labels;
  return j.dump();
}

Result<Labels> DecodeLabels(std::string_view v) {
  try {
    return nlohmann::json::parse(v).get<Labels>();
  } catch (const nlohmann::json::exception& e) {
    return Unknown(fmt::format("corrupt labels record: {}", e.what()));
  }
}

Result<Labels> ReadLabels(const Txn& txn, const Key& key) {
  BERTH_ASSIGN_OR_RETURN(auto v, txn.Get(key));
  if (!v) return Labels{};
  return DecodeLabels(*v);
}

Status WriteLabels(Txn& txn, const Key& key, const Labels& labels) {
  Labels kept;
  for (const auto& [k, v] : labels) {
    if (!v.empty()) kept.emplace(k, v);
  }
  if (kept.empty()) return txn.DeleteTree(key);
  return txn.Put(key, EncodeLabels(kept));
}

Result<std::string> RequireNamespace(const Context& ctx) {
  if (ctx.ns.empty()) return FailedPrecondition("namespace is required");
  if (auto s = identifiers::Validate(ctx.ns); !s) {
    return std::move(s).error().Wrap("namespace validation");
  }
  return ctx.ns;
}

}  // namespace berth::metadata

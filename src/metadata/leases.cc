#include "metadata/leases.h"

#include <fmt/format.h>

#include "common/digest.h"
#include "common/filters.h"
#include "metadata/namespaces.h"

namespace berth::metadata {
namespace {

Key LeaseKey(const std::string& ns, const std::string& id, std::vector<std::string> rest = {}) {
  Key k = NsKey(ns, {kBucketLeases, id});
  k.insert(k.end(), rest.begin(), rest.end());
  return k;
}

Result<Lease> ReadLease(const Txn& txn, const std::string& ns, const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(auto created, txn.Get(LeaseKey(ns, id, {"createdat"})));
  if (!created) return NotFound(fmt::format("lease {:?}", id));
  Lease l{.id = id, .created_at = DecodeTime(*created)};
  BERTH_ASSIGN_OR_RETURN(l.labels, ReadLabels(txn, LeaseKey(ns, id, {"labels"})));
  return l;
}

}  // namespace

Result<std::vector<std::string>> LeaseResourceKind(const LeaseResource& r) {
  if (r.id.empty()) return InvalidArgument("resource id must not be empty");
  if (r.type == "content") {
    BERTH_TRY(Digest::Parse(r.id));
    return std::vector<std::string>{"content"};
  }
  if (r.type == "ingests") return std::vector<std::string>{"ingests"};
  if (r.type.rfind("snapshots/", 0) == 0 && r.type.size() > 10) {
    return std::vector<std::string>{"snapshots", r.type.substr(10)};
  }
  return NotImplemented(fmt::format("unsupported lease resource type {:?}", r.type));
}

Result<Lease> LeaseStore::Create(const Context& ctx, const std::string& id, const Labels& labels) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  if (id.empty()) return InvalidArgument("lease id must be provided");
  BERTH_TRY(labels::ValidateAll(labels));
  Lease l{.id = id, .created_at = Now(), .labels = labels};
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_TRY(NamespaceStore::CreateIfMissing(txn, ns));
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(NsKey(ns, {kBucketLeases, id})));
    if (exists) return AlreadyExists(fmt::format("lease {:?}", id));
    BERTH_TRY(txn.Put(LeaseKey(ns, id, {"createdat"}), EncodeTime(l.created_at)));
    return WriteLabels(txn, LeaseKey(ns, id, {"labels"}), labels);
  }));
  return l;
}

Status LeaseStore::Delete(const Context& ctx, const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(bool exists, txn.Exists(NsKey(ns, {kBucketLeases, id})));
    if (!exists) return NotFound(fmt::format("lease {:?}", id));
    return txn.DeleteTree(NsKey(ns, {kBucketLeases, id}));
  }));
  db_.NotifyMutation(true);
  return Ok();
}

Result<std::vector<Lease>> LeaseStore::List(const Context& ctx,
                                            const std::vector<std::string>& filter_strings) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::ParseAll(filter_strings));
  std::vector<Lease> out;
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    for (const auto& id : txn.Children(NsKey(ns, {kBucketLeases}))) {
      BERTH_ASSIGN_OR_RETURN(Lease l, ReadLease(txn, ns, id));
      auto adaptor = filters::MakeAdaptor({{"id", l.id}}, {{"labels", &l.labels}});
      if (filter.Match(adaptor)) out.push_back(std::move(l));
    }
    return Ok();
  }));
  return out;
}

Status LeaseStore::AddResource(const Context& ctx, const std::string& id, const LeaseResource& r) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_ASSIGN_OR_RETURN(auto kind, LeaseResourceKind(r));
  return db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(auto created, txn.Get(LeaseKey(ns, id, {"createdat"})));
    if (!created) return NotFound(fmt::format("lease {:?}", id));
    kind.push_back(r.id);
    return txn.Put(LeaseKey(ns, id, kind), "");
  });
}

Status LeaseStore::DeleteResource(const Context& ctx, const std::string& id,
                                  const LeaseResource& r) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  BERTH_ASSIGN_OR_RETURN(auto kind, LeaseResourceKind(r));
  BERTH_TRY(db_.Update([&](Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(auto created, txn.Get(LeaseKey(ns, id, {"createdat"})));
    if (!created) return NotFound(fmt::format("lease {:?}", id));
    kind.push_back(r.id);
    return txn.DeleteTree(LeaseKey(ns, id, kind));
  }));
  db_.NotifyMutation(true);
  return Ok();
}

Result<std::vector<LeaseResource>> LeaseStore::ListResources(const Context& ctx,
                                                             const std::string& id) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequireNamespace(ctx));
  std::vector<LeaseResource> out;
  BERTH_TRY(db_.View([&](const Txn& txn) -> Status {
    BERTH_ASSIGN_OR_RETURN(auto created, txn.Get(LeaseKey(ns, id, {"createdat"})));
    if (!created) return NotFound(fmt::format("lease {:?}", id));
    for (const auto& d : txn.Children(LeaseKey(ns, id, {"content"}))) {
      out.push_back({.id = d, .type = "content"});
    }
    for (const auto& ref : txn.Children(LeaseKey(ns, id, {"ingests"}))) {
      out.push_back({.id = ref, .type = "ingests"});
    }
    for (const auto& sn : txn.Children(LeaseKey(ns, id, {"snapshots"}))) {
      for (const auto& key : txn.Children(LeaseKey(ns, id, {"snapshots", sn}))) {
        out.push_back({.id = key, .type = "snapshots/" + sn});
      }
    }
    return Ok();
  }));
  return out;
}

Status LeaseStore::AddToContextLease(Txn& txn, const Context& ctx, std::vector<std::string> kind,
                                     const std::string& id) {
  if (ctx.lease.empty()) return Ok();
  BERTH_ASSIGN_OR_RETURN(auto created, txn.Get(LeaseKey(ctx.ns, ctx.lease, {"createdat"})));
  if (!created) return NotFound(fmt::format("lease {:?}: lease does not exist", ctx.lease));
  kind.push_back(id);
  return txn.Put(LeaseKey(ctx.ns, ctx.lease, kind), "");
}

Status LeaseStore::RemoveFromContextLease(Txn& txn, const Context& ctx,
                                          std::vector<std::string> kind, const std::string& id) {
  if (ctx.lease.empty()) return Ok();
  kind.push_back(id);
  return txn.DeleteTree(LeaseKey(ctx.ns, ctx.lease, kind));
}

}  // namespace berth::metadata

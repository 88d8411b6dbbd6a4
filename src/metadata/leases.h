#pragma once
// Leases: named sets of resources that garbage collection keeps (containerd's
// metadata/leases.go). A request carrying the containerd-lease header adds what it creates
// (content, ingests, snapshots) to that lease.
#include <string>
#include <vector>

#include "common/context.h"
#include "common/labels.h"
#include "common/timeutil.h"
#include "metadata/db.h"

namespace berth::metadata {

struct Lease {
  std::string id;
  Timestamp created_at{};
  Labels labels;
};

struct LeaseResource {
  std::string id;
  std::string type;  // "content", "ingests", "snapshots/<snapshotter>"
};

class LeaseStore {
 public:
  explicit LeaseStore(Db& db) : db_(db) {}

  // Empty id: InvalidArgument (the service generates one first). AlreadyExists on a duplicate.
  Result<Lease> Create(const Context& ctx, const std::string& id, const Labels& labels);
  // NotFound if absent; marks the GC dirty.
  Status Delete(const Context& ctx, const std::string& id);
  // Filters over `id` and `labels.*`.
  Result<std::vector<Lease>> List(const Context& ctx, const std::vector<std::string>& filters);
  Status AddResource(const Context& ctx, const std::string& id, const LeaseResource& r);
  Status DeleteResource(const Context& ctx, const std::string& id, const LeaseResource& r);
  Result<std::vector<LeaseResource>> ListResources(const Context& ctx, const std::string& id);

  // Adds a resource to the request's lease (ctx.lease), if any, inside `txn`. NotFound
  // "lease does not exist" for an unknown lease. `kind` is {"content"}, {"ingests"} or
  // {"snapshots", snapshotter}.
  static Status AddToContextLease(Txn& txn, const Context& ctx, std::vector<std::string> kind,
                                  const std::string& id);
  static Status RemoveFromContextLease(Txn& txn, const Context& ctx, std::vector<std::string> kind,
                                       const std::string& id);

 private:
  Db& db_;
};

// Parses a resource type into its bucket path; NotImplemented for unknown types.
Result<std::vector<std::string>> LeaseResourceKind(const LeaseResource& r);

}  // namespace berth::metadata

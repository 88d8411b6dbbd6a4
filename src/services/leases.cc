// containerd.services.leases.v1.Leases over the metadata lease store.
#include <github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h>

#include <openssl/rand.h>

#include <fmt/format.h>

#include "metadata/gc_scheduler.h"
#include "metadata/leases.h"
#include "services/plugins.h"
#include "services/pool.h"

namespace berth::services {
namespace {

namespace api = containerd::services::leases::v1;

void ToProto(const metadata::Lease& in, api::Lease* out) {
  out->set_id(in.id);
  SetTimestamp(in.created_at, out->mutable_created_at());
  out->mutable_labels()->insert(in.labels.begin(), in.labels.end());
}

// containerd's generated id: "<unix nanos>-<base64url of 3 random bytes>".
std::string GenerateLeaseId() {
  unsigned char b[3];
  RAND_bytes(b, sizeof b);
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  uint32_t v = (uint32_t{b[0]} << 16) | (uint32_t{b[1]} << 8) | b[2];
  std::string enc;
  for (int shift = 18; shift >= 0; shift -= 6) enc += kB64[(v >> shift) & 0x3f];
  return fmt::format("{}-{}", UnixNanos(Now()), enc);
}

class LeasesService final : public api::Leases::CallbackService {
 public:
  LeasesService(metadata::LeaseStore& store, metadata::GcScheduler* gc) : store_(store), gc_(gc) {}

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* rpc, const api::CreateRequest* req,
                                   api::CreateResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      std::string id = req->id().empty() ? GenerateLeaseId() : req->id();
      BERTH_ASSIGN_OR_RETURN(metadata::Lease l, store_.Create(ctx, id, ToMap(req->labels())));
      ToProto(l, resp->mutable_lease());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* rpc, const api::DeleteRequest* req,
                                   google::protobuf::Empty*) override {
    auto ctx = NamespacedContextFrom(rpc);
    std::string id = req->id();
    bool sync = req->sync();
    return OnPool(rpc, [this, ctx = std::move(ctx), id, sync]() -> Status {
      BERTH_TRY(ctx);
      BERTH_TRY(store_.Delete(*ctx, id));
      if (sync && gc_ != nullptr) BERTH_TRY(gc_->RunNow());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* rpc, const api::ListRequest* req,
                                 api::ListResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      std::vector<std::string> filters(req->filters().begin(), req->filters().end());
      BERTH_ASSIGN_OR_RETURN(auto leases, store_.List(ctx, filters));
      for (const auto& l : leases) ToProto(l, resp->add_leases());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* AddResource(grpc::CallbackServerContext* rpc,
                                        const api::AddResourceRequest* req,
                                        google::protobuf::Empty*) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      return store_.AddResource(ctx, req->id(),
                                {.id = req->resource().id(), .type = req->resource().type()});
    });
  }

  grpc::ServerUnaryReactor* DeleteResource(grpc::CallbackServerContext* rpc,
                                           const api::DeleteResourceRequest* req,
                                           google::protobuf::Empty*) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      return store_.DeleteResource(ctx, req->id(),
                                   {.id = req->resource().id(), .type = req->resource().type()});
    });
  }

  grpc::ServerUnaryReactor* ListResources(grpc::CallbackServerContext* rpc,
                                          const api::ListResourcesRequest* req,
                                          api::ListResourcesResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(auto rs, store_.ListResources(ctx, req->id()));
      for (const auto& r : rs) {
        auto* out = resp->add_resources();
        out->set_id(r.id);
        out->set_type(r.type);
      }
      return Ok();
    });
  }

 private:
  metadata::LeaseStore& store_;
  metadata::GcScheduler* gc_;
};

}  // namespace

void RegisterLeases(plugin::Registry& registry) {
  registry.Add({.type = plugin::kService,
                .id = "leases-service",
                .requires_types = {plugin::kMetadata, plugin::kGc},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* db, ic.GetSingle<metadata::Db>(plugin::kMetadata));
                  return plugin::Instance::Of<metadata::LeaseStore>(
                      std::make_shared<metadata::LeaseStore>(*db));
                }});
  registry.Add(
      {.type = plugin::kGrpc,
       .id = "leases",
       .requires_types = {plugin::kService},
       .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
         BERTH_ASSIGN_OR_RETURN(auto* store, ic.GetSingle<metadata::LeaseStore>(plugin::kService));
         auto* gc = ic.Plugins().Get<metadata::GcScheduler>(plugin::kGc);
         return plugin::Instance::Of<grpc::Service>(std::make_shared<LeasesService>(*store, gc));
       }});
}

}  // namespace berth::services

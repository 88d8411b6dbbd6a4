// containerd.services.snapshots.v1.Snapshots: namespaced snapshotters chosen per request.
#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h>

#include <fmt/format.h>

#include "metadata/snapshot_store.h"
#include "services/events_hook.h"
#include "services/plugins.h"
#include "services/pool.h"

namespace berth::services {
namespace {

namespace api = containerd::services::snapshots::v1;
using metadata::Snapshotters;

void ToProto(const snapshots::Info& in, api::Info* out) {
  out->set_name(in.name);
  out->set_parent(in.parent);
  out->set_kind(static_cast<api::Kind>(static_cast<int>(in.kind)));
  SetTimestamp(in.created, out->mutable_created_at());
  SetTimestamp(in.updated, out->mutable_updated_at());
  out->mutable_labels()->insert(in.labels.begin(), in.labels.end());
}

template <class RepeatedMounts>
void ToProto(const std::vector<mount::Mount>& in, RepeatedMounts* out) {
  for (const auto& m : in) {
    auto* o = out->Add();
    o->set_type(m.type);
    o->set_source(m.source);
    o->set_target(m.target);
    for (const auto& opt : m.options) o->add_options(opt);
  }
}

class SnapshotsService final : public api::Snapshots::CallbackService {
 public:
  SnapshotsService(Snapshotters& snapshotters, EventsHook events)
      : snapshotters_(snapshotters), events_(std::move(events)) {}

  grpc::ServerUnaryReactor* Prepare(grpc::CallbackServerContext* rpc,
                                    const api::PrepareSnapshotRequest* req,
                                    api::PrepareSnapshotResponse* resp) override {
    return Blocking(rpc, req->snapshotter(),
                    [=, this](const Context& ctx, snapshots::Snapshotter& sn) -> Status {
                      BERTH_ASSIGN_OR_RETURN(auto mounts, sn.Prepare(ctx, req->key(), req->parent(),
                                                                     ToMap(req->labels())));
                      ToProto(mounts, resp->mutable_mounts());
                      containerd::events::SnapshotPrepare ev;
                      ev.set_key(req->key());
                      ev.set_parent(req->parent());
                      events_.Publish(ctx, "/snapshot/prepare", ev);
                      return Ok();
                    });
  }

  grpc::ServerUnaryReactor* View(grpc::CallbackServerContext* rpc,
                                 const api::ViewSnapshotRequest* req,
                                 api::ViewSnapshotResponse* resp) override {
    return Blocking(
        rpc, req->snapshotter(), [=](const Context& ctx, snapshots::Snapshotter& sn) -> Status {
          BERTH_ASSIGN_OR_RETURN(auto mounts,
                                 sn.View(ctx, req->key(), req->parent(), ToMap(req->labels())));
          ToProto(mounts, resp->mutable_mounts());
          return Ok();
        });
  }

  grpc::ServerUnaryReactor* Mounts(grpc::CallbackServerContext* rpc, const api::MountsRequest* req,
                                   api::MountsResponse* resp) override {
    return Blocking(rpc, req->snapshotter(),
                    [=](const Context& ctx, snapshots::Snapshotter& sn) -> Status {
                      BERTH_ASSIGN_OR_RETURN(auto mounts, sn.Mounts(ctx, req->key()));
                      ToProto(mounts, resp->mutable_mounts());
                      return Ok();
                    });
  }

  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* rpc,
                                   const api::CommitSnapshotRequest* req,
                                   google::protobuf::Empty*) override {
    return Blocking(rpc, req->snapshotter(),
                    [=, this](const Context& ctx, snapshots::Snapshotter& sn) -> Status {
                      BERTH_TRY(sn.Commit(ctx, req->name(), req->key(), ToMap(req->labels())));
                      containerd::events::SnapshotCommit ev;
                      ev.set_key(req->key());
                      ev.set_name(req->name());
                      events_.Publish(ctx, "/snapshot/commit", ev);
                      return Ok();
                    });
  }

  grpc::ServerUnaryReactor* Remove(grpc::CallbackServerContext* rpc,
                                   const api::RemoveSnapshotRequest* req,
                                   google::protobuf::Empty*) override {
    return Blocking(rpc, req->snapshotter(),
                    [=, this](const Context& ctx, snapshots::Snapshotter& sn) -> Status {
                      BERTH_TRY(sn.Remove(ctx, req->key()));
                      containerd::events::SnapshotRemove ev;
                      ev.set_key(req->key());
                      events_.Publish(ctx, "/snapshot/remove", ev);
                      return Ok();
                    });
  }

  grpc::ServerUnaryReactor* Stat(grpc::CallbackServerContext* rpc,
                                 const api::StatSnapshotRequest* req,
                                 api::StatSnapshotResponse* resp) override {
    return Blocking(rpc, req->snapshotter(),
                    [=](const Context& ctx, snapshots::Snapshotter& sn) -> Status {
                      BERTH_ASSIGN_OR_RETURN(auto info, sn.Stat(ctx, req->key()));
                      ToProto(info, resp->mutable_info());
                      return Ok();
                    });
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* rpc,
                                   const api::UpdateSnapshotRequest* req,
                                   api::UpdateSnapshotResponse* resp) override {
    return Blocking(
        rpc, req->snapshotter(), [=](const Context& ctx, snapshots::Snapshotter& sn) -> Status {
          snapshots::Info in{.name = req->info().name(), .labels = ToMap(req->info().labels())};
          std::vector<std::string> paths(req->update_mask().paths().begin(),
                                         req->update_mask().paths().end());
          BERTH_ASSIGN_OR_RETURN(auto info, sn.Update(ctx, in, paths));
          ToProto(info, resp->mutable_info());
          return Ok();
        });
  }

  grpc::ServerWriteReactor<api::ListSnapshotsResponse>* List(
      grpc::CallbackServerContext* rpc, const api::ListSnapshotsRequest* req) override {
    auto* w = new QueueWriter<api::ListSnapshotsResponse>();
    auto ctx = NamespacedContextFrom(rpc);
    auto sn = snapshotters_.Get(req->snapshotter());
    std::vector<std::string> filters(req->filters().begin(), req->filters().end());
    PostBlocking([w, ctx = std::move(ctx), sn, filters = std::move(filters)] {
      w->Start([&]() -> Result<std::vector<api::ListSnapshotsResponse>> {
        BERTH_TRY(ctx);
        BERTH_TRY(sn);
        std::vector<api::ListSnapshotsResponse> out;
        BERTH_TRY((*sn)->Walk(
            *ctx,
            [&](const snapshots::Info& info) -> Status {
              if (out.empty() || out.back().info_size() >= 100) out.emplace_back();
              ToProto(info, out.back().add_info());
              return Ok();
            },
            filters));
        return out;
      }());
    });
    return w;
  }

  grpc::ServerUnaryReactor* Usage(grpc::CallbackServerContext* rpc, const api::UsageRequest* req,
                                  api::UsageResponse* resp) override {
    return Blocking(rpc, req->snapshotter(),
                    [=](const Context& ctx, snapshots::Snapshotter& sn) -> Status {
                      BERTH_ASSIGN_OR_RETURN(auto usage, sn.Usage(ctx, req->key()));
                      resp->set_size(usage.size);
                      resp->set_inodes(usage.inodes);
                      return Ok();
                    });
  }

  grpc::ServerUnaryReactor* Cleanup(grpc::CallbackServerContext* rpc,
                                    const api::CleanupRequest* req,
                                    google::protobuf::Empty*) override {
    return Blocking(rpc, req->snapshotter(),
                    [](const Context& ctx, snapshots::Snapshotter& sn) { return sn.Cleanup(ctx); });
  }

 private:
  // Resolves the namespace and snapshotter, then runs fn on the pool (snapshot work mounts,
  // copies and walks directories).
  template <class Fn>
  grpc::ServerUnaryReactor* Blocking(grpc::CallbackServerContext* rpc, const std::string& name,
                                     Fn fn) {
    auto ctx = NamespacedContextFrom(rpc);
    auto sn = snapshotters_.Get(name);
    return OnPool(rpc, [ctx = std::move(ctx), sn = std::move(sn), fn = std::move(fn)]() -> Status {
      BERTH_TRY(ctx);
      BERTH_TRY(sn);
      return fn(*ctx, **sn);
    });
  }

  Snapshotters& snapshotters_;
  EventsHook events_;
};

}  // namespace

void RegisterSnapshots(plugin::Registry& registry) {
  registry.Add({.type = plugin::kService,
                .id = "snapshots-service",
                .requires_types = {plugin::kMetadata},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* db, ic.GetSingle<metadata::Db>(plugin::kMetadata));
                  auto set = std::make_shared<Snapshotters>();
                  for (const auto& [name, backend] : db->SnapshotBackends()) {
                    set->Add(std::make_unique<metadata::SnapshotStore>(*db, name, *backend));
                  }
                  return plugin::Instance::Of<Snapshotters>(std::move(set));
                }});
  registry.Add({.type = plugin::kGrpc,
                .id = "snapshots",
                .requires_types = {plugin::kService},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* set, ic.GetSingle<Snapshotters>(plugin::kService));
                  return plugin::Instance::Of<grpc::Service>(
                      std::make_shared<SnapshotsService>(*set, EventsHook::From(ic)));
                }});
}

}  // namespace berth::services

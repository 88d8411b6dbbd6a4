// containerd.services.containers.v1.Containers over the metadata container store, with the
// /containers/{create,update,delete} events (containerd's services/containers/local.go).
#include <github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h>

#include <fmt/format.h>

#include "metadata/containers.h"
#include "services/events_hook.h"
#include "services/plugins.h"
#include "services/pool.h"

namespace berth::services {
namespace {

namespace api = containerd::services::containers::v1;

void ToProto(const metadata::Any& in, google::protobuf::Any* out) {
  out->set_type_url(in.type_url);  // bare URL, as Go clients look it up
  out->set_value(in.value);
}

metadata::Any FromProto(const google::protobuf::Any& in) {
  return {.type_url = in.type_url(), .value = in.value()};
}

void ToProto(const metadata::Container& in, api::Container* out) {
  out->set_id(in.id);
  out->mutable_labels()->insert(in.labels.begin(), in.labels.end());
  out->set_image(in.image);
  auto* runtime = out->mutable_runtime();
  runtime->set_name(in.runtime.name);
  if (in.runtime.options) ToProto(*in.runtime.options, runtime->mutable_options());
  if (in.spec) ToProto(*in.spec, out->mutable_spec());
  out->set_snapshotter(in.snapshotter);
  out->set_snapshot_key(in.snapshot_key);
  SetTimestamp(in.created_at, out->mutable_created_at());
  SetTimestamp(in.updated_at, out->mutable_updated_at());
  for (const auto& [name, any] : in.extensions) {
    ToProto(any, &(*out->mutable_extensions())[name]);
  }
}

metadata::Container FromProto(const api::Container& in) {
  metadata::Container out{
      .id = in.id(),
      .labels = ToMap(in.labels()),
      .image = in.image(),
      .snapshotter = in.snapshotter(),
      .snapshot_key = in.snapshot_key(),
  };
  if (in.has_runtime()) {
    out.runtime.name = in.runtime().name();
    if (in.runtime().has_options()) out.runtime.options = FromProto(in.runtime().options());
  }
  if (in.has_spec()) out.spec = FromProto(in.spec());
  for (const auto& [name, any] : in.extensions()) out.extensions.emplace(name, FromProto(any));
  return out;
}

class ContainersService final : public api::Containers::CallbackService {
 public:
  ContainersService(metadata::ContainerStore& store, EventsHook events)
      : store_(store), events_(std::move(events)) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* rpc,
                                const api::GetContainerRequest* req,
                                api::GetContainerResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(metadata::Container c, store_.Get(ctx, req->id()));
      ToProto(c, resp->mutable_container());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* rpc,
                                 const api::ListContainersRequest* req,
                                 api::ListContainersResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      std::vector<std::string> filters(req->filters().begin(), req->filters().end());
      BERTH_ASSIGN_OR_RETURN(auto containers, store_.List(ctx, filters));
      for (const auto& c : containers) ToProto(c, resp->add_containers());
      return Ok();
    });
  }

  // One container per message (a large list never hits the message size limit).
  grpc::ServerWriteReactor<api::ListContainerMessage>* ListStream(
      grpc::CallbackServerContext* rpc, const api::ListContainersRequest* req) override {
    auto* w = new QueueWriter<api::ListContainerMessage>();
    auto ctx = NamespacedContextFrom(rpc);
    std::vector<std::string> filters(req->filters().begin(), req->filters().end());
    PostBlocking([this, w, ctx = std::move(ctx), filters = std::move(filters)] {
      w->Start([&]() -> Result<std::vector<api::ListContainerMessage>> {
        BERTH_TRY(ctx);
        BERTH_ASSIGN_OR_RETURN(auto containers, store_.List(*ctx, filters));
        std::vector<api::ListContainerMessage> out(containers.size());
        for (size_t i = 0; i < containers.size(); ++i) {
          ToProto(containers[i], out[i].mutable_container());
        }
        return out;
      }());
    });
    return w;
  }

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* rpc,
                                   const api::CreateContainerRequest* req,
                                   api::CreateContainerResponse* resp) override {
    auto ctx = NamespacedContextFrom(rpc);
    return OnPool(rpc, [this, ctx = std::move(ctx), req, resp]() -> Status {
      BERTH_TRY(ctx);
      BERTH_ASSIGN_OR_RETURN(metadata::Container created,
                             store_.Create(*ctx, FromProto(req->container())));
      ToProto(created, resp->mutable_container());
      containerd::events::ContainerCreate ev;
      ev.set_id(created.id);
      ev.set_image(created.image);
      ev.mutable_runtime()->set_name(created.runtime.name);
      if (created.runtime.options) {
        ToProto(*created.runtime.options, ev.mutable_runtime()->mutable_options());
      }
      events_.Publish(*ctx, "/containers/create", ev);
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* rpc,
                                   const api::UpdateContainerRequest* req,
                                   api::UpdateContainerResponse* resp) override {
    if (req->container().id().empty()) {
      return Unary(rpc, [] { return Status(InvalidArgument("Container.ID required")); });
    }
    auto ctx = NamespacedContextFrom(rpc);
    return OnPool(rpc, [this, ctx = std::move(ctx), req, resp]() -> Status {
      BERTH_TRY(ctx);
      std::vector<std::string> paths(req->update_mask().paths().begin(),
                                     req->update_mask().paths().end());
      BERTH_ASSIGN_OR_RETURN(metadata::Container updated,
                             store_.Update(*ctx, FromProto(req->container()), paths));
      ToProto(updated, resp->mutable_container());
      containerd::events::ContainerUpdate ev;
      ev.set_id(updated.id);
      ev.set_image(updated.image);
      ev.mutable_labels()->insert(updated.labels.begin(), updated.labels.end());
      ev.set_snapshot_key(updated.snapshot_key);
      events_.Publish(*ctx, "/containers/update", ev);
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* rpc,
                                   const api::DeleteContainerRequest* req,
                                   google::protobuf::Empty*) override {
    auto ctx = NamespacedContextFrom(rpc);
    return OnPool(rpc, [this, ctx = std::move(ctx), id = req->id()]() -> Status {
      BERTH_TRY(ctx);
      BERTH_TRY(store_.Delete(*ctx, id));
      containerd::events::ContainerDelete ev;
      ev.set_id(id);
      events_.Publish(*ctx, "/containers/delete", ev);
      return Ok();
    });
  }

 private:
  metadata::ContainerStore& store_;
  EventsHook events_;
};

}  // namespace

void RegisterContainers(plugin::Registry& registry) {
  registry.Add({.type = plugin::kService,
                .id = "containers-service",
                .requires_types = {plugin::kMetadata, plugin::kEvent},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* db, ic.GetSingle<metadata::Db>(plugin::kMetadata));
                  return plugin::Instance::Of<metadata::ContainerStore>(
                      std::make_shared<metadata::ContainerStore>(*db));
                }});
  registry.Add({.type = plugin::kGrpc,
                .id = "containers",
                .requires_types = {plugin::kService},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* store,
                                         ic.GetSingle<metadata::ContainerStore>(plugin::kService));
                  return plugin::Instance::Of<grpc::Service>(
                      std::make_shared<ContainersService>(*store, EventsHook::From(ic)));
                }});
}

}  // namespace berth::services

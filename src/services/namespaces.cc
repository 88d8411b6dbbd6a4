#include <github.com/containerd/containerd/api/events/namespace.pb.h>
#include <github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h>

#include <fmt/format.h>

#include "events/exchange.h"
#include "metadata/namespaces.h"
#include "services/plugins.h"

namespace berth::services {
namespace {

namespace api = containerd::services::namespaces::v1;

Labels ToLabels(const google::protobuf::Map<std::string, std::string>& m) {
  return {m.begin(), m.end()};
}

class NamespacesService final : public api::Namespaces::CallbackService {
 public:
  NamespacesService(metadata::NamespaceStore& store, events::Publisher& publisher)
      : store_(store), publisher_(publisher) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* rpc,
                                const api::GetNamespaceRequest* req,
                                api::GetNamespaceResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_TRY(ContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(Labels labels, store_.GetLabels(req->name()));
      auto* ns = resp->mutable_namespace_();
      ns->set_name(req->name());
      ns->mutable_labels()->insert(labels.begin(), labels.end());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* rpc,
                                 const api::ListNamespacesRequest* /*req*/,
                                 api::ListNamespacesResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_TRY(ContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(auto names, store_.List());
      for (const auto& name : names) {
        BERTH_ASSIGN_OR_RETURN(Labels labels, store_.GetLabels(name));
        auto* ns = resp->add_namespaces();
        ns->set_name(name);
        ns->mutable_labels()->insert(labels.begin(), labels.end());
      }
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* rpc,
                                   const api::CreateNamespaceRequest* req,
                                   api::CreateNamespaceResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, ContextFrom(rpc));
      const auto& ns = req->namespace_();
      BERTH_TRY(store_.Create(ns.name(), ToLabels(ns.labels())));
      *resp->mutable_namespace_() = ns;
      // In the request's namespace, which must be set: containerd fails the (already committed)
      // request otherwise (services/namespaces/local.go).
      containerd::events::NamespaceCreate ev;
      ev.set_name(ns.name());
      *ev.mutable_labels() = ns.labels();
      return publisher_.Publish(ctx, "/namespaces/create", ev);
    });
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* rpc,
                                   const api::UpdateNamespaceRequest* req,
                                   api::UpdateNamespaceResponse* /*resp*/) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, ContextFrom(rpc));
      const auto& ns = req->namespace_();
      BERTH_TRY(UpdateLabels(*req));
      // The labels as given in the request (with a mask: only the masked ones), as containerd.
      containerd::events::NamespaceUpdate ev;
      ev.set_name(ns.name());
      *ev.mutable_labels() = ns.labels();
      return publisher_.Publish(ctx, "/namespaces/update", ev);
    });
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* rpc,
                                   const api::DeleteNamespaceRequest* req,
                                   google::protobuf::Empty* /*resp*/) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, ContextFrom(rpc));
      BERTH_TRY(store_.Delete(req->name()));
      // containerd publishes the delete in the deleted namespace, not the caller's.
      ctx.ns = req->name();
      containerd::events::NamespaceDelete ev;
      ev.set_name(req->name());
      return publisher_.Publish(ctx, "/namespaces/delete", ev);
    });
  }

 private:
  // The labels of the request: with an update mask only the masked keys (an unmasked label is
  // ignored, a masked one not given is cleared), without one all of them, replaced.
  Status UpdateLabels(const api::UpdateNamespaceRequest& req) {
    const auto& ns = req.namespace_();
    Labels given = ToLabels(ns.labels());
    if (req.has_update_mask() && req.update_mask().paths_size() > 0) {
      // Check every path before changing anything.
      for (const auto& path : req.update_mask().paths()) {
        if (path.rfind("labels.", 0) != 0) {
          return InvalidArgument(fmt::format("cannot update {:?} field", path));
        }
      }
      for (const auto& path : req.update_mask().paths()) {
        std::string key = path.substr(std::string_view("labels.").size());
        auto it = given.find(key);
        BERTH_TRY(store_.SetLabel(ns.name(), key, it == given.end() ? "" : it->second));
      }
      return Ok();
    }
    return store_.SetLabels(ns.name(), given);
  }

  metadata::NamespaceStore& store_;
  events::Publisher& publisher_;
};

}  // namespace

void RegisterNamespaces(plugin::Registry& registry) {
  registry.Add({.type = plugin::kService,
                .id = "namespaces-service",
                .requires_types = {plugin::kEvent, plugin::kMetadata},  // as containerd's
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* db, ic.GetSingle<metadata::Db>(plugin::kMetadata));
                  return plugin::Instance::Of<metadata::NamespaceStore>(
                      std::make_shared<metadata::NamespaceStore>(*db));
                }});
  registry.Add({.type = plugin::kGrpc,
                .id = "namespaces",
                .requires_types = {plugin::kService},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* store,
                                         ic.GetSingle<metadata::NamespaceStore>(plugin::kService));
                  BERTH_ASSIGN_OR_RETURN(auto* exchange,
                                         ic.GetSingle<events::Exchange>(plugin::kEvent));
                  return plugin::Instance::Of<grpc::Service>(
                      std::make_shared<NamespacesService>(*store, *exchange));
                }});
}

}  // namespace berth::services

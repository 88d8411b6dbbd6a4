// containerd.services.images.v1.Images over the metadata image store.
#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>

#include <fmt/format.h>

#include "metadata/gc_scheduler.h"
#include "metadata/images.h"
#include "services/events_hook.h"
#include "services/plugins.h"
#include "services/pool.h"

namespace berth::services {
namespace {

namespace api = containerd::services::images::v1;

void ToProto(const metadata::Image& in, api::Image* out) {
  out->set_name(in.name);
  out->mutable_labels()->insert(in.labels.begin(), in.labels.end());
  auto* t = out->mutable_target();
  t->set_media_type(in.target.media_type);
  t->set_digest(in.target.digest.String());
  t->set_size(in.target.size);
  t->mutable_annotations()->insert(in.target.annotations.begin(), in.target.annotations.end());
  SetTimestamp(in.created_at, out->mutable_created_at());
  SetTimestamp(in.updated_at, out->mutable_updated_at());
}

Result<metadata::Image> FromProto(const api::Image& in) {
  metadata::Image out{.name = in.name(), .labels = ToMap(in.labels())};
  out.target.media_type = in.target().media_type();
  out.target.size = in.target().size();
  out.target.annotations = ToMap(in.target().annotations());
  if (!in.target().digest().empty()) {
    auto d = Digest::Parse(in.target().digest());
    if (!d) return std::move(d).error().Wrap("Target.Digest");
    out.target.digest = *d;
  }
  return out;
}

class ImagesService final : public api::Images::CallbackService {
 public:
  ImagesService(metadata::ImageStore& store, metadata::GcScheduler* gc, EventsHook events)
      : store_(store), gc_(gc), events_(std::move(events)) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* rpc, const api::GetImageRequest* req,
                                api::GetImageResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(metadata::Image img, store_.Get(ctx, req->name()));
      ToProto(img, resp->mutable_image());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* rpc,
                                 const api::ListImagesRequest* req,
                                 api::ListImagesResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      std::vector<std::string> filters(req->filters().begin(), req->filters().end());
      BERTH_ASSIGN_OR_RETURN(auto images, store_.List(ctx, filters));
      for (const auto& img : images) ToProto(img, resp->add_images());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* rpc,
                                   const api::CreateImageRequest* req,
                                   api::CreateImageResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(metadata::Image in, FromProto(req->image()));
      BERTH_ASSIGN_OR_RETURN(metadata::Image created, store_.Create(ctx, std::move(in)));
      ToProto(created, resp->mutable_image());
      containerd::services::images::v1::ImageCreate ev;
      ev.set_name(created.name);
      ev.mutable_labels()->insert(created.labels.begin(), created.labels.end());
      events_.Publish(ctx, "/images/create", ev);
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* rpc,
                                   const api::UpdateImageRequest* req,
                                   api::UpdateImageResponse* resp) override {
    return Unary(rpc, [&]() -> Status {
      BERTH_ASSIGN_OR_RETURN(Context ctx, NamespacedContextFrom(rpc));
      BERTH_ASSIGN_OR_RETURN(metadata::Image in, FromProto(req->image()));
      std::vector<std::string> paths(req->update_mask().paths().begin(),
                                     req->update_mask().paths().end());
      BERTH_ASSIGN_OR_RETURN(metadata::Image updated, store_.Update(ctx, in, paths));
      ToProto(updated, resp->mutable_image());
      containerd::services::images::v1::ImageUpdate ev;
      ev.set_name(updated.name);
      ev.mutable_labels()->insert(updated.labels.begin(), updated.labels.end());
      events_.Publish(ctx, "/images/update", ev);
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* rpc,
                                   const api::DeleteImageRequest* req,
                                   google::protobuf::Empty*) override {
    auto ctx = NamespacedContextFrom(rpc);
    std::string name = req->name();
    bool sync = req->sync();
    return OnPool(rpc, [this, ctx = std::move(ctx), name, sync]() -> Status {
      BERTH_TRY(ctx);
      BERTH_TRY(store_.Delete(*ctx, name));
      containerd::services::images::v1::ImageDelete ev;
      ev.set_name(name);
      events_.Publish(*ctx, "/images/delete", ev);
      if (sync && gc_ != nullptr) {
        BERTH_TRY(gc_->RunNow());
      }
      return Ok();
    });
  }

 private:
  metadata::ImageStore& store_;
  metadata::GcScheduler* gc_;
  EventsHook events_;
};

}  // namespace

void RegisterImages(plugin::Registry& registry) {
  registry.Add({.type = plugin::kService,
                .id = "images-service",
                .requires_types = {plugin::kMetadata, plugin::kGc},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* db, ic.GetSingle<metadata::Db>(plugin::kMetadata));
                  return plugin::Instance::Of<metadata::ImageStore>(
                      std::make_shared<metadata::ImageStore>(*db));
                }});
  registry.Add({.type = plugin::kGrpc,
                .id = "images",
                .requires_types = {plugin::kService},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* store,
                                         ic.GetSingle<metadata::ImageStore>(plugin::kService));
                  auto* gc = ic.Plugins().Get<metadata::GcScheduler>(plugin::kGc);
                  return plugin::Instance::Of<grpc::Service>(
                      std::make_shared<ImagesService>(*store, gc, EventsHook::From(ic)));
                }});
}

}  // namespace berth::services

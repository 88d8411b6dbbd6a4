#include "client/remote_stores.h"

#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>

#include <fmt/format.h>

#include "client/content.h"
#include "client/unpack.h"

namespace berth::client {
namespace {

namespace images_api = containerd::services::images::v1;

class RemoteWriter final : public transfer::BlobWriter {
 public:
  explicit RemoteWriter(std::unique_ptr<ContentWriter> w) : w_(std::move(w)) {}
  int64_t Offset() const override { return w_->Offset(); }
  Status Write(std::string_view data) override { return w_->Write(data); }
  Status Commit(const transfer::Labels& labels) override { return w_->Commit(labels); }
  Status Abort() override { return w_->Abort(); }

 private:
  std::unique_ptr<ContentWriter> w_;
};

}  // namespace

Result<transfer::BlobInfo> RemoteStores::ContentInfo(const Context& ctx,
                                                     const std::string& digest) {
  BERTH_ASSIGN_OR_RETURN(BlobInfo info, StatContent(For(ctx), digest));
  return transfer::BlobInfo{.size = info.size, .labels = std::move(info.labels)};
}

Result<std::string> RemoteStores::ReadBlob(const Context& ctx, const OciDescriptor& desc) {
  return ReadContent(For(ctx), desc);
}

Status RemoteStores::UpdateContentLabels(const Context& ctx, const std::string& digest,
                                         const transfer::Labels& labels) {
  return client::UpdateContentLabels(For(ctx), digest, labels);
}

Result<std::unique_ptr<transfer::BlobWriter>> RemoteStores::OpenWriter(
    const Context& ctx, const std::string& ref, int64_t total, const std::string& expected) {
  BERTH_ASSIGN_OR_RETURN(auto w, ContentWriter::Open(For(ctx), ref, total, expected));
  return std::unique_ptr<transfer::BlobWriter>(std::make_unique<RemoteWriter>(std::move(w)));
}

Result<std::string> RemoteStores::ResolveSnapshotter(const Context& ctx, const std::string& name) {
  return ResolveSnapshotterName(For(ctx), name);
}

Status RemoteStores::StatSnapshot(const Context& ctx, const std::string& sn,
                                  const std::string& key) {
  BERTH_TRY(SnapshotClient(For(ctx), sn).Stat(key));
  return Ok();
}

Result<std::vector<mount::Mount>> RemoteStores::PrepareSnapshot(const Context& ctx,
                                                                const std::string& sn,
                                                                const std::string& key,
                                                                const std::string& parent,
                                                                const transfer::Labels& labels) {
  return SnapshotClient(For(ctx), sn).Prepare(key, parent, labels);
}

Status RemoteStores::CommitSnapshot(const Context& ctx, const std::string& sn,
                                    const std::string& name, const std::string& key,
                                    const transfer::Labels& labels) {
  return SnapshotClient(For(ctx), sn).Commit(name, key, labels);
}

Status RemoteStores::RemoveSnapshot(const Context& ctx, const std::string& sn,
                                    const std::string& key) {
  return SnapshotClient(For(ctx), sn).Remove(key);
}

Result<OciDescriptor> RemoteStores::ApplyLayer(const Context& ctx, const OciDescriptor& layer,
                                               const std::vector<mount::Mount>& mounts) {
  return DiffApply(For(ctx), layer, mounts);
}

Status RemoteStores::PutImage(const Context& ctx, const std::string& name,
                              const OciDescriptor& target, const transfer::Labels& labels) {
  Session session = For(ctx);
  auto stub = images_api::Images::NewStub(session.Channel());
  images_api::Image image;
  image.set_name(name);
  for (const auto& [k, v] : labels) (*image.mutable_labels())[k] = v;
  image.mutable_target()->set_media_type(target.media_type);
  image.mutable_target()->set_digest(target.digest);
  image.mutable_target()->set_size(target.size);
  images_api::CreateImageRequest creq;
  *creq.mutable_image() = image;
  images_api::CreateImageResponse cresp;
  {
    auto rpc = session.Context();
    grpc::Status st = stub->Create(rpc.get(), creq, &cresp);
    if (st.ok()) return Ok();
    Error e = FromGrpc(st);
    if (!e.Is(Errc::kAlreadyExists)) {
      return std::move(e).Wrap(fmt::format("failed to create image {}", name));
    }
  }
  // client.createNewImage: an existing record is updated (all fields).
  images_api::UpdateImageRequest ureq;
  *ureq.mutable_image() = image;
  images_api::UpdateImageResponse uresp;
  auto rpc = session.Context();
  if (grpc::Status st = stub->Update(rpc.get(), ureq, &uresp); !st.ok()) {
    return FromGrpc(st).Wrap(fmt::format("failed to update image {}", name));
  }
  return Ok();
}

Result<std::string> RemoteStores::CreateLease(const Context& ctx, const transfer::LeaseSpec& spec) {
  return client::CreateLease(For(ctx), spec);
}

Status RemoteStores::DeleteLease(const Context& ctx, const std::string& id) {
  return client::DeleteLease(For(ctx), id);
}

}  // namespace berth::client

// berth::Image and the image records of berth::Client (get, list, delete).
#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>

#include <fmt/format.h>

#include "client/lib_internal.h"
#include "client/unpack.h"
#include "oci/spec.h"

namespace berth {
namespace {

namespace images_api = containerd::services::images::v1;

images::BlobReader Reader(const client::Session& session) {
  return [session](const images::OciDescriptor& d) { return client::ReadContent(session, d); };
}

Image FromRecord(const std::shared_ptr<const detail::ClientState>& state,
                 const images_api::Image& i) {
  const auto& t = i.target();
  return Image(state, i.name(), Descriptor{t.media_type(), t.digest(), t.size()},
               {i.labels().begin(), i.labels().end()}, "", detail::FromProto(i.created_at()),
               detail::FromProto(i.updated_at()));
}

}  // namespace

Image::Image(std::shared_ptr<const detail::ClientState> client, std::string name, Descriptor target,
             std::map<std::string, std::string> labels, std::string platform,
             std::chrono::system_clock::time_point created_at,
             std::chrono::system_clock::time_point updated_at)
    : client_(std::move(client)),
      name_(std::move(name)),
      target_(std::move(target)),
      labels_(std::move(labels)),
      platform_(std::move(platform)),
      created_at_(created_at),
      updated_at_(updated_at) {
  if (platform_.empty()) platform_ = images::FormatPlatform(images::DefaultPlatform());
}

Result<ImageConfig> Image::Config() const {
  const auto& s = client_->session;
  auto reader = Reader(s);
  auto manifest =
      images::ImageManifest(reader, detail::ToOci(target_), detail::MatcherFor(platform_));
  if (!manifest) return std::move(manifest).error().Wrap(fmt::format("image {:?}", name_));
  BERTH_ASSIGN_OR_RETURN(std::string blob, client::ReadContent(s, manifest->config));
  auto parsed = oci::ParseImageConfig(blob);
  if (!parsed) {
    return std::move(parsed).error().Wrap(
        fmt::format("image {:?} config {}", name_, manifest->config.digest));
  }
  ImageConfig out;
  out.env = parsed->env;
  out.entrypoint = parsed->entrypoint;
  out.cmd = parsed->cmd;
  out.working_dir = parsed->working_dir;
  out.user = parsed->user;
  out.stop_signal = parsed->stop_signal;
  out.labels = parsed->labels;
  out.descriptor = detail::ToDescriptor(manifest->config);
  return out;
}

Result<std::vector<std::string>> Image::RootFs() const {
  auto r = images::ImageRootFs(Reader(client_->session), detail::ToOci(target_),
                               detail::MatcherFor(platform_));
  if (!r) return std::move(r).error().Wrap(fmt::format("image {:?}", name_));
  return r;
}

Result<int64_t> Image::Size() const {
  auto r = images::ImageSize(Reader(client_->session), detail::ToOci(target_),
                             detail::MatcherFor(platform_));
  if (r.error) return Error(*r.error).Wrap(fmt::format("size of image {:?}", name_));
  return r.size;
}

Result<bool> Image::IsUnpacked(const std::string& snapshotter) const {
  const auto& s = client_->session;
  BERTH_ASSIGN_OR_RETURN(std::string name, client::ResolveSnapshotterName(s, snapshotter));
  BERTH_ASSIGN_OR_RETURN(auto diff_ids, RootFs());
  client::SnapshotClient snapshots(s, name);
  auto st = snapshots.Stat(images::ChainId(diff_ids));
  if (st) return true;
  if (st.error().Is(Errc::kNotFound)) return false;
  return std::move(st).error();
}

Result<UnpackInfo> Image::Unpack(const std::string& snapshotter) const {
  const auto& s = client_->session;
  BERTH_ASSIGN_OR_RETURN(std::string name, client::ResolveSnapshotterName(s, snapshotter));
  auto r = client::UnpackImage(s, detail::ToOci(target_), detail::MatcherFor(platform_),
                               {.snapshotter = name});
  if (!r) return std::move(r).error().Wrap(fmt::format("unpack image {:?}", name_));
  return UnpackInfo{name, r->chain_id, r->applied};
}

// ---- Client: image records ----

Result<Image> Client::GetImage(const std::string& name) const {
  auto stub = images_api::Images::NewStub(state_->session.Channel());
  images_api::GetImageRequest req;
  req.set_name(name);
  images_api::GetImageResponse resp;
  auto ctx = state_->session.Context();
  if (auto st = stub->Get(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  return FromRecord(state_, resp.image());
}

Result<std::vector<Image>> Client::ListImages(const std::vector<std::string>& filters) const {
  auto stub = images_api::Images::NewStub(state_->session.Channel());
  images_api::ListImagesRequest req;
  for (const auto& f : filters) req.add_filters(f);
  images_api::ListImagesResponse resp;
  auto ctx = state_->session.Context();
  if (auto st = stub->List(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  std::vector<Image> out;
  for (const auto& i : resp.images()) out.push_back(FromRecord(state_, i));
  return out;
}

Status Client::DeleteImage(const std::string& name, bool sync) const {
  auto stub = images_api::Images::NewStub(state_->session.Channel());
  images_api::DeleteImageRequest req;
  req.set_name(name);
  req.set_sync(sync);
  google::protobuf::Empty resp;
  auto ctx = state_->session.Context();
  if (auto st = stub->Delete(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st).Wrap(fmt::format("delete image {:?}", name));
  }
  return Ok();
}

}  // namespace berth

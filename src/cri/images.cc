// The CRI ImageService (containerd 1.6 image_pull.go, image_status.go, image_list.go,
// image_remove.go, imagefs_info.go; reference/cri.md §9) over the image records of k8s.io.
#include "cri/images.h"

#include <github.com/containerd/containerd/api/events/image.pb.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/reference.h"
#include "cri/service.h"
#include "remotes/auth.h"
#include "transfer/pull.h"
#include "transfer/unpack.h"

namespace berth::cri {
namespace {

constexpr const char* kManagedLabel = "io.cri-containerd.image";

images::PlatformMatcher HostPlatform() {
  return images::PlatformMatcher::Only(images::DefaultPlatform());
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

images::OciDescriptor ToOci(const Descriptor& d) {
  images::OciDescriptor out;
  out.media_type = d.media_type;
  out.digest = d.digest.String();
  out.size = d.size;
  return out;
}

// The user an image runs as: uid when the part before ':' is numeric, else the name.
void SetUser(const std::string& user, v1::Image* out) {
  std::string u = user.substr(0, user.find(':'));
  if (u.empty()) return;
  if (std::all_of(u.begin(), u.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    out->mutable_uid()->set_value(std::stoll(u));
  } else {
    out->set_username(u);
  }
}

void ToCri(const ImageView& v, v1::Image* out) {
  out->set_id(v.id);
  for (const auto& t : v.repo_tags) out->add_repo_tags(t);
  for (const auto& d : v.repo_digests) out->add_repo_digests(d);
  out->set_size(static_cast<uint64_t>(std::max<int64_t>(v.resolved.size, 0)));
  SetUser(v.resolved.config.user, out);
}

}  // namespace

Result<ResolvedTarget> ImageCache::Resolve(transfer::Stores& stores, const Context& ctx,
                                           const images::OciDescriptor& target) {
  {
    std::lock_guard lock(mu_);
    if (auto it = by_target_.find(target.digest); it != by_target_.end()) return it->second;
  }
  auto read = transfer::ContentReader(stores, ctx);
  ResolvedTarget r;
  BERTH_ASSIGN_OR_RETURN(r.manifest, images::ImageManifest(read, target, HostPlatform()));
  r.config_digest = r.manifest.config.digest;
  BERTH_ASSIGN_OR_RETURN(r.config_json, read(r.manifest.config));
  BERTH_ASSIGN_OR_RETURN(r.config, oci::ParseImageConfig(r.config_json));
  BERTH_ASSIGN_OR_RETURN(r.diff_ids, images::ImageRootFs(read, target, HostPlatform()));
  r.chain_id = images::ChainId(r.diff_ids);
  auto size = images::ImageSize(read, target, HostPlatform());
  if (size.error) return *size.error;
  r.size = size.size;
  std::lock_guard lock(mu_);
  by_target_[target.digest] = r;
  return r;
}

std::vector<ImageView> Service::AllImages() {
  std::vector<ImageView> out;
  auto records = options_.images->List(Ctx(), {});
  if (!records) {
    log::L().WithError(records.error()).Warn("list images");
    return out;
  }
  std::map<std::string, size_t> by_id;
  for (const auto& rec : *records) {
    auto target = ToOci(rec.target);
    auto resolved = image_cache_->Resolve(stores_, Ctx(), target);
    if (!resolved) continue;  // not (fully) pulled: not a CRI image
    const std::string id = resolved->config_digest;
    auto [it, inserted] = by_id.emplace(id, out.size());
    if (inserted) {
      ImageView v;
      v.id = id;
      v.target = target;
      v.resolved = std::move(resolved).value();
      out.push_back(std::move(v));
    }
    ImageView& v = out[it->second];
    v.records.push_back(rec.name);
    if (rec.name == id) continue;
    auto ref = reference::ParseNormalized(rec.name);
    if (!ref) continue;
    if (!ref->Digest().empty()) {
      v.repo_digests.push_back(ref->String());
    } else if (!ref->Tag().empty()) {
      v.repo_tags.push_back(ref->String());
    }
  }
  return out;
}

// containerd's localResolve: a full image ID; else a reference to a record; else a unique
// prefix of an image ID, with or without "sha256:" (its digest set: a prefix matching several
// images is an error, not one of them).
Result<ImageView> Service::ResolveImage(const std::string& ref) {
  auto all = AllImages();
  std::string hex = ref.starts_with("sha256:") ? ref.substr(7) : ref;
  const bool id_like = !hex.empty() && hex.size() <= 64 && IsHex(hex);
  if (id_like && ref.starts_with("sha256:") && hex.size() == 64) {
    for (const auto& v : all) {
      if (v.id == ref) return v;
    }
    return NotFound(fmt::format("image {:?} not found", ref));
  }
  if (auto named = reference::ParseNormalized(ref); named) {
    const std::string name = named->String();
    for (const auto& v : all) {
      if (std::find(v.records.begin(), v.records.end(), name) != v.records.end()) return v;
    }
  }
  if (id_like) {
    const ImageView* found = nullptr;
    for (const auto& v : all) {
      if (!v.id.substr(7).starts_with(hex)) continue;
      if (found != nullptr) return Unknown("ambiguous digest string");
      found = &v;
    }
    if (found != nullptr) return *found;
  }
  return NotFound(fmt::format("image {:?} not found", ref));
}

Result<std::string> Service::EnsureUnpacked(const ImageView& image) {
  const std::string& chain = image.resolved.chain_id;
  BERTH_ASSIGN_OR_RETURN(auto* sn, options_.snapshotters->Get(options_.config.snapshotter));
  if (!chain.empty() && sn->Stat(Ctx(), chain)) return chain;
  transfer::UnpackOptions uo{.snapshotter = options_.config.snapshotter,
                             .label_snapshot_ref = true};
  BERTH_ASSIGN_OR_RETURN(auto result,
                         transfer::UnpackImage(stores_, Ctx(), image.target, HostPlatform(), uo));
  return result.chain_id;
}

Result<std::string> Service::EnsureSandboxImage(std::string* image_name, oci::ImageConfig* config) {
  const std::string& ref = options_.config.sandbox_image;
  auto image = ResolveImage(ref);
  if (!image && image.error().Is(Errc::kNotFound)) {
    auto pulled = PullRef(ref, nullptr);
    if (!pulled) {
      return std::move(pulled).error().Wrap(fmt::format("failed to get sandbox image {:?}", ref));
    }
    image = ResolveImage(*pulled);
  }
  if (!image)
    return std::move(image).error().Wrap(fmt::format("failed to get sandbox image {:?}", ref));
  *image_name = image->repo_tags.empty() ? ref : image->repo_tags.front();
  *config = image->resolved.config;
  return EnsureUnpacked(*image);
}

Result<std::string> Service::PullRef(const std::string& ref, const v1::AuthConfig* auth) {
  BERTH_ASSIGN_OR_RETURN(auto named, reference::ParseNormalized(ref));
  transfer::PullOptions po;
  po.registry.hosts_dir = options_.config.registry_config_path;
  if (auth != nullptr) {
    if (!auth->username().empty() || !auth->password().empty()) {
      po.registry.credentials =
          remotes::Credentials{.username = auth->username(), .secret = auth->password()};
    } else if (!auth->auth().empty()) {
      // base64("user:password")
      BERTH_ASSIGN_OR_RETURN(std::string decoded, remotes::Base64Decode(auth->auth()));
      auto colon = decoded.find(':');
      if (colon == std::string::npos) return InvalidArgument("invalid decoded auth");
      po.registry.credentials = remotes::Credentials{.username = decoded.substr(0, colon),
                                                     .secret = decoded.substr(colon + 1)};
    } else if (!auth->identity_token().empty()) {
      po.registry.credentials =
          remotes::Credentials{.username = "", .secret = auth->identity_token()};
    } else if (!auth->registry_token().empty()) {
      return InvalidArgument("invalid auth config: registry_token is not supported");
    }
  }
  po.snapshotter = options_.config.snapshotter;
  po.max_concurrent_downloads = std::max(1, options_.config.max_concurrent_downloads);
  po.labels = {{kManagedLabel, "managed"}};
  auto pulled = transfer::Pull(stores_, Ctx(), named.String(), po);
  if (!pulled) {
    return std::move(pulled).error().Wrap(
        fmt::format("failed to pull and unpack image {:?}", named.String()));
  }
  BERTH_ASSIGN_OR_RETURN(auto resolved, image_cache_->Resolve(stores_, Ctx(), pulled->target));
  const std::string id = resolved.config_digest;
  // The ID record and the repo digest record point at the same target (createImageReference).
  std::string repo_digest =
      named.Digest().empty() ? named.Locator() + "@" + pulled->target.digest : named.String();
  for (const auto& name : {id, repo_digest}) {
    if (name == pulled->name) continue;
    BERTH_TRY(stores_.PutImage(Ctx(), name, pulled->target, po.labels));
  }
  log::L().With("image", named.String()).With("id", id).Info("image pulled");
  return id;
}

Status Service::PullImage(const v1::PullImageRequest& req, v1::PullImageResponse* resp) {
  BERTH_ASSIGN_OR_RETURN(std::string id,
                         PullRef(req.image().image(), req.has_auth() ? &req.auth() : nullptr));
  resp->set_image_ref(id);
  return Ok();
}

Status Service::ListImages(const v1::ListImagesRequest& /*req*/, v1::ListImagesResponse* resp) {
  for (const auto& v : AllImages()) ToCri(v, resp->add_images());
  return Ok();
}

Status Service::GetImageStatus(const v1::ImageStatusRequest& req, v1::ImageStatusResponse* resp) {
  auto image = ResolveImage(req.image().image());
  if (!image) {
    if (image.error().Is(Errc::kNotFound)) return Ok();  // empty response, no error
    return std::move(image).error().Wrap(
        fmt::format("can not resolve {:?} locally", req.image().image()));
  }
  ToCri(*image, resp->mutable_image());
  if (req.verbose()) {
    nlohmann::json info = {
        {"chainID", image->resolved.chain_id},
        {"imageSpec", nlohmann::json::parse(image->resolved.config_json, nullptr, false)}};
    (*resp->mutable_info())["info"] = info.dump();
  }
  return Ok();
}

Status Service::RemoveImage(const v1::RemoveImageRequest& req) {
  auto image = ResolveImage(req.image().image());
  if (!image) {
    if (image.error().Is(Errc::kNotFound)) return Ok();
    return std::move(image).error().Wrap(
        fmt::format("can not resolve {:?} locally", req.image().image()));
  }
  for (const auto& name : image->records) {
    auto st = options_.images->Delete(Ctx(), name);
    if (!st && !st.error().Is(Errc::kNotFound)) {
      return std::move(st).error().Wrap(fmt::format("failed to delete image reference {:?}", name));
    }
    containerd::services::images::v1::ImageDelete ev;
    ev.set_name(name);
    Publish("/images/delete", ev);
  }
  return Ok();
}

Status Service::ImageFsInfo(const v1::ImageFsInfoRequest& /*req*/, v1::ImageFsInfoResponse* resp) {
  const std::string sn_name = options_.config.snapshotter;
  BERTH_ASSIGN_OR_RETURN(auto* sn, options_.snapshotters->Get(sn_name));
  // Summing every snapshot's usage walks their directories: as containerd's snapshot usage
  // cache, the sum is refreshed at most every stats_collect_period seconds.
  const auto period = std::chrono::seconds(std::max(1, options_.config.stats_collect_period));
  std::unique_lock lock(fs_usage_mu_);
  auto now = std::chrono::steady_clock::now();
  if (fs_usage_at_ == std::chrono::steady_clock::time_point{} || now - fs_usage_at_ >= period) {
    std::vector<std::string> keys;
    BERTH_TRY(sn->Walk(Ctx(),
                       [&](const snapshots::Info& info) -> berth::Status {
                         keys.push_back(info.name);
                         return Ok();
                       },
                       {}));
    int64_t bytes = 0;
    int64_t inodes = 0;
    for (const auto& k : keys) {
      if (auto u = sn->Usage(Ctx(), k); u) {
        bytes += u->size;
        inodes += u->inodes;
      }
    }
    fs_usage_ = {bytes, inodes};
    fs_usage_at_ = now;
  }
  auto* fs = resp->add_image_filesystems();
  fs->set_timestamp(UnixNanos(Now()));
  fs->mutable_fs_id()->set_mountpoint(options_.daemon_root + "/io.containerd.snapshotter.v1." +
                                      sn_name);
  fs->mutable_used_bytes()->set_value(static_cast<uint64_t>(fs_usage_.first));
  fs->mutable_inodes_used()->set_value(static_cast<uint64_t>(fs_usage_.second));
  return Ok();
}

}  // namespace berth::cri

// berth::Client's transfers: Pull, Push, Import, Export over client/transfer.h.
#include <fmt/format.h>

#include "client/lib_internal.h"
#include "client/transfer.h"
#include "common/reference.h"

namespace berth {
namespace {

const char* StateName(client::TransferStatus::State s) {
  using S = client::TransferStatus::State;
  switch (s) {
    case S::kWaiting:
      return "waiting";
    case S::kResolving:
      return "resolving";
    case S::kDownloading:
      return "downloading";
    case S::kUploading:
      return "uploading";
    case S::kExists:
      return "exists";
    case S::kDone:
      return "done";
    case S::kUnpacking:
      return "unpacking";
    case S::kUnpacked:
      return "unpacked";
    case S::kFailed:
      return "failed";
  }
  return "unknown";
}

client::ProgressFn Progress(const ProgressFn& fn) {
  if (!fn) return nullptr;
  return [fn](const std::vector<client::TransferStatus>& all) {
    std::vector<TransferProgress> out;
    out.reserve(all.size());
    for (const auto& s : all) {
      out.push_back({s.ref, s.digest, s.media_type, StateName(s.state), s.offset, s.total});
    }
    fn(out);
  };
}

remotes::ResolverOptions Resolver(const RegistryOptions& r) {
  remotes::ResolverOptions out;
  out.hosts_dir = r.hosts_dir;
  out.plain_http = r.plain_http;
  out.skip_verify = r.skip_verify;
  if (!r.username.empty()) out.credentials = remotes::Credentials{r.username, r.password};
  return out;
}

Result<std::vector<images::Platform>> Platforms(const std::string& platform) {
  if (platform.empty()) return std::vector<images::Platform>{};
  BERTH_ASSIGN_OR_RETURN(auto p, detail::ParsePlatformText(platform));
  return std::vector<images::Platform>{p};
}

}  // namespace

Result<Image> Client::Pull(const std::string& ref, const PullOptions& options) const {
  BERTH_ASSIGN_OR_RETURN(auto named, reference::ParseNormalized(ref));
  client::PullOptions o;
  o.registry = Resolver(options.registry);
  BERTH_ASSIGN_OR_RETURN(o.platforms, Platforms(options.platform));
  if (o.platforms.empty()) o.platforms.push_back(images::DefaultPlatform());
  o.all_platforms = options.all_platforms;
  o.unpack = options.unpack;
  o.snapshotter = options.snapshotter;
  o.max_concurrent_downloads = options.max_concurrent_downloads;
  o.labels = options.labels;
  o.progress = Progress(options.progress);
  auto r = client::Pull(state_->session, named.String(), o);
  if (!r) return std::move(r).error().Wrap(fmt::format("pull {}", named.String()));
  auto rec = GetImage(r->name);
  if (!rec)
    return Image(state_, r->name, detail::ToDescriptor(r->target), options.labels,
                 options.platform);
  return Image(state_, rec->Name(), rec->Target(), rec->Labels(), options.platform,
               rec->CreatedAt(), rec->UpdatedAt());
}

Result<Descriptor> Client::Push(const std::string& remote, const std::string& local,
                                const PushOptions& options) const {
  BERTH_ASSIGN_OR_RETURN(auto named, reference::ParseNormalized(remote));
  client::PushOptions o;
  o.registry = Resolver(options.registry);
  BERTH_ASSIGN_OR_RETURN(o.platforms, Platforms(options.platform));
  o.progress = Progress(options.progress);
  auto r = client::Push(state_->session, named.String(), local, o);
  if (!r) return std::move(r).error().Wrap(fmt::format("push {}", named.String()));
  return detail::ToDescriptor(*r);
}

Result<std::vector<Image>> Client::Import(const std::string& path,
                                          const ImportOptions& options) const {
  client::ImportOptions o;
  o.base_name = options.base_name;
  o.digests = options.digests;
  o.index_name = options.index_name;
  o.all_platforms = options.all_platforms;
  o.unpack = options.unpack;
  o.snapshotter = options.snapshotter;
  BERTH_ASSIGN_OR_RETURN(o.platforms, Platforms(options.platform));
  o.progress = Progress(options.progress);
  auto r = client::Import(state_->session, path, o);
  if (!r) return std::move(r).error().Wrap(fmt::format("import {}", path));
  std::vector<Image> out;
  for (const auto& i : *r) {
    out.push_back(GetImage(i.name).value_or(
        Image(state_, i.name, detail::ToDescriptor(i.target), {}, options.platform)));
  }
  return out;
}

Status Client::Export(const std::string& path, const std::vector<std::string>& images,
                      const ExportOptions& options) const {
  client::ExportOptions o;
  BERTH_ASSIGN_OR_RETURN(o.platforms, Platforms(options.platform));
  o.all_platforms = options.all_platforms;
  o.skip_manifest_json = options.skip_manifest_json;
  o.skip_non_distributable = options.skip_non_distributable;
  if (Status st = client::Export(state_->session, path, images, o); !st) {
    return std::move(st).error().Wrap(fmt::format("export {}", path));
  }
  return Ok();
}

}  // namespace berth

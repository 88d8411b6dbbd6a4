#include "transfer/progress.h"

#include <algorithm>

#include "images/image.h"

namespace berth::transfer {

bool IsManifestType(std::string_view mt) {
  return mt == images::kMediaTypeDockerManifest || mt == images::kMediaTypeOciManifest;
}

bool IsIndexType(std::string_view mt) {
  return mt == images::kMediaTypeDockerManifestList || mt == images::kMediaTypeOciIndex;
}

// images.IsKnownConfig.
bool IsConfigType(std::string_view mt) {
  return mt == images::kMediaTypeDockerConfig || mt == images::kMediaTypeOciConfig ||
         mt == "application/vnd.containerd.container.criu.checkpoint.criu.tar" ||
         mt == "application/vnd.containerd.container.checkpoint.config.v1+proto";
}

// images.IsLayerType: OCI layers and docker's rootfs diffs (+ suffixes stripped).
bool IsLayerType(std::string_view mt) {
  if (mt.starts_with("application/vnd.oci.image.layer.")) return true;
  std::string_view base = mt.substr(0, mt.find('+'));
  return base == "application/vnd.docker.image.rootfs.diff.tar" ||
         base == "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
         base == "application/vnd.docker.image.rootfs.foreign.diff.tar" ||
         base == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}

std::string RefKey(const images::OciDescriptor& desc) {
  const std::string& mt = desc.media_type;
  if (IsManifestType(mt)) return "manifest-" + desc.digest;
  if (IsIndexType(mt)) return "index-" + desc.digest;
  if (IsLayerType(mt)) return "layer-" + desc.digest;
  if (IsConfigType(mt)) return "config-" + desc.digest;
  return "unknown-" + desc.digest;
}

std::string DistributionSourceKey(std::string_view domain) {
  // url.Hostname(): drop the port; "[::1]:5000" -> "::1".
  std::string_view host = domain;
  if (host.starts_with('[')) {
    auto end = host.find(']');
    host = host.substr(1, end == std::string_view::npos ? host.size() - 1 : end - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  return "containerd.io/distribution.source." + std::string(host);
}

std::vector<std::string> SplitDistributionSource(std::string_view value) {
  std::vector<std::string> out;
  while (!value.empty()) {
    auto comma = value.find(',');
    std::string_view part = value.substr(0, comma);
    if (!part.empty()) out.emplace_back(part);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return out;
}

std::string AppendDistributionSource(std::string_view origin, std::string_view repo) {
  std::vector<std::string> repos = SplitDistributionSource(origin);
  repos.emplace_back(repo);
  std::sort(repos.begin(), repos.end());
  repos.erase(std::unique(repos.begin(), repos.end()), repos.end());
  std::string out;
  for (const auto& r : repos) {
    if (!out.empty()) out += ',';
    out += r;
  }
  return out;
}

}  // namespace berth::transfer

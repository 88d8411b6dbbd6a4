// OCI and Docker image documents: index, manifest list, manifest, config. The input is up to
// four blobs separated by "\n--blob--\n"; the first is the walk's top document, read as each
// document type in turn, and the walks (children, size, platforms, manifest for a platform,
// check, rootfs) read the others in order, one blob per read, so a walk always ends.
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz.h"
#include "images/image.h"
#include "oci/spec.h"

namespace {

using namespace berth::images;

std::vector<std::string> Split(std::string_view in) {
  constexpr std::string_view kSep = "\n--blob--\n";
  std::vector<std::string> out;
  while (out.size() < 3) {
    size_t at = in.find(kSep);
    if (at == std::string_view::npos) break;
    out.emplace_back(in.substr(0, at));
    in.remove_prefix(at + kSep.size());
  }
  out.emplace_back(in);
  return out;
}

void Walk(const std::vector<std::string>& blobs, std::string_view media_type) {
  size_t next = 0;
  BlobReader read = [&](const OciDescriptor&) -> berth::Result<std::string> {
    if (next >= blobs.size()) return berth::NotFound("no more blobs");
    return blobs[next++];
  };
  BlobStat stat = [](const OciDescriptor&) { return berth::Ok(); };
  const OciDescriptor top{.media_type = std::string(media_type),
                          .digest = "sha256:" + std::string(64, 'a'),
                          .size = static_cast<int64_t>(blobs[0].size())};
  const auto amd64 = PlatformMatcher::Only({.os = "linux", .architecture = "amd64"});
  const auto arm = PlatformMatcher::Only({.os = "linux", .architecture = "arm", .variant = "v7"});
  next = 0;
  (void)ImageChildren(read, top);
  next = 0;
  (void)ImageSize(read, top, amd64);
  next = 0;
  (void)ImagePlatforms(read, top);
  next = 0;
  (void)ImageManifest(read, top, arm);
  next = 0;
  (void)CheckImage(read, stat, top, amd64);
  next = 0;
  (void)ImageRootFs(read, top, amd64);
}

}  // namespace

BERTH_FUZZ_TARGET(image) {
  auto blobs = Split(std::string_view(reinterpret_cast<const char*>(data), size));
  for (std::string_view type : {kMediaTypeOciIndex, kMediaTypeDockerManifestList,
                                kMediaTypeOciManifest, kMediaTypeDockerManifest}) {
    Walk(blobs, type);
  }
  (void)berth::oci::ParseImageConfig(blobs[0]);
  (void)ParsePlatformSpec(blobs[0].substr(0, 64));
  return 0;
}

#pragma once
// OCI image documents as containerd's images package reads them: media types, descriptors,
// manifests, indexes, platforms and their matching, and the walks over an image's content
// (children, size, platforms, manifest for a platform, check, rootfs, chain id). Blobs come from
// a BlobReader, so the same walks serve a content store, a registry or an archive.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"

namespace berth::images {

inline constexpr std::string_view kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kMediaTypeDockerConfig =
    "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kMediaTypeOciManifest =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kMediaTypeOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kMediaTypeOciConfig = "application/vnd.oci.image.config.v1+json";

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  bool operator==(const Platform&) const = default;
};

// An OCI descriptor as found in manifests and indexes (digest kept as text, as Go does).
struct OciDescriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::optional<Platform> platform;
};

struct OciManifest {
  OciDescriptor config;
  std::vector<OciDescriptor> layers;
};

// containerd's platforms.Normalize (os lower-cased, "" -> linux; x86_64 -> amd64, aarch64 -> arm64,
// arm variants ...).
Platform NormalizePlatform(Platform p);
// platforms.Format: "os/arch[/variant]", "unknown" without an os.
std::string FormatPlatform(const Platform& p);
// The platform this binary runs on (platforms.DefaultSpec).
Platform DefaultPlatform();

// platforms.Parse (ctr's --platform): "os", "arch", "os/arch" or "os/arch/variant", normalized;
// a lone word is an os (with the host's architecture) or an architecture (with the host's os).
// InvalidArgument for wildcards, bad characters, unknown words and more than three parts.
Result<Platform> ParsePlatformSpec(const std::string& spec);

// platforms.Only(p): matches p and the platforms it can run (amd64 runs 386, arm/v7 runs v6 and
// v5, arm64 runs arm/v8..v5), and orders them in that preference.
class PlatformMatcher {
 public:
  static PlatformMatcher Only(const Platform& p);
  bool Match(const Platform& p) const;
  bool Less(const Platform& a, const Platform& b) const;

 private:
  std::vector<Platform> platforms_;
};

// Reads a whole blob from the content store (NotFound when missing).
using BlobReader = std::function<Result<std::string>(const OciDescriptor& desc)>;
// Whether a blob is present (Ok), missing (NotFound) or unknowable (other errors).
using BlobStat = std::function<Status(const OciDescriptor& desc)>;

// images.Children: config + layers of a manifest, manifests of an index, nothing otherwise.
Result<std::vector<OciDescriptor>> ImageChildren(const BlobReader& read, const OciDescriptor& desc);

// images.Image.Size: the sum of the sizes of everything reached from `target` for the platform
// (one manifest per index). On error the size summed so far is kept, as ctr prints it.
struct SizeResult {
  int64_t size = 0;
  std::optional<Error> error;
};
SizeResult ImageSize(const BlobReader& read, const OciDescriptor& target,
                     const PlatformMatcher& platform);

// images.Platforms: platforms of index entries, or of the config for a plain manifest.
Result<std::vector<Platform>> ImagePlatforms(const BlobReader& read, const OciDescriptor& target);

// images.Manifest: the manifest for the platform (NotFound when none matches).
Result<OciManifest> ImageManifest(const BlobReader& read, const OciDescriptor& target,
                                  const PlatformMatcher& platform);

// images.Check.
struct CheckResult {
  bool available = false;
  std::vector<OciDescriptor> required;
  std::vector<OciDescriptor> present;
  std::vector<OciDescriptor> missing;
};
Result<CheckResult> CheckImage(const BlobReader& read, const BlobStat& stat,
                               const OciDescriptor& target, const PlatformMatcher& platform);

// images.RootFS: the config's rootfs.diff_ids for the platform's manifest.
Result<std::vector<std::string>> ImageRootFs(const BlobReader& read, const OciDescriptor& target,
                                             const PlatformMatcher& platform);

// identity.ChainID: "" for no layers.
std::string ChainId(const std::vector<std::string>& diff_ids);

}  // namespace berth::images

#pragma once
// Helpers shared by the content, images and leases commands: ctr's ways of printing sizes, ages,
// times and labels, a tab-padded table writer, digest checks with go-digest's messages, and the
// image walks ctr runs over the content store (size, platforms, check, rootfs).
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"

namespace berth::cli {

// ---- Text formatting ----

// go-units HumanSize: 4 significant digits, decimal units, no space ("1.5kB", "999B").
std::string HumanSize(double size);
// containerd's progress.Bytes: one decimal, binary units, a space ("1.0 MiB", "0.0 B").
std::string ProgressBytes(int64_t size);
// go-units HumanDuration ("Less than a second", "3 seconds", "About a minute", "2 hours", ...).
std::string HumanDuration(std::chrono::nanoseconds d);
// Go's time.RFC3339 in the local zone: "2006-01-02T15:04:05Z07:00" ("Z" for a zero offset).
std::string FormatRfc3339Local(int64_t unix_seconds);

// "k=v" pairs sorted and joined by ","; `empty` when there are none.
std::string JoinLabels(const std::map<std::string, std::string>& labels,
                       std::string_view empty = "");

// go-digest's Digest.Validate, with its exact messages ("invalid checksum digest format", ...).
Status ValidateDigest(std::string_view text);

// ---- OCI image walks ----

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

}  // namespace berth::cli

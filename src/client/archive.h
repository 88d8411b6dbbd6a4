#pragma once
// Internal pieces of image import/export (transfer.h's Import/Export), kept free of gRPC so they
// can be unit-tested: reference naming as containerd's images/archive/reference.go and
// reference/docker, the JSON documents of an OCI layout / docker save archive written the way
// Go's encoding/json writes them (struct field order, sorted maps), tar entry name checks and
// platform matching of `ctr images export --platform` (platforms.OnlyStrict / Ordered).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"
#include "images/image.h"

namespace berth::client::archive {

inline constexpr std::string_view kAnnotationImageName = "io.containerd.image.name";
inline constexpr std::string_view kAnnotationRefName = "org.opencontainers.image.ref.name";
inline constexpr std::string_view kOciLayoutFile = "oci-layout";
inline constexpr std::string_view kOciLayoutVersion = "1.0.0";
inline constexpr std::string_view kIndexFile = "index.json";
inline constexpr std::string_view kDockerManifestFile = "manifest.json";
inline constexpr std::string_view kMediaTypeDockerLayer =
    "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr std::string_view kMediaTypeDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
// JSON documents read from an archive are capped as containerd's importer does (jsonLimit).
inline constexpr int64_t kJsonLimit = 20 << 20;

// ---- Names ----

// reference/docker ParseDockerRef: "busybox" -> "docker.io/library/busybox:latest"; a tag next
// to a digest is dropped. InvalidArgument naming `ref` when it is not a valid reference.
Result<std::string> NormalizeDockerRef(std::string_view ref);
// reference/docker FamiliarString(TagNameOnly(ParseNormalizedNamed(ref))), the form docker's
// manifest.json RepoTags use: "docker.io/library/busybox:latest" -> "busybox:latest".
Result<std::string> FamiliarizeRef(std::string_view ref);
// images/archive ociReferenceName: the object (tag, or "@digest") of a containerd reference
// ("docker.io/library/busybox:latest" -> "latest"); the name itself when it does not parse.
std::string OciRefName(std::string_view name);
// images/archive AddRefPrefix / FilterRefPrefix: a tag-only ref becomes "<prefix>:<ref>"; a full
// reference is kept (Add) or kept only when it is under `prefix` ("" when filtered out).
std::string AddRefPrefix(std::string_view prefix, std::string_view ref);
std::string FilterRefPrefix(std::string_view prefix, std::string_view ref);
// ctr images import's default base name: "import-<local yyyy-mm-dd>".
std::string DefaultImportPrefix();
// "blobs/<alg>/<hex>" of a digest (InvalidArgument when it is not a valid digest).
Result<std::string> BlobPath(std::string_view digest);

// ---- Tar entries ----

// path.Clean of an entry name ("a/./b/../c" -> "a/c"), refusing names that leave the archive
// root: absolute names and ".." above the root are InvalidArgument naming the entry.
Result<std::string> CleanEntryName(std::string_view name);
// The digest a layout path "blobs/sha256/<hex>" names, or "" for any other path.
std::string DigestOfBlobPath(std::string_view path);
// images/archive detectLayerMediaType: gzip / zstd magic (or anything not a plain tar start) ->
// the gzip docker layer type, plain -> the uncompressed one; an empty blob is uncompressed.
std::string_view DetectLayerMediaType(std::string_view head);

// ---- JSON documents ----

// An OCI descriptor with the fields an index entry carries.
struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<images::Platform> platform;
};
// Parses a descriptor object (InvalidArgument on wrong types / missing digest).
Result<Descriptor> ParseDescriptor(std::string_view json);
std::string DescriptorJson(const Descriptor& d);

// The manifests of an index.json / image index (InvalidArgument on malformed JSON).
Result<std::vector<Descriptor>> ParseIndex(std::string_view json);
// {"schemaVersion":2,"manifests":[...]} as Go's json.Marshal(ocispec.Index) writes it.
std::string IndexJson(const std::vector<Descriptor>& manifests);
// {"imageLayoutVersion":"1.0.0"}
std::string OciLayoutJson();
// Parses oci-layout; returns its imageLayoutVersion.
Result<std::string> ParseOciLayout(std::string_view json);

// One entry of docker's manifest.json.
struct DockerManifest {
  std::string config;
  std::vector<std::string> repo_tags;
  std::vector<std::string> layers;
};
Result<std::vector<DockerManifest>> ParseDockerManifests(std::string_view json);
std::string DockerManifestsJson(const std::vector<DockerManifest>& manifests);
// The docker schema 2 manifest the importer writes for a docker save image.
std::string DockerSchema2ManifestJson(const Descriptor& config,
                                      const std::vector<Descriptor>& layers);

// ---- Platforms ----

// platforms.OnlyStrict(p) / platforms.Ordered(ps...): exact (normalized) matches, preferred in
// the order given.
class StrictMatcher {
 public:
  explicit StrictMatcher(std::vector<images::Platform> platforms);
  bool Match(const images::Platform& p) const;
  bool Less(const images::Platform& a, const images::Platform& b) const;

 private:
  size_t Rank(const images::Platform& p) const;
  std::vector<images::Platform> platforms_;
};

}  // namespace berth::client::archive

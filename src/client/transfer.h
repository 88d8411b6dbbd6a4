#pragma once
// Moving images between registries, archives and berthd (containerd's client.Pull/Push,
// images/archive Import/Export), on a client::Session. Used by the public client library
// (include/berth) and by the CLI's images pull/push/import/export.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "client/session.h"
#include "client/unpack.h"
#include "common/errdefs.h"
#include "images/image.h"
#include "remotes/registry.h"

namespace berth::client {

// The state of one blob in a transfer, as a progress display shows it.
struct TransferStatus {
  enum class State {
    kWaiting,      // known, not started
    kResolving,    // the reference (root) is being resolved
    kDownloading,  // bytes arriving (offset/total)
    kUploading,    // bytes leaving (push)
    kExists,       // already in the content store / registry: nothing transferred
    kDone,         // transferred and committed
    kUnpacking,    // layer being applied to a snapshot
    kUnpacked,     // layer applied (or its snapshot existed)
    kFailed,
  };
  std::string ref;  // "index-sha256:...", "manifest-sha256:...", "config-sha256:...",
                    // "layer-sha256:..." as ctr names its jobs
  std::string media_type;
  std::string digest;
  State state = State::kWaiting;
  int64_t offset = 0;
  int64_t total = 0;
  std::chrono::steady_clock::time_point started{};
  std::chrono::steady_clock::time_point updated{};
};
// Called (from any thread, serialized by the caller) with a snapshot of all blobs of the
// transfer whenever one changes, at most every ~100 ms plus once at the end.
using ProgressFn = std::function<void(const std::vector<TransferStatus>&)>;

// Where the time of a pull went (the pull benchmark prints it).
struct PullTimings {
  std::chrono::nanoseconds resolve{}, fetch{}, unpack{}, total{};
  int64_t bytes_fetched = 0;  // bytes that crossed the network (0 when everything existed)
};

struct PullOptions {
  remotes::ResolverOptions registry;
  // Platforms to fetch (containerd: platforms.Only(host) by default); all_platforms fetches every
  // manifest of an index. Unpack uses the first platform (the host's by default).
  std::vector<images::Platform> platforms;
  bool all_platforms = false;
  bool all_metadata = false;  // --all-metadata: every manifest and config, layers only for
                              // the matched platforms
  bool unpack = true;
  std::string snapshotter;  // "" -> ResolveSnapshotterName
  int max_concurrent_downloads = 3;
  std::map<std::string, std::string> labels;  // image record labels (--label)
  ProgressFn progress;
};

struct PullResult {
  std::string name;  // the image record's name
  images::OciDescriptor target;
  std::optional<UnpackResult> unpacked;
  PullTimings timings;
};

// Resolves `ref`, fetches what the content store lacks (layers concurrently, each written to
// the store as it arrives), unpacks each layer as soon as it and its parent are ready, all under
// one lease, then creates or updates the image record. Re-pulling an existing image fetches
// nothing. `ref` must be fully qualified (common/reference normalizes user input).
Result<PullResult> Pull(const Session& session, const std::string& ref, const PullOptions& options);

struct PushOptions {
  remotes::ResolverOptions registry;
  std::vector<images::Platform> platforms;  // empty: every manifest present locally
  int max_concurrent_uploads = 3;
  ProgressFn progress;
};
// Pushes the image record `local` (its name when empty: `remote`) to `remote`: blobs the
// registry lacks (HEAD first; cross-repo mount when the blob's distribution source label names
// another repository of the same registry), manifests after their children, the root last by
// tag. Returns the pushed root descriptor.
Result<images::OciDescriptor> Push(const Session& session, const std::string& remote,
                                   const std::string& local, const PushOptions& options);

struct ExportOptions {
  std::vector<images::Platform> platforms;  // empty: the host's; all_platforms: everything
  bool all_platforms = false;
  bool skip_manifest_json = false;  // no Docker manifest.json
  bool skip_non_distributable = false;
};
// Writes an OCI image layout tar (with a Docker manifest.json unless skipped) of the images to
// `path` ("-": stdout), compatible with `ctr images export` / `docker load`.
Status Export(const Session& session, const std::string& path,
              const std::vector<std::string>& image_names, const ExportOptions& options);

struct ImportOptions {
  std::string base_name;   // --base-name: name images "<base>:<tag>" from the archive's tags
  bool digests = false;    // --digests: also create "<base>@<digest>" records
  std::string index_name;  // --index-name: a record for the whole index
  bool all_platforms = false;
  bool unpack = true;
  std::string snapshotter;
  std::vector<images::Platform> platforms;
  ProgressFn progress;
};
struct ImportedImage {
  std::string name;
  images::OciDescriptor target;
};
// Reads an OCI image layout tar or a `docker save` tar from `path` ("-": stdin), writes its
// blobs to the content store and creates the image records (ctr images import's naming rules),
// unpacking each unless told not to.
Result<std::vector<ImportedImage>> Import(const Session& session, const std::string& path,
                                          const ImportOptions& options);

}  // namespace berth::client

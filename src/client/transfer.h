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
#include "transfer/pull.h"

namespace berth::client {

using transfer::ProgressFn;
using transfer::PullOptions;
using transfer::PullResult;
using transfer::PullTimings;
using transfer::TransferStatus;

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

#pragma once
// client.Pull (with WithPullUnpack) over transfer::Stores: resolve, walk the image's manifests,
// download the layers the content store lacks on a small thread pool, apply each layer as soon
// as it and its parent are ready, all under one lease, then create or update the image record.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "remotes/registry.h"
#include "transfer/progress.h"
#include "transfer/stores.h"
#include "transfer/unpack.h"

namespace berth::transfer {

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
  std::string snapshotter;  // "" -> Stores::ResolveSnapshotter
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
// one lease (ctx's, or a temporary one), then creates or updates the image record. Re-pulling an
// existing image fetches nothing. `ref` must be fully qualified (common/reference normalizes
// user input).
Result<PullResult> Pull(Stores& stores, const Context& ctx, const std::string& ref,
                        const PullOptions& options);

}  // namespace berth::transfer

#pragma once
// Images as containerd's Go client shows them: a named record pointing at a root descriptor
// (index or manifest) in the content store, with helpers that read its config and unpack it.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "berth/errors.h"

namespace berth {

namespace detail {
struct ClientState;
}

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
};

// The parts of an image config blob ("config" of application/vnd.oci.image.config.v1+json or
// Docker's) a container is built from.
struct ImageConfig {
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::string stop_signal;
  std::map<std::string, std::string> labels;
  Descriptor descriptor;  // the config blob itself
};

struct UnpackInfo {
  std::string snapshotter;
  std::string chain_id;  // the top snapshot (identity.ChainID of the layers' diff ids)
  int applied = 0;       // layers extracted now (0: all existed)
};

class Image {
 public:
  Image(std::shared_ptr<const detail::ClientState> client, std::string name, Descriptor target,
        std::map<std::string, std::string> labels, std::string platform,
        std::chrono::system_clock::time_point created_at = {},
        std::chrono::system_clock::time_point updated_at = {});

  const std::string& Name() const { return name_; }
  const Descriptor& Target() const { return target_; }
  const std::map<std::string, std::string>& Labels() const { return labels_; }
  // "os/arch[/variant]" this image is used for (the host's unless the caller chose one).
  const std::string& Platform() const { return platform_; }
  std::chrono::system_clock::time_point CreatedAt() const { return created_at_; }
  std::chrono::system_clock::time_point UpdatedAt() const { return updated_at_; }

  // The platform's manifest config (image.Config + its parsed content).
  Result<ImageConfig> Config() const;
  // The layers' uncompressed digests (image.RootFS).
  Result<std::vector<std::string>> RootFs() const;
  // Total size of everything the platform uses (image.Size).
  Result<int64_t> Size() const;
  // image.IsUnpacked: whether the top snapshot exists in `snapshotter` ("" = the default).
  Result<bool> IsUnpacked(const std::string& snapshotter = "") const;
  // image.Unpack: applies missing layers into `snapshotter` ("" = the default).
  Result<UnpackInfo> Unpack(const std::string& snapshotter = "") const;

 private:
  std::shared_ptr<const detail::ClientState> client_;
  std::string name_;
  Descriptor target_;
  std::map<std::string, std::string> labels_;
  std::string platform_;
  std::chrono::system_clock::time_point created_at_{};
  std::chrono::system_clock::time_point updated_at_{};
};

// ---- Transfers ----

// The state of one blob of a pull/push/import, for progress displays.
struct TransferProgress {
  std::string ref;  // "layer-sha256:...", "manifest-sha256:..." as ctr names its jobs
  std::string digest;
  std::string media_type;
  // "waiting", "resolving", "downloading", "uploading", "exists", "done", "unpacking",
  // "unpacked", "failed"
  std::string state;
  int64_t offset = 0;
  int64_t total = 0;
};
using ProgressFn = std::function<void(const std::vector<TransferProgress>&)>;

struct RegistryOptions {
  std::string hosts_dir;     // hosts.toml directory (registry config_path)
  bool plain_http = false;   // http for hosts without a hosts.toml
  bool skip_verify = false;  // no TLS certificate verification
  std::string username;      // empty: anonymous
  std::string password;
};

struct PullOptions {
  bool unpack = true;       // client.WithPullUnpack
  std::string snapshotter;  // "" = the namespace's default
  std::string platform;     // "os/arch[/variant]"; "" = the host's
  bool all_platforms = false;
  std::map<std::string, std::string> labels;  // image record labels
  RegistryOptions registry;
  ProgressFn progress;
  int max_concurrent_downloads = 3;
};

struct PushOptions {
  std::string platform;  // "" = every manifest present locally
  RegistryOptions registry;
  ProgressFn progress;
};

struct ImportOptions {
  std::string base_name;  // name images "<base>:<tag>" from the archive's tags
  bool digests = false;   // also "<base>@<digest>" records
  std::string index_name;
  bool all_platforms = false;
  bool unpack = true;
  std::string snapshotter;
  std::string platform;
  ProgressFn progress;
};

struct ExportOptions {
  std::string platform;  // "" = the host's
  bool all_platforms = false;
  bool skip_manifest_json = false;
  bool skip_non_distributable = false;
};

}  // namespace berth

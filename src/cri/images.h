#pragma once
// What the CRI makes of the image records of its namespace (containerd's pkg/cri/store/image):
// a CRI image is the set of records whose target resolves, for this host's platform, to one
// image config; its ID is that config's digest. Resolving a target reads its manifest and
// config from the content store; blobs never change, so the result is cached by target digest.
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/errdefs.h"
#include "images/image.h"
#include "oci/spec.h"
#include "transfer/stores.h"

namespace berth::cri {

// One resolved target.
struct ResolvedTarget {
  std::string config_digest;  // the image ID
  images::OciManifest manifest;
  oci::ImageConfig config;
  std::vector<std::string> diff_ids;
  std::string chain_id;  // the top snapshot of the unpacked image
  int64_t size = 0;      // images.Image.Size for the platform
  std::string config_json;
};

// A CRI image: the records sharing one config.
struct ImageView {
  std::string id;  // sha256:<config digest>
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  std::vector<std::string> records;  // every record name (ID record included)
  images::OciDescriptor target;      // of the first record
  ResolvedTarget resolved;
};

class ImageCache {
 public:
  // The resolution of `target` (cached). NotFound when a blob is missing (a partial pull).
  Result<ResolvedTarget> Resolve(transfer::Stores& stores, const Context& ctx,
                                 const images::OciDescriptor& target);

 private:
  std::mutex mu_;
  std::map<std::string, ResolvedTarget> by_target_;
};

}  // namespace berth::cri

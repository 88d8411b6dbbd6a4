#pragma once
// Images: named pointers (a target descriptor) into the content store, per namespace
// (containerd's metadata/images.go). Names are opaque, never parsed.
#include <string>
#include <vector>

#include "common/context.h"
#include "common/descriptor.h"
#include "common/labels.h"
#include "common/timeutil.h"
#include "metadata/db.h"

namespace berth::metadata {

struct Image {
  std::string name;
  Labels labels;
  Descriptor target;
  Timestamp created_at{};
  Timestamp updated_at{};
};

class ImageStore {
 public:
  explicit ImageStore(Db& db) : db_(db) {}

  // NotFound "image %q".
  Result<Image> Get(const Context& ctx, const std::string& name);
  // Filters: name, target.digest, target.mediatype, labels.*, annotations.*.
  Result<std::vector<Image>> List(const Context& ctx, const std::vector<std::string>& filters);
  // InvalidArgument for an empty name, bad labels or target (digest, size > 0, media type);
  // AlreadyExists for a used name. Sets both timestamps.
  Result<Image> Create(const Context& ctx, Image image);
  // Fieldpaths: labels, labels.<k>, annotations, annotations.<k>, target; none = replace all.
  Result<Image> Update(const Context& ctx, const Image& image,
                       const std::vector<std::string>& fieldpaths);
  // NotFound if absent; marks the GC dirty.
  Status Delete(const Context& ctx, const std::string& name);

 private:
  Db& db_;
};

Status ValidateTarget(const Descriptor& target);

}  // namespace berth::metadata

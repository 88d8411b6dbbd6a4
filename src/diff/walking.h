#pragma once
// The walking differ (containerd's diff/walking + diff/apply): applies layers from the content
// store onto mounts and computes layers by walking two mounted trees.
#include <string>
#include <vector>

#include "content/content.h"
#include "diff/compression.h"
#include "diff/diff.h"

namespace berth::diff {

class WalkingDiff final : public Applier, public Comparer {
 public:
  // `store` must outlive the differ: layers are read from it, computed layers written to it (the
  // namespaced store in berthd, so ctx's namespace and lease apply). Temporary mounts are made
  // under `tmp_root` (<root>/tmpmounts).
  WalkingDiff(content::Store& store, std::string tmp_root);

  // Fast path: one "overlay" mount with upperdir= (and not in a user namespace) is extracted
  // straight into the upperdir, whiteouts converted for overlayfs, no mount made. Any other
  // mounts are mounted under tmp_root and extracted with real deletes.
  //
  // The blob is read once, streaming: its sha256 is checked against desc.digest after the tar
  // is applied (and its trailing bytes drained). A mismatch is FailedPrecondition, reported in
  // preference to any extraction error it caused; what was already written stays, so callers
  // discard the target snapshot on any error, as they do for every failed apply.
  // Errors: NotImplemented for an unknown media type (see ProcessorFor); InvalidArgument for a
  // corrupt stream or a refused tar entry (apply_tar.h); NotFound if the blob is missing.
  Result<Descriptor> Apply(const Context& ctx, const Descriptor& desc,
                           const std::vector<mount::Mount>& mounts) override;

  // Mounts both sides read-only under tmp_root, writes their difference (write_tar.h) as
  // ...layer.v1.tar+gzip (default) or ...layer.v1.tar (other types: NotImplemented "unsupported
  // diff media type") through a Writer on opts.ref (generated "<nanos>-<random>" if empty; a
  // given ref is truncated first), commits it with opts.labels + containerd.io/uncompressed =
  // the tar's sha256 (an already stored blob is fine), and makes sure the label is set.
  Result<Descriptor> Compare(const Context& ctx, const std::vector<mount::Mount>& lower,
                             const std::vector<mount::Mount>& upper,
                             const CompareOptions& opts) override;

 private:
  Status ApplyToMounts(const std::vector<mount::Mount>& mounts, Reader& tar);
  Result<Descriptor> WriteLayer(const Context& ctx, const std::string& lower_root,
                                const std::string& upper_root, const CompareOptions& opts,
                                const std::string& media_type);

  content::Store& store_;
  std::string tmp_root_;
};

}  // namespace berth::diff

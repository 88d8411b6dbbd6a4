#pragma once
// Layer application and computation (containerd's diff/diff.go). The walking differ implements
// both: Apply decompresses a layer blob from the content store and unpacks it onto mounts;
// Compare walks two mounted trees and writes their difference as a layer into the store.
//
// Errors: NotImplemented for a media type it cannot process ("no processor for media-type"),
// FailedPrecondition/InvalidArgument for a malformed or malicious layer (a path escaping the
// root, a bad whiteout, ...), with the entry's name in the message.
//
// Deliberate difference from containerd: a tar entry that would escape the root is REFUSED, not
// clamped into it. containerd cleans names and resolves symlinks chroot-like, so "../x", "/x",
// a write through a symlink to "/tmp" and a hardlink to "../../etc/passwd" all land inside the
// root; berth fails the apply with InvalidArgument naming the entry instead, and nothing outside
// the root is ever touched (lookups are openat2 RESOLVE_BENEATH). Refused: absolute names, names
// climbing out with "..", parents resolved through a symlink that leaves the root (absolute
// targets included), hardlink targets that do any of these, whiteouts of "", "." or "..".
// Details: diff/apply_tar.h.
#include <string>
#include <vector>

#include "common/context.h"
#include "common/descriptor.h"
#include "common/errdefs.h"
#include "common/labels.h"
#include "common/mount.h"

namespace berth::diff {

class Applier {
 public:
  virtual ~Applier() = default;
  // Applies layer `desc` (tar, tar+gzip, tar+zstd; OCI or Docker media types) onto `mounts`.
  // Returns the uncompressed tar's descriptor (media type ...layer.v1.tar, digest = diffID).
  virtual Result<Descriptor> Apply(const Context& ctx, const Descriptor& desc,
                                   const std::vector<mount::Mount>& mounts) = 0;
};

struct CompareOptions {
  std::string media_type;  // "" = application/vnd.oci.image.layer.v1.tar+gzip
  std::string ref;         // ingest ref ("" = generated)
  Labels labels;           // set on the committed blob (plus containerd.io/uncompressed)
};

class Comparer {
 public:
  virtual ~Comparer() = default;
  // Writes the changes from `lower` to `upper` as a layer into the content store.
  virtual Result<Descriptor> Compare(const Context& ctx, const std::vector<mount::Mount>& lower,
                                     const std::vector<mount::Mount>& upper,
                                     const CompareOptions& opts) = 0;
};

// What a differ plugin (io.containerd.differ.v1) registers: Instance::Of<diff::Differ>.
struct Differ {
  Applier* applier = nullptr;
  Comparer* comparer = nullptr;
};

}  // namespace berth::diff

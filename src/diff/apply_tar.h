#pragma once
// Unpacks a layer tar onto a directory (containerd's archive.Apply), securely. libarchive parses
// the stream (ustar, PAX incl. SCHILY.xattr.*, GNU long names, sparse files; PAX global headers
// are consumed by it); every filesystem write is ours, relative to directory fds resolved with
// openat2 RESOLVE_BENEATH below the root (safe_path.h).
//
// Per entry, as containerd: names cleaned; missing parents created 0755; an existing path is
// replaced unless it is a directory and the entry one too (then only its metadata changes);
// lchown to the numeric uid/gid, xattrs (trusted.* from the archive ignored, ENOTSUP ignored,
// EPERM on user.* of a non-file/dir ignored), chmod with the exact mode (setuid/setgid/sticky
// included; never on symlinks), times (atime = max(atime, mtime); before 1970 -> the epoch);
// directory times set once all entries are in. Entry types: directory, regular file (sparse
// holes kept), symlink (target verbatim), hardlink, char/block device (skipped in a user
// namespace), fifo; any other type is InvalidArgument.
//
// Malicious entries are REFUSED with InvalidArgument naming the entry, before anything is
// written for them (containerd clamps them into the root instead; berth's issue tracker asks for
// a clear error): a name that is absolute or climbs out with "..", a parent path that leaves the
// root through a symlink (absolute symlink targets included: they would point outside on the
// host), a hardlink whose target is absolute, climbs out or resolves outside, a whiteout naming
// "", "." or "..". Entries before the bad one stay applied: callers discard the snapshot.
//
// Whiteouts (OCI): in overlay mode `.wh.NAME` becomes a 0:0 character device NAME owned by the
// header's uid/gid and `.wh..wh..opq` sets trusted.overlay.opaque=y on its directory; otherwise
// `.wh.NAME` removes NAME and `.wh..wh..opq` removes everything in its directory that this layer
// did not add.
#include <string>
#include <vector>

#include "common/errdefs.h"
#include "diff/compression.h"

namespace berth::diff {

struct ApplyOptions {
  // Extracting straight into an overlay upperdir: convert whiteouts as overlayfs stores them.
  bool overlay = false;
  // The overlay's lowerdirs (top first): a parent directory the layer needs but the upperdir
  // lacks copies mode, owner, times and xattrs from the first lowerdir that has it.
  std::vector<std::string> parents;
};

// Unpacks the tar read from `src` into the existing directory `root`. Reads up to the tar's
// end-of-archive marker; the caller drains what follows.
Status ApplyTar(const std::string& root, Reader& src, const ApplyOptions& opts = {});

// True when running in a user namespace without the full uid range (containerd's pkg/userns):
// device nodes are skipped and the overlay fast path is not taken.
bool RunningInUserNS();

}  // namespace berth::diff

#pragma once
// A faithful copy of a directory tree (containerd's continuity fs.CopyDir, as the native
// snapshotter uses it).
#include <string>

#include "common/errdefs.h"

namespace berth::snapshots::native {

// Copies the contents of directory `src` into the existing directory `dst` and gives `dst` the
// mode, owner, times and xattrs of `src`. Preserves: file types (regular, directory, symlink,
// char/block device, fifo, socket), modes including setuid/setgid/sticky, owners, access and
// modification times (nanoseconds), xattrs, and hard links between files inside the tree.
// Regular file data is cloned (FICLONE reflink) where the filesystem can share extents, else
// copied with copy_file_range (in-kernel, sparse-unaware), else read/write. xattrs the target
// refuses (security.* under LSMs, trusted.* without privilege) are skipped, as containerd does.
// Mounts below `src` are copied through, as containerd does.
Status CopyDir(const std::string& dst, const std::string& src);

}  // namespace berth::snapshots::native

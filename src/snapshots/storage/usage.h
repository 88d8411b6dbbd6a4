#pragma once
// Disk usage of a tree, as containerd's continuity fs.DiskUsage counts it: every distinct inode
// (hard links once) including the root, size = allocated blocks x 512. Symlinks are not followed.
#include <string>

#include "common/errdefs.h"
#include "snapshots/snapshotter.h"

namespace berth::snapshots::storage {

Result<snapshots::Usage> DiskUsage(const std::string& root);

}  // namespace berth::snapshots::storage

#pragma once
// Computes a layer: the changes from one directory tree to another as a tar stream
// (containerd's archive.WriteDiff: continuity's fs.Changes "double walk" feeding ChangeWriter).
//
// Both trees are walked in lexical order side by side. A path only in `lower` is deleted: a
// whiteout `.wh.NAME` is written (nothing below a deleted directory). A path only in `upper` is
// added. A path in both is modified unless it is the same file: same mode, uid, gid, rdev and
// security.capability; for non-directories also the same size and mtime seconds, and when both
// mtimes have whole seconds only (a copy that lost precision), the same symlink target or
// content. Entries are PAX (ustar where it fits), mtime truncated to seconds, no atime/ctime, no
// user/group names; directories end in "/"; security.capability travels as
// SCHILY.xattr.security.capability (no other xattrs, as containerd); sockets are skipped; files
// with several links are written once and hardlinked after; every written entry's parent
// directories are written before it if they did not change themselves.
#include <string>

#include "common/errdefs.h"
#include "diff/compression.h"

namespace berth::diff {

// Writes the tar of the changes from `lower` to `upper` into `out`, end-of-archive included
// (no block padding beyond it).
Status WriteDiff(const std::string& lower, const std::string& upper, Sink& out);

}  // namespace berth::diff

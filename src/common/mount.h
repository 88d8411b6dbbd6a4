#pragma once
// Mounts as containerd describes them (containerd.types.Mount): type, source, fstab options.
// Snapshotters return them; the diff service, the shim and `images mount` perform them.
#include <functional>
#include <string>
#include <vector>

#include "common/errdefs.h"

namespace berth::mount {

struct Mount {
  std::string type;                  // "overlay", "bind", "btrfs", ...
  std::string source;                // device, directory, or "overlay"
  std::string target;                // usually empty: mounted at a caller-chosen path
  std::vector<std::string> options;  // "ro", "rbind", "lowerdir=...", ...
};

// fstab options split as containerd's parseMountOptions (mount/mount_linux.go): known words
// (ro/rw, bind/rbind, nosuid/suid, nodev/dev, noexec/exec, relatime, noatime, sync, remount, ...)
// set or clear MS_* flags; propagation words (private, rshared, ...) go to `propagation`;
// "loop" sets `loop`; everything else is joined with "," into `data` for the filesystem.
struct ParsedOptions {
  unsigned long flags = 0;        // NOLINT(google-runtime-int): mount(2)'s type
  unsigned long propagation = 0;  // NOLINT(google-runtime-int)
  std::string data;
  bool loop = false;
};
ParsedOptions ParseOptions(const std::vector<std::string>& options);

// Mounts one mount on `target`: type "bind" (or options bind/rbind) is a bind mount; a read-only
// bind is remounted MS_BIND|MS_REMOUNT|MS_RDONLY afterwards (the kernel ignores MS_RDONLY on the
// first bind call); propagation options are applied by a separate call. Filesystem data longer
// than a page is InvalidArgument ("mount options is too long"); "loop" and FUSE helper types are
// NotImplemented. Errors name the mount and carry the kernel's reason (errno class).
Status MountOne(const Mount& m, const std::string& target);
// Mounts each mount in order on `target` (a bind mount honours ro/rbind; overlay options are
// passed through; unknown flags become data). NotFound/InvalidArgument/... naming the mount and
// the kernel's reason. On failure, what was mounted is undone.
Status MountAll(const std::vector<Mount>& mounts, const std::string& target);
// Unmounts everything stacked on `target` (lazy detach as a last resort). A target that does not
// exist or is not a mount point is fine.
Status UnmountAll(const std::string& target);
// Mounts `mounts` on a fresh directory under `tmp_root` (containerd's <root>/tmpmounts, created
// 0700 if missing), runs fn with its path, then unmounts and removes it, whatever fn returns. The
// directory is removed with rmdir, never recursively, so a failed unmount cannot lose data.
Status WithTempMount(const std::vector<Mount>& mounts, const std::string& tmp_root,
                     const std::function<Status(const std::string& root)>& fn);
// Unmounts and removes whatever is mounted under `tmp_root` (deepest first), left by a crash
// inside WithTempMount (containerd's CleanupTempMounts at start-up). Failures are logged; the
// first one is returned after trying them all.
Status CleanupTempMounts(const std::string& tmp_root);
// The same mounts made read-only (containerd's readonlyMounts): overlay drops workdir= and moves
// upperdir= in front of lowerdir=; every other mount gets "ro" instead of "rw"/"ro".
std::vector<Mount> ReadonlyMounts(std::vector<Mount> mounts);

}  // namespace berth::mount

#pragma once
// Mounts as containerd describes them (containerd.types.Mount): type, source, fstab options.
// Snapshotters return them; the diff service, the shim and `images mount` perform them.
#include <functional>
#include <string>
#include <vector>

#include "common/errdefs.h"

namespace berth::mount {

struct Mount {
  std::string type;     // "overlay", "bind", "btrfs", ...
  std::string source;   // device, directory, or "overlay"
  std::string target;   // usually empty: mounted at a caller-chosen path
  std::vector<std::string> options;  // "ro", "rbind", "lowerdir=...", ...
};

// Mounts each mount in order on `target` (a bind mount honours ro/rbind; overlay options are
// passed through; unknown flags become data). NotFound/InvalidArgument/... naming the mount and
// the kernel's reason. On failure, what was mounted is undone.
Status MountAll(const std::vector<Mount>& mounts, const std::string& target);
// Unmounts everything stacked on `target` (lazy detach as a last resort).
Status UnmountAll(const std::string& target);
// Mounts `mounts` on a fresh directory under `tmp_root` (containerd's <root>/tmpmounts), runs fn
// with its path, then unmounts and removes it, whatever fn returns.
Status WithTempMount(const std::vector<Mount>& mounts, const std::string& tmp_root,
                     const std::function<Status(const std::string& root)>& fn);

}  // namespace berth::mount

#pragma once
// Pinned network namespaces for pods (containerd 1.6 pkg/netns/netns_linux.go).
//
// A pod's network namespace lives as long as a bind mount of its nsfs file onto a file under
// the netns directory (/var/run/netns, or <state>/netns with netns_mounts_under_state_dir) — no
// process of the daemon stays inside it. The CNI plugins are given that file's path.
#include <functional>
#include <string>

#include "common/errdefs.h"

namespace berth::cri::cni {

// A handle on a pinned netns, by path. Not an owner: the netns outlives the handle (and the
// daemon); Remove() releases it.
class NetNs {
 public:
  // Creates a new network namespace pinned at `dir`/cni-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
  // (16 random bytes in 8-4-4-4-12 hex). `dir` is created 0755 if missing; the file is created
  // O_EXCL 0666 (AlreadyExists on a clash); the namespace is made by unshare(CLONE_NEWNET) on a
  // dedicated short-lived thread, which bind-mounts its /proc/self/task/<tid>/ns/net onto the
  // file and then ends. On failure the file is removed. Errors carry the errno's class and say
  // which step failed. Requires CAP_SYS_ADMIN.
  static Result<NetNs> Create(const std::string& dir);
  // A handle on an existing path (restart recovery); nothing is checked.
  static NetNs Load(std::string path) { return NetNs(std::move(path)); }

  const std::string& Path() const { return path_; }

  // Whether the path no longer holds a namespace: true if the file is missing, or if it is not
  // an nsfs mount any more — that leftover file is then removed, as containerd does. Errors
  // (other than ENOENT) opening or inspecting the path are returned.
  Result<bool> Closed() const;

  // Releases the namespace: lazy unmount (MNT_DETACH) of whatever is mounted on the path, then
  // unlink. A missing path is fine; idempotent. The namespace itself disappears once no process
  // and no other mount (e.g. in another mount namespace) refers to it.
  Status Remove() const;

  // Runs fn on a new thread that has setns()-ed into the namespace, and returns its status.
  // Threads and processes fn starts inherit the namespace, and sockets it opens (netlink
  // included) live there; the calling thread never leaves its own. Inside fn, read counters from
  // /proc/thread-self/net/dev: /proc/net follows the process's main thread, and /sys/class/net
  // the namespace sysfs was mounted in. FailedPrecondition if the path is not a namespace (see
  // Closed()), NotFound if missing.
  Status Do(const std::function<Status()>& fn) const;

 private:
  explicit NetNs(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace berth::cri::cni

#pragma once
// A container's cgroup, read the way containerd's runc shim reads it (containerd/cgroups):
// located from /proc/<pid>/cgroup of its init at Create, then per controller under the cgroup
// mount. Stats() returns `io.containerd.cgroups.v1.Metrics` on v1 and hybrid hosts and
// `io.containerd.cgroups.v2.Metrics` on unified ones, as the Any the Task API returns.
#include <google/protobuf/any.pb.h>

#include <map>
#include <string>

#include "common/errdefs.h"

namespace berth::shim {

enum class CgroupMode { kLegacy, kHybrid, kUnified };

// Mode of the host's cgroup mount at `root` (default /sys/fs/cgroup), as cgroups.Mode().
CgroupMode DetectCgroupMode(const std::string& root = "/sys/fs/cgroup");

struct Cgroup {
  bool unified = false;
  std::string root = "/sys/fs/cgroup";    // cgroup mount root (tests use a fake tree)
  std::string proc = "/proc";             // for /proc/diskstats device names
  std::map<std::string, std::string> v1;  // controller -> path inside its hierarchy
  std::string v2;                         // path inside the unified hierarchy
  // Directory of a v1 controller ("" if the container has none), or the v2 directory.
  std::string Dir(const std::string& controller) const;
  bool Exists() const;
};

// Parses /proc/<pid>/cgroup text ("id:controllers:path" lines).
Cgroup ParseProcCgroup(const std::string& text, bool unified);
// The cgroup of a live process.
Result<Cgroup> LoadCgroup(int pid, CgroupMode mode);

// Metrics as an Any (type URL io.containerd.cgroups.v1.Metrics / v2.Metrics).
Result<google::protobuf::Any> CgroupStats(const Cgroup& cg);

}  // namespace berth::shim

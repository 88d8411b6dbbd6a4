// The host facts the specs depend on, read as containerd reads them (cgroups.Mode,
// pkg/seccomp.IsEnabled, pkg/apparmor.HostSupports, opts.SwapControllerAvailable,
// isHugetlbControllerPresent, pkg/cap.Current, getCurrentOOMScoreAdj).
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <sstream>

#include <fmt/format.h>

#include "common/fs.h"
#include "cri/spec/spec.h"

namespace berth::cri::spec {
namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The unified (v2) path of this process from /proc/self/cgroup ("0::<path>").
std::string UnifiedCgroup() {
  auto text = fs::ReadFile("/proc/self/cgroup");
  if (!text) return "/";
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("0::")) return line.substr(3);
  }
  return "/";
}

}  // namespace

Result<Host> DetectHost() {
  Host host;
  struct statfs fs_info {};
  if (::statfs("/sys/fs/cgroup", &fs_info) == 0 && fs_info.f_type == CGROUP2_SUPER_MAGIC) {
    host.cgroup_mode = CgroupMode::kV2;
  }
  host.seccomp_enabled = oci::SeccompSupported();
  if (Exists("/sys/kernel/security/apparmor") && std::getenv("container") == nullptr &&
      Exists("/sbin/apparmor_parser")) {
    auto enabled = fs::ReadFile("/sys/module/apparmor/parameters/enabled");
    host.apparmor_enabled = enabled && enabled->size() > 1 && (*enabled)[0] == 'Y';
  }
  if (host.cgroup_mode == CgroupMode::kV2) {
    host.swap_controller = Exists("/sys/fs/cgroup" + UnifiedCgroup() + "/memory.swap.max");
    auto controllers = fs::ReadFile("/sys/fs/cgroup/cgroup.controllers");
    host.hugetlb_controller = controllers && controllers->find("hugetlb") != std::string::npos;
  } else {
    host.swap_controller = Exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes");
    host.hugetlb_controller = Exists("/sys/fs/cgroup/hugetlb");
  }
  BERTH_ASSIGN_OR_RETURN(std::string adj, fs::ReadFile("/proc/self/oom_score_adj"));
  while (!adj.empty() && (adj.back() == '\n' || adj.back() == ' ')) adj.pop_back();
  auto [end, ec] = std::from_chars(adj.data(), adj.data() + adj.size(), host.oom_score_adj);
  if (ec != std::errc() || end != adj.data() + adj.size()) {
    return InvalidArgument(fmt::format("could not get the daemon oom_score_adj: {:?}", adj));
  }
  BERTH_ASSIGN_OR_RETURN(host.capabilities, oci::CurrentCapabilities());
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return ErrnoError(errno, "get hostname");
  host.hostname = name;
  host.seccomp = oci::CurrentSeccompHost();
  return host;
}

}  // namespace berth::cri::spec

// ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats (containerd 1.6
// container_stats*.go, sandbox_stats*.go; reference/cri.md §7): cgroup v1/v2 metrics from the
// shims for containers, read directly from the pod's cgroup for sandboxes, network counters
// from inside the pod's netns.
#include <fmt/format.h>

#include <sstream>

#include "common/fs.h"
#include "common/log.h"
#include "cri/service.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb.h"
#include "github.com/containerd/cgroups/v2/stats/metrics.pb.h"

namespace berth::cri {
namespace {

namespace cg1 = ::io::containerd::cgroups::v1;
namespace cg2 = ::io::containerd::cgroups::v2;

// What CRI reports of a cgroup, whichever version.
struct CgroupSample {
  bool has_cpu = false;
  uint64_t cpu_usage_ns = 0;
  bool has_memory = false;
  uint64_t usage = 0;
  uint64_t inactive_file = 0;
  uint64_t limit = 0;
  uint64_t rss = 0;
  uint64_t pgfault = 0;
  uint64_t pgmajfault = 0;
};

Result<CgroupSample> FromMetrics(const google::protobuf::Any& any) {
  CgroupSample s;
  if (any.type_url() == "io.containerd.cgroups.v1.Metrics") {
    cg1::Metrics m;
    if (!m.ParseFromString(any.value())) return InvalidArgument("bad cgroup v1 metrics");
    if (m.has_cpu()) {
      s.has_cpu = true;
      s.cpu_usage_ns = m.cpu().usage().total();
    }
    if (m.has_memory()) {
      s.has_memory = true;
      s.usage = m.memory().usage().usage();
      s.limit = m.memory().usage().limit();
      s.inactive_file = m.memory().total_inactive_file();
      s.rss = m.memory().total_rss();
      s.pgfault = m.memory().total_pg_fault();
      s.pgmajfault = m.memory().total_pg_maj_fault();
    }
    return s;
  }
  if (any.type_url() == "io.containerd.cgroups.v2.Metrics") {
    cg2::Metrics m;
    if (!m.ParseFromString(any.value())) return InvalidArgument("bad cgroup v2 metrics");
    if (m.has_cpu()) {
      s.has_cpu = true;
      s.cpu_usage_ns = m.cpu().usage_usec() * 1000;
    }
    if (m.has_memory()) {
      s.has_memory = true;
      s.usage = m.memory().usage();
      s.limit = m.memory().usage_limit();
      s.inactive_file = m.memory().inactive_file();
      s.rss = m.memory().anon();
      s.pgfault = m.memory().pgfault();
      s.pgmajfault = m.memory().pgmajfault();
    }
    return s;
  }
  return InvalidArgument(fmt::format("unexpected metrics type {:?}", any.type_url()));
}

uint64_t ReadU64(const std::string& path) {
  auto text = fs::ReadFile(path);
  if (!text) return 0;
  try {
    return std::stoull(*text);
  } catch (...) {
    return 0;  // "max" and friends
  }
}

std::map<std::string, uint64_t> ReadKeyed(const std::string& path) {
  std::map<std::string, uint64_t> out;
  auto text = fs::ReadFile(path);
  if (!text) return out;
  std::istringstream in(*text);
  std::string key;
  uint64_t value;
  while (in >> key >> value) out[key] = value;
  return out;
}

// The cgroupfs path of a cgroup parent: systemd slices ("a-b.slice") expand to their path
// ("/a.slice/a-b.slice").
std::string CgroupPath(const std::string& parent) {
  if (!parent.ends_with(".slice") || parent.find('/') != std::string::npos) {
    return parent.starts_with('/') ? parent : "/" + parent;
  }
  std::string name = parent.substr(0, parent.size() - 6);
  std::string path;
  std::string prefix;
  size_t start = 0;
  while (true) {
    size_t dash = name.find('-', start);
    prefix = name.substr(0, dash);
    path += "/" + prefix + ".slice";
    if (dash == std::string::npos) break;
    start = dash + 1;
  }
  return path;
}

Result<CgroupSample> ReadCgroup(const std::string& parent, spec::CgroupMode mode) {
  const std::string rel = CgroupPath(parent);
  CgroupSample s;
  if (mode == spec::CgroupMode::kV2) {
    const std::string dir = "/sys/fs/cgroup" + rel;
    if (::access(dir.c_str(), F_OK) != 0) return NotFound("cgroup " + dir + " does not exist");
    auto cpu = ReadKeyed(dir + "/cpu.stat");
    s.has_cpu = true;
    s.cpu_usage_ns = cpu["usage_usec"] * 1000;
    auto mem = ReadKeyed(dir + "/memory.stat");
    s.has_memory = true;
    s.usage = ReadU64(dir + "/memory.current");
    s.limit = ReadU64(dir + "/memory.max");
    s.inactive_file = mem["inactive_file"];
    s.rss = mem["anon"];
    s.pgfault = mem["pgfault"];
    s.pgmajfault = mem["pgmajfault"];
    return s;
  }
  const std::string cpu = "/sys/fs/cgroup/cpuacct" + rel;
  const std::string mem = "/sys/fs/cgroup/memory" + rel;
  if (::access(mem.c_str(), F_OK) != 0) return NotFound("cgroup " + mem + " does not exist");
  s.has_cpu = true;
  s.cpu_usage_ns = ReadU64(cpu + "/cpuacct.usage");
  auto stat = ReadKeyed(mem + "/memory.stat");
  s.has_memory = true;
  s.usage = ReadU64(mem + "/memory.usage_in_bytes");
  s.limit = ReadU64(mem + "/memory.limit_in_bytes");
  s.inactive_file = stat["total_inactive_file"];
  s.rss = stat["total_rss"];
  s.pgfault = stat["total_pgfault"];
  s.pgmajfault = stat["total_pgmajfault"];
  return s;
}

}  // namespace

// Fills cpu and memory from a sample; usage_nano_cores from the previous sample of `key`.
static void FillUsage(const CgroupSample& s, int64_t now, std::mutex& mu,
                      std::map<std::string, std::pair<uint64_t, int64_t>>& last,
                      const std::string& key, v1::CpuUsage* cpu, v1::MemoryUsage* memory) {
  if (s.has_cpu) {
    cpu->set_timestamp(now);
    cpu->mutable_usage_core_nano_seconds()->set_value(s.cpu_usage_ns);
    uint64_t nano_cores = 0;
    {
      std::lock_guard lock(mu);
      auto it = last.find(key);
      if (it != last.end() && now > it->second.second && s.cpu_usage_ns >= it->second.first) {
        nano_cores = static_cast<uint64_t>(static_cast<double>(s.cpu_usage_ns - it->second.first) /
                                           static_cast<double>(now - it->second.second) * 1e9);
      }
      last[key] = {s.cpu_usage_ns, now};
    }
    cpu->mutable_usage_nano_cores()->set_value(nano_cores);
  }
  if (s.has_memory) {
    memory->set_timestamp(now);
    uint64_t working_set = s.usage > s.inactive_file ? s.usage - s.inactive_file : 0;
    memory->mutable_working_set_bytes()->set_value(working_set);
    uint64_t available = 0;
    if (s.limit < (uint64_t{1} << 62) && s.limit > working_set) available = s.limit - working_set;
    memory->mutable_available_bytes()->set_value(available);
    memory->mutable_usage_bytes()->set_value(s.usage);
    memory->mutable_rss_bytes()->set_value(s.rss);
    memory->mutable_page_faults()->set_value(s.pgfault);
    memory->mutable_major_page_faults()->set_value(s.pgmajfault);
  }
}

void Service::FillStats(const Container& c, const std::optional<google::protobuf::Any>& metrics,
                        v1::ContainerStats* out) {
  const auto& cfg = c.meta.config;
  auto* a = out->mutable_attributes();
  a->set_id(c.meta.id);
  *a->mutable_metadata() = cfg.metadata();
  *a->mutable_labels() = cfg.labels();
  *a->mutable_annotations() = cfg.annotations();
  const int64_t now = UnixNanos(Now());
  if (metrics) {
    if (auto s = FromMetrics(*metrics); s) {
      FillUsage(*s, now, stats_mu_, last_cpu_, c.meta.id, out->mutable_cpu(),
                out->mutable_memory());
    }
  }
  auto* wl = out->mutable_writable_layer();
  wl->set_timestamp(now);
  wl->mutable_fs_id()->set_mountpoint(options_.daemon_root + "/io.containerd.snapshotter.v1." +
                                      options_.config.snapshotter);
  if (auto sn = options_.snapshotters->Get(options_.config.snapshotter); sn) {
    if (auto u = (*sn)->Usage(Ctx(), c.meta.id); u) {
      wl->mutable_used_bytes()->set_value(static_cast<uint64_t>(u->size));
      wl->mutable_inodes_used()->set_value(static_cast<uint64_t>(u->inodes));
    }
  }
}

Status Service::ContainerStats(const v1::ContainerStatsRequest& req,
                               v1::ContainerStatsResponse* resp) {
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(req.container_id()));
  std::shared_ptr<runtime::Task> task;
  {
    std::lock_guard lock(c->mu);
    task = c->task;
  }
  if (task == nullptr) {
    return NotFound(fmt::format("failed to fetch metrics for container {:?}: no task", c->meta.id));
  }
  auto metrics = task->Stats();
  if (!metrics) {
    return std::move(metrics).error().Wrap(
        fmt::format("failed to fetch metrics for container {:?}", c->meta.id));
  }
  FillStats(*c, *metrics, resp->mutable_stats());
  return Ok();
}

Status Service::ListContainerStats(const v1::ListContainerStatsRequest& req,
                                   v1::ListContainerStatsResponse* resp) {
  const auto& f = req.filter();
  std::string id = f.id().empty() ? "" : containers_.Resolve(f.id());
  std::string sandbox = f.pod_sandbox_id().empty() ? "" : sandboxes_.Resolve(f.pod_sandbox_id());
  if ((!f.id().empty() && id.empty()) || (!f.pod_sandbox_id().empty() && sandbox.empty())) {
    return Ok();
  }
  for (const auto& c : containers_.List()) {
    if (!id.empty() && c->meta.id != id) continue;
    if (!sandbox.empty() && c->meta.sandbox_id != sandbox) continue;
    bool match = true;
    for (const auto& [k, v] : f.label_selector()) {
      auto it = c->meta.config.labels().find(k);
      if (it == c->meta.config.labels().end() || it->second != v) match = false;
    }
    if (!match) continue;
    std::shared_ptr<runtime::Task> task;
    {
      std::lock_guard lock(c->mu);
      task = c->task;
    }
    std::optional<google::protobuf::Any> metrics;
    if (task) {
      if (auto m = task->Stats(); m) metrics = std::move(m).value();
    }
    FillStats(*c, metrics, resp->add_stats());
  }
  return Ok();
}

Status Service::PodSandboxStats(const v1::PodSandboxStatsRequest& req,
                                v1::PodSandboxStatsResponse* resp) {
  BERTH_ASSIGN_OR_RETURN(auto sb, GetSandbox(req.pod_sandbox_id()));
  std::shared_ptr<runtime::Task> task;
  {
    std::lock_guard lock(sb->mu);
    if (sb->state != SandboxState::kReady) {
      return FailedPrecondition(fmt::format("sandbox {:?} is not ready", sb->meta.id));
    }
    task = sb->task;
  }
  const auto& cfg = sb->meta.config;
  auto* out = resp->mutable_stats();
  auto* a = out->mutable_attributes();
  a->set_id(sb->meta.id);
  *a->mutable_metadata() = cfg.metadata();
  *a->mutable_labels() = cfg.labels();
  *a->mutable_annotations() = cfg.annotations();
  auto* linux = out->mutable_linux();
  const int64_t now = UnixNanos(Now());
  // The pod's cgroup: its parent when set (as containerd reads it), else the pause container's.
  Result<CgroupSample> sample = NotFound("no cgroup");
  if (!cfg.linux().cgroup_parent().empty()) {
    sample = ReadCgroup(cfg.linux().cgroup_parent(), host_.cgroup_mode);
  } else if (task) {
    auto m = task->Stats();
    sample = m ? FromMetrics(*m) : Result<CgroupSample>(std::move(m).error());
  }
  if (sample) {
    FillUsage(*sample, now, stats_mu_, last_cpu_, "sandbox:" + sb->meta.id, linux->mutable_cpu(),
              linux->mutable_memory());
  }
  // Network counters of eth0, read inside the pod's netns.
  if (!sb->meta.netns_path.empty()) {
    auto ns = cni::NetNs::Load(sb->meta.netns_path);
    std::map<std::string, uint64_t> counters;
    // /proc/thread-self/net follows the reading thread's netns (sysfs would show the
    // namespace it was mounted in).
    auto st = ns.Do([&]() -> berth::Status {
      BERTH_ASSIGN_OR_RETURN(std::string dev, fs::ReadFile("/proc/thread-self/net/dev"));
      std::istringstream in(dev);
      std::string line;
      while (std::getline(in, line)) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        name.erase(0, name.find_first_not_of(' '));
        if (name != "eth0") continue;
        std::istringstream fields(line.substr(colon + 1));
        uint64_t v[16] = {};
        for (auto& x : v) fields >> x;
        counters["rx_bytes"] = v[0];
        counters["rx_errors"] = v[2];
        counters["tx_bytes"] = v[8];
        counters["tx_errors"] = v[10];
        return Ok();
      }
      return NotFound("no eth0 in the pod's network namespace");
    });
    if (st) {
      auto* net = linux->mutable_network();
      net->set_timestamp(now);
      auto* eth0 = net->mutable_default_interface();
      eth0->set_name("eth0");
      eth0->mutable_rx_bytes()->set_value(counters["rx_bytes"]);
      eth0->mutable_rx_errors()->set_value(counters["rx_errors"]);
      eth0->mutable_tx_bytes()->set_value(counters["tx_bytes"]);
      eth0->mutable_tx_errors()->set_value(counters["tx_errors"]);
    }
  }
  uint64_t processes = 0;
  v1::ListContainerStatsRequest creq;
  creq.mutable_filter()->set_pod_sandbox_id(sb->meta.id);
  v1::ListContainerStatsResponse cresp;
  BERTH_TRY(ListContainerStats(creq, &cresp));
  for (const auto& c : containers_.List()) {
    if (c->meta.sandbox_id != sb->meta.id) continue;
    std::shared_ptr<runtime::Task> t;
    {
      std::lock_guard lock(c->mu);
      if (c->status.State() == v1::CONTAINER_RUNNING) t = c->task;
    }
    if (t) {
      if (auto pids = t->Pids(); pids) processes += pids->size();
    }
  }
  linux->mutable_process()->set_timestamp(now);
  linux->mutable_process()->mutable_process_count()->set_value(processes);
  for (auto& cs : *cresp.mutable_stats()) *linux->add_containers() = std::move(cs);
  return Ok();
}

Status Service::ListPodSandboxStats(const v1::ListPodSandboxStatsRequest& req,
                                    v1::ListPodSandboxStatsResponse* resp) {
  const auto& f = req.filter();
  std::string id = f.id().empty() ? "" : sandboxes_.Resolve(f.id());
  if (!f.id().empty() && id.empty()) return Ok();
  for (const auto& sb : sandboxes_.List()) {
    if (!id.empty() && sb->meta.id != id) continue;
    bool match = true;
    for (const auto& [k, v] : f.label_selector()) {
      auto it = sb->meta.config.labels().find(k);
      if (it == sb->meta.config.labels().end() || it->second != v) match = false;
    }
    if (!match) continue;
    {
      std::lock_guard lock(sb->mu);
      if (sb->state != SandboxState::kReady) continue;
    }
    v1::PodSandboxStatsRequest one;
    one.set_pod_sandbox_id(sb->meta.id);
    v1::PodSandboxStatsResponse r;
    if (auto st = PodSandboxStats(one, &r); st) {
      *resp->add_stats() = std::move(*r.mutable_stats());
    } else {
      log::L().With("sandbox", sb->meta.id).WithError(st.error()).Debug("pod sandbox stats");
    }
  }
  return Ok();
}

}  // namespace berth::cri

#include "shim/cgroups.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <vector>

#include "common/fs.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb.h"
#include "github.com/containerd/cgroups/v2/stats/metrics.pb.h"

namespace berth::shim {
namespace {

namespace v1 = io::containerd::cgroups::v1;
namespace v2 = io::containerd::cgroups::v2;

constexpr uint64_t kMaxUint64 = ~uint64_t{0};

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

uint64_t ParseUint(const std::string& text, uint64_t max_value = kMaxUint64) {
  std::string t = Trim(text);
  if (t == "max") {
    return max_value;
  }
  return std::strtoull(t.c_str(), nullptr, 10);
}

// Reads a single-number file; 0 when missing (containerd ignores missing files).
uint64_t ReadUint(const std::string& path, uint64_t max_value = kMaxUint64) {
  auto text = fs::ReadFile(path);
  return text ? ParseUint(*text, max_value) : 0;
}

std::vector<std::pair<std::string, uint64_t>> ReadKv(const std::string& path) {
  std::vector<std::pair<std::string, uint64_t>> out;
  auto text = fs::ReadFile(path);
  if (!text) {
    return out;
  }
  std::istringstream in(*text);
  std::string key;
  std::string value;
  while (in >> key >> value) {
    out.emplace_back(key, ParseUint(value));
  }
  return out;
}

// The cgroup files' keys and the metrics setters they fill (no protobuf reflection: building
// descriptors would cost every shim hundreds of kilobytes).
template <class M>
struct Field {
  const char* key;
  void (M::*set)(uint64_t);
};

template <class M, size_t N>
void SetByKey(M* msg, const Field<M> (&fields)[N], const std::string& key, uint64_t value) {
  for (const auto& f : fields) {
    if (key == f.key) {
      (msg->*f.set)(value);
      return;
    }
  }
}

constexpr Field<v1::MemoryStat> kV1Memory[] = {
    {"cache", &v1::MemoryStat::set_cache},
    {"rss", &v1::MemoryStat::set_rss},
    {"rss_huge", &v1::MemoryStat::set_rss_huge},
    {"mapped_file", &v1::MemoryStat::set_mapped_file},
    {"dirty", &v1::MemoryStat::set_dirty},
    {"writeback", &v1::MemoryStat::set_writeback},
    {"pgpgin", &v1::MemoryStat::set_pg_pg_in},
    {"pgpgout", &v1::MemoryStat::set_pg_pg_out},
    {"pgfault", &v1::MemoryStat::set_pg_fault},
    {"pgmajfault", &v1::MemoryStat::set_pg_maj_fault},
    {"inactive_anon", &v1::MemoryStat::set_inactive_anon},
    {"active_anon", &v1::MemoryStat::set_active_anon},
    {"inactive_file", &v1::MemoryStat::set_inactive_file},
    {"active_file", &v1::MemoryStat::set_active_file},
    {"unevictable", &v1::MemoryStat::set_unevictable},
    {"hierarchical_memory_limit", &v1::MemoryStat::set_hierarchical_memory_limit},
    {"hierarchical_memsw_limit", &v1::MemoryStat::set_hierarchical_swap_limit},
    {"total_cache", &v1::MemoryStat::set_total_cache},
    {"total_rss", &v1::MemoryStat::set_total_rss},
    {"total_rss_huge", &v1::MemoryStat::set_total_rss_huge},
    {"total_mapped_file", &v1::MemoryStat::set_total_mapped_file},
    {"total_dirty", &v1::MemoryStat::set_total_dirty},
    {"total_writeback", &v1::MemoryStat::set_total_writeback},
    {"total_pgpgin", &v1::MemoryStat::set_total_pg_pg_in},
    {"total_pgpgout", &v1::MemoryStat::set_total_pg_pg_out},
    {"total_pgfault", &v1::MemoryStat::set_total_pg_fault},
    {"total_pgmajfault", &v1::MemoryStat::set_total_pg_maj_fault},
    {"total_inactive_anon", &v1::MemoryStat::set_total_inactive_anon},
    {"total_active_anon", &v1::MemoryStat::set_total_active_anon},
    {"total_inactive_file", &v1::MemoryStat::set_total_inactive_file},
    {"total_active_file", &v1::MemoryStat::set_total_active_file},
    {"total_unevictable", &v1::MemoryStat::set_total_unevictable},
};
constexpr Field<v1::MemoryOomControl> kV1OomControl[] = {
    {"oom_kill_disable", &v1::MemoryOomControl::set_oom_kill_disable},
    {"under_oom", &v1::MemoryOomControl::set_under_oom},
    {"oom_kill", &v1::MemoryOomControl::set_oom_kill},
};
constexpr Field<v2::MemoryStat> kV2Memory[] = {
    {"anon", &v2::MemoryStat::set_anon},
    {"file", &v2::MemoryStat::set_file},
    {"kernel_stack", &v2::MemoryStat::set_kernel_stack},
    {"slab", &v2::MemoryStat::set_slab},
    {"sock", &v2::MemoryStat::set_sock},
    {"shmem", &v2::MemoryStat::set_shmem},
    {"file_mapped", &v2::MemoryStat::set_file_mapped},
    {"file_dirty", &v2::MemoryStat::set_file_dirty},
    {"file_writeback", &v2::MemoryStat::set_file_writeback},
    {"anon_thp", &v2::MemoryStat::set_anon_thp},
    {"inactive_anon", &v2::MemoryStat::set_inactive_anon},
    {"active_anon", &v2::MemoryStat::set_active_anon},
    {"inactive_file", &v2::MemoryStat::set_inactive_file},
    {"active_file", &v2::MemoryStat::set_active_file},
    {"unevictable", &v2::MemoryStat::set_unevictable},
    {"slab_reclaimable", &v2::MemoryStat::set_slab_reclaimable},
    {"slab_unreclaimable", &v2::MemoryStat::set_slab_unreclaimable},
    {"pgfault", &v2::MemoryStat::set_pgfault},
    {"pgmajfault", &v2::MemoryStat::set_pgmajfault},
    {"workingset_refault", &v2::MemoryStat::set_workingset_refault},
    {"workingset_activate", &v2::MemoryStat::set_workingset_activate},
    {"workingset_nodereclaim", &v2::MemoryStat::set_workingset_nodereclaim},
    {"pgrefill", &v2::MemoryStat::set_pgrefill},
    {"pgscan", &v2::MemoryStat::set_pgscan},
    {"pgsteal", &v2::MemoryStat::set_pgsteal},
    {"pgactivate", &v2::MemoryStat::set_pgactivate},
    {"pgdeactivate", &v2::MemoryStat::set_pgdeactivate},
    {"pglazyfree", &v2::MemoryStat::set_pglazyfree},
    {"pglazyfreed", &v2::MemoryStat::set_pglazyfreed},
    {"thp_fault_alloc", &v2::MemoryStat::set_thp_fault_alloc},
    {"thp_collapse_alloc", &v2::MemoryStat::set_thp_collapse_alloc},
};
constexpr Field<v2::CPUStat> kV2Cpu[] = {
    {"usage_usec", &v2::CPUStat::set_usage_usec},
    {"user_usec", &v2::CPUStat::set_user_usec},
    {"system_usec", &v2::CPUStat::set_system_usec},
    {"nr_periods", &v2::CPUStat::set_nr_periods},
    {"nr_throttled", &v2::CPUStat::set_nr_throttled},
    {"throttled_usec", &v2::CPUStat::set_throttled_usec},
};
constexpr Field<v2::MemoryEvents> kV2Events[] = {
    {"low", &v2::MemoryEvents::set_low},           {"high", &v2::MemoryEvents::set_high},
    {"max", &v2::MemoryEvents::set_max},           {"oom", &v2::MemoryEvents::set_oom},
    {"oom_kill", &v2::MemoryEvents::set_oom_kill},
};
constexpr Field<v2::IOEntry> kV2Io[] = {
    {"rbytes", &v2::IOEntry::set_rbytes},
    {"wbytes", &v2::IOEntry::set_wbytes},
    {"rios", &v2::IOEntry::set_rios},
    {"wios", &v2::IOEntry::set_wios},
};

std::map<std::pair<uint64_t, uint64_t>, std::string> DeviceNames(const std::string& proc) {
  std::map<std::pair<uint64_t, uint64_t>, std::string> names;
  auto text = fs::ReadFile(proc + "/diskstats");
  if (!text) {
    return names;
  }
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    uint64_t major = 0;
    uint64_t minor = 0;
    std::string name;
    if (ls >> major >> minor >> name) {
      names[{major, minor}] = "/dev/" + name;
    }
  }
  return names;
}

void ReadBlkio(const std::string& path, google::protobuf::RepeatedPtrField<v1::BlkIOEntry>* entries,
               const std::map<std::pair<uint64_t, uint64_t>, std::string>& devices) {
  auto text = fs::ReadFile(path);
  if (!text) {
    return;
  }
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<std::string> f;
    std::string w;
    while (ls >> w) {
      f.push_back(w);
    }
    if (f.size() < 2 || f[0] == "Total") {
      continue;
    }
    auto colon = f[0].find(':');
    if (colon == std::string::npos) {
      continue;
    }
    auto* e = entries->Add();
    e->set_major(std::strtoull(f[0].substr(0, colon).c_str(), nullptr, 10));
    e->set_minor(std::strtoull(f[0].substr(colon + 1).c_str(), nullptr, 10));
    if (f.size() == 3) {
      e->set_op(f[1]);
      e->set_value(ParseUint(f[2]));
    } else {
      e->set_value(ParseUint(f[1]));
    }
    if (auto it = devices.find({e->major(), e->minor()}); it != devices.end()) {
      e->set_device(it->second);
    }
  }
}

void FillMemoryEntry(const std::string& prefix, v1::MemoryEntry* e) {
  e->set_usage(ReadUint(prefix + "usage_in_bytes"));
  e->set_max(ReadUint(prefix + "max_usage_in_bytes"));
  e->set_failcnt(ReadUint(prefix + "failcnt"));
  e->set_limit(ReadUint(prefix + "limit_in_bytes"));
}

Result<google::protobuf::Any> StatsV1(const Cgroup& cg) {
  v1::Metrics m;
  if (auto dir = cg.Dir("pids"); !dir.empty()) {
    m.mutable_pids()->set_current(ReadUint(dir + "/pids.current"));
    m.mutable_pids()->set_limit(ReadUint(dir + "/pids.max", 0));
  }
  if (auto dir = cg.Dir("cpuacct"); !dir.empty()) {
    auto* usage = m.mutable_cpu()->mutable_usage();
    usage->set_total(ReadUint(dir + "/cpuacct.usage"));
    if (auto text = fs::ReadFile(dir + "/cpuacct.usage_percpu")) {
      std::istringstream in(*text);
      uint64_t v = 0;
      while (in >> v) {
        usage->add_per_cpu(v);
      }
    }
    // cpuacct.stat is in clock ticks; containerd reports nanoseconds.
    long ticks = ::sysconf(_SC_CLK_TCK);  // NOLINT(google-runtime-int)
    if (ticks <= 0) {
      ticks = 100;
    }
    for (const auto& [k, v] : ReadKv(dir + "/cpuacct.stat")) {
      uint64_t ns = v * 1000000000ULL / static_cast<uint64_t>(ticks);
      if (k == "user") {
        usage->set_user(ns);
      } else if (k == "system") {
        usage->set_kernel(ns);
      }
    }
  }
  if (auto dir = cg.Dir("cpu"); !dir.empty()) {
    auto* t = m.mutable_cpu()->mutable_throttling();
    for (const auto& [k, v] : ReadKv(dir + "/cpu.stat")) {
      if (k == "nr_periods") {
        t->set_periods(v);
      } else if (k == "nr_throttled") {
        t->set_throttled_periods(v);
      } else if (k == "throttled_time") {
        t->set_throttled_time(v);
      }
    }
  }
  if (auto dir = cg.Dir("memory"); !dir.empty()) {
    auto* mem = m.mutable_memory();
    for (const auto& [k, v] : ReadKv(dir + "/memory.stat")) {
      SetByKey(mem, kV1Memory, k, v);
    }
    FillMemoryEntry(dir + "/memory.", mem->mutable_usage());
    FillMemoryEntry(dir + "/memory.memsw.", mem->mutable_swap());
    FillMemoryEntry(dir + "/memory.kmem.", mem->mutable_kernel());
    FillMemoryEntry(dir + "/memory.kmem.tcp.", mem->mutable_kernel_tcp());
    auto* oom = m.mutable_memory_oom_control();
    for (const auto& [k, v] : ReadKv(dir + "/memory.oom_control")) {
      SetByKey(oom, kV1OomControl, k, v);
    }
  }
  if (auto dir = cg.Dir("blkio"); !dir.empty()) {
    auto devices = DeviceNames(cg.proc);
    auto* b = m.mutable_blkio();
    struct {
      const char* file;
      google::protobuf::RepeatedPtrField<v1::BlkIOEntry>* entries;
    } cfq[] = {
        {"blkio.io_service_bytes_recursive", b->mutable_io_service_bytes_recursive()},
        {"blkio.io_serviced_recursive", b->mutable_io_serviced_recursive()},
        {"blkio.io_queued_recursive", b->mutable_io_queued_recursive()},
        {"blkio.io_service_time_recursive", b->mutable_io_service_time_recursive()},
        {"blkio.io_wait_time_recursive", b->mutable_io_wait_time_recursive()},
        {"blkio.io_merged_recursive", b->mutable_io_merged_recursive()},
        {"blkio.time_recursive", b->mutable_io_time_recursive()},
        {"blkio.sectors_recursive", b->mutable_sectors_recursive()},
    };
    for (auto& s : cfq) {
      ReadBlkio(dir + "/" + s.file, s.entries, devices);
    }
    // Without CFQ (the usual case on modern kernels) the throttle counters are what exists.
    if (b->io_service_bytes_recursive_size() == 0) {
      ReadBlkio(dir + "/blkio.throttle.io_service_bytes", b->mutable_io_service_bytes_recursive(),
                devices);
      b->clear_io_serviced_recursive();
      ReadBlkio(dir + "/blkio.throttle.io_serviced", b->mutable_io_serviced_recursive(), devices);
    }
  }
  google::protobuf::Any any;
  any.set_type_url("io.containerd.cgroups.v1.Metrics");
  any.set_value(m.SerializeAsString());
  return any;
}

Result<google::protobuf::Any> StatsV2(const Cgroup& cg) {
  v2::Metrics m;
  std::string dir = cg.Dir("");
  m.mutable_pids()->set_current(ReadUint(dir + "/pids.current"));
  m.mutable_pids()->set_limit(ReadUint(dir + "/pids.max", 0));
  auto* cpu = m.mutable_cpu();
  for (const auto& [k, v] : ReadKv(dir + "/cpu.stat")) {
    SetByKey(cpu, kV2Cpu, k, v);
  }
  auto* mem = m.mutable_memory();
  for (const auto& [k, v] : ReadKv(dir + "/memory.stat")) {
    SetByKey(mem, kV2Memory, k, v);
  }
  mem->set_usage(ReadUint(dir + "/memory.current"));
  mem->set_usage_limit(ReadUint(dir + "/memory.max"));
  mem->set_swap_usage(ReadUint(dir + "/memory.swap.current"));
  mem->set_swap_limit(ReadUint(dir + "/memory.swap.max"));
  auto* events = m.mutable_memory_events();
  for (const auto& [k, v] : ReadKv(dir + "/memory.events")) {
    SetByKey(events, kV2Events, k, v);
  }
  if (auto text = fs::ReadFile(dir + "/io.stat")) {
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string dev;
      if (!(ls >> dev)) {
        continue;
      }
      auto colon = dev.find(':');
      if (colon == std::string::npos) {
        continue;
      }
      auto* e = m.mutable_io()->add_usage();
      e->set_major(std::strtoull(dev.substr(0, colon).c_str(), nullptr, 10));
      e->set_minor(std::strtoull(dev.substr(colon + 1).c_str(), nullptr, 10));
      std::string kv;
      while (ls >> kv) {
        auto eq = kv.find('=');
        if (eq != std::string::npos) {
          SetByKey(e, kV2Io, kv.substr(0, eq), ParseUint(kv.substr(eq + 1)));
        }
      }
    }
  }
  google::protobuf::Any any;
  any.set_type_url("io.containerd.cgroups.v2.Metrics");
  any.set_value(m.SerializeAsString());
  return any;
}

}  // namespace

CgroupMode DetectCgroupMode(const std::string& root) {
  struct statfs st {};
  if (::statfs(root.c_str(), &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) {
    return CgroupMode::kUnified;
  }
  if (::statfs((root + "/unified").c_str(), &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) {
    return CgroupMode::kHybrid;
  }
  return CgroupMode::kLegacy;
}

std::string Cgroup::Dir(const std::string& controller) const {
  if (unified) {
    return root + v2;
  }
  auto it = v1.find(controller);
  if (it == v1.end()) {
    return "";
  }
  std::string dir = root + "/" + controller + it->second;
  struct stat st {};
  return ::stat(dir.c_str(), &st) == 0 ? dir : "";
}

bool Cgroup::Exists() const {
  if (unified) {
    struct stat st {};
    return !v2.empty() && ::stat((root + v2).c_str(), &st) == 0;
  }
  for (const auto& [controller, path] : v1) {
    if (!Dir(controller).empty()) {
      return true;
    }
  }
  return false;
}

Cgroup ParseProcCgroup(const std::string& text, bool unified) {
  Cgroup cg;
  cg.unified = unified;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto c1 = line.find(':');
    auto c2 = c1 == std::string::npos ? std::string::npos : line.find(':', c1 + 1);
    if (c2 == std::string::npos) {
      continue;
    }
    std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path = line.substr(c2 + 1);
    if (controllers.empty()) {
      cg.v2 = path;
      continue;
    }
    std::istringstream cs(controllers);
    std::string c;
    while (std::getline(cs, c, ',')) {
      if (c.rfind("name=", 0) == 0) {
        c = c.substr(5);
      }
      cg.v1[c] = path;
    }
  }
  return cg;
}

Result<Cgroup> LoadCgroup(int pid, CgroupMode mode) {
  BERTH_ASSIGN_OR_RETURN(std::string text,
                         fs::ReadFile("/proc/" + std::to_string(pid) + "/cgroup"));
  return ParseProcCgroup(text, mode == CgroupMode::kUnified);
}

Result<google::protobuf::Any> CgroupStats(const Cgroup& cg) {
  if (!cg.Exists()) {
    return NotFound("cgroup does not exist");
  }
  return cg.unified ? StatsV2(cg) : StatsV1(cg);
}

}  // namespace berth::shim

#include "oci/spec.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "common/fs.h"
#include "oci/internal.h"

namespace berth::oci {
namespace {

using namespace internal;  // NOLINT(google-build-using-namespace)

using json = nlohmann::json;

// pkg/cap's capsLatest: names by capability number.
constexpr const char* kCapNames[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

}  // namespace

std::vector<std::string> DefaultCapabilities() {
  return {"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
          "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
          "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
          "CAP_KILL",    "CAP_AUDIT_WRITE"};
}

Spec DefaultSpec(std::string_view ns, std::string_view id) {
  auto caps = DefaultCapabilities();
  auto mount = [](const char* dst, const char* type, const char* src,
                  std::vector<std::string> options) {
    return MountJson({dst, type, src, std::move(options)});
  };
  std::string cgroups = "/" + std::string(ns);
  if (!id.empty()) cgroups += "/" + std::string(id);
  return json{
      {"ociVersion", kSpecVersion},
      {"process",
       {{"user", {{"uid", 0}, {"gid", 0}}},
        {"cwd", "/"},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
        {"noNewPrivileges", true}}},
      {"root", {{"path", "rootfs"}}},
      {"mounts",
       json::array({
           mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"}),
           mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
           mount("/dev/pts", "devpts", "devpts",
                 {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}),
           mount("/dev/shm", "tmpfs", "shm",
                 {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}),
           mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}),
           mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}),
           mount("/run", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
       })},
      {"linux",
       {{"resources", {{"devices", json::array({{{"allow", false}, {"access", "rwm"}}})}}},
        {"cgroupsPath", cgroups},
        {"namespaces", json::array({{{"type", "pid"}},
                                    {{"type", "ipc"}},
                                    {{"type", "uts"}},
                                    {{"type", "mount"}},
                                    {{"type", "network"}}})},
        {"maskedPaths",
         {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi"}},
        {"readonlyPaths",
         {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}},
  };
}

// ---- Process ----

std::vector<std::string> ReplaceOrAppendEnv(const std::vector<std::string>& defaults,
                                            const std::vector<std::string>& overrides) {
  std::map<std::string, size_t> cache;
  std::vector<std::string> results;
  std::vector<bool> removed;
  for (size_t i = 0; i < defaults.size(); ++i) {
    results.push_back(defaults[i]);
    removed.push_back(false);
    cache[defaults[i].substr(0, defaults[i].find('='))] = i;
  }
  for (const auto& value : overrides) {
    auto eq = value.find('=');
    if (eq == std::string::npos) {
      if (auto it = cache.find(value); it != cache.end()) removed[it->second] = true;
      continue;
    }
    if (auto it = cache.find(value.substr(0, eq)); it != cache.end()) {
      results[it->second] = value;
      removed[it->second] = false;
    } else {
      results.push_back(value);
      removed.push_back(false);
    }
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < results.size(); ++i) {
    // Go marks removals with "": an empty entry is dropped either way.
    if (!removed[i] && !results[i].empty()) out.push_back(results[i]);
  }
  return out;
}

void WithEnv(Spec& s, const std::vector<std::string>& env) {
  if (env.empty()) return;
  json& p = Process(s);
  p["env"] = ReplaceOrAppendEnv(StringList(p.value("env", json::array())), env);
}

Status WithEnvFile(Spec& s, const std::string& path) {
  auto text = fs::ReadFile(path);
  if (!text) return std::move(text).error().Wrap("env file " + path);
  std::vector<std::string> vars;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // bufio.ScanLines drops \r
    vars.push_back(line);
  }
  WithEnv(s, vars);
  return Ok();
}

void WithProcessArgs(Spec& s, const std::vector<std::string>& args) {
  json& p = Process(s);
  p["args"] = args;
  p.erase("commandLine");
}

void WithProcessCwd(Spec& s, std::string_view cwd) { Process(s)["cwd"] = cwd; }

void WithTty(Spec& s) {
  json& p = Process(s);
  p["terminal"] = true;
  if (s.contains("linux")) {
    json env = p.value("env", json::array());
    env.push_back("TERM=xterm");
    p["env"] = env;
  }
}

void WithNewPrivileges(Spec& s) { Process(s).erase("noNewPrivileges"); }

void WithCapabilities(Spec& s, const std::vector<std::string>& caps) {
  json& c = Capabilities(s);
  for (const char* set : {"bounding", "effective", "permitted"}) {
    if (caps.empty()) {
      c.erase(set);
    } else {
      c[set] = caps;
    }
  }
}

void WithAddedCapabilities(Spec& s, const std::vector<std::string>& caps) {
  json& c = Capabilities(s);
  for (const char* set : {"bounding", "effective", "permitted"}) {
    auto list = StringList(c.value(set, json::array()));
    for (const auto& cap : caps) {
      if (std::find(list.begin(), list.end(), cap) == list.end()) list.push_back(cap);
    }
    c[set] = list;
  }
}

void WithDroppedCapabilities(Spec& s, const std::vector<std::string>& caps) {
  json& c = Capabilities(s);
  for (const char* set : {"bounding", "effective", "permitted"}) {
    auto list = StringList(c.value(set, json::array()));
    std::erase_if(list, [&](const std::string& x) {
      return std::find(caps.begin(), caps.end(), x) != caps.end();
    });
    if (list.empty()) {
      c.erase(set);
    } else {
      c[set] = list;
    }
  }
}

Result<std::vector<std::string>> CurrentCapabilities() {
  BERTH_ASSIGN_OR_RETURN(std::string status, fs::ReadFile("/proc/self/status"));
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("CapEff:")) continue;
    uint64_t bits = std::strtoull(line.c_str() + 7, nullptr, 16);
    std::vector<std::string> names;
    for (size_t i = 0; i < std::size(kCapNames); ++i) {
      if ((bits >> i) & 1U) names.emplace_back(kCapNames[i]);
    }
    return names;
  }
  return NotFound("CapEff in /proc/self/status");
}

// ---- Root, mounts, namespaces ----

void WithRootFsPath(Spec& s, std::string_view path) {
  if (!s.contains("root") || !s["root"].is_object()) s["root"] = json::object();
  s["root"]["path"] = path;
}

void WithRootFsReadonly(Spec& s) {
  if (!s.contains("root") || !s["root"].is_object()) s["root"] = json::object();
  s["root"]["readonly"] = true;
}

json MountJson(const SpecMount& m) {
  json j = json::object();
  j["destination"] = m.destination;
  if (!m.type.empty()) j["type"] = m.type;
  if (!m.source.empty()) j["source"] = m.source;
  if (!m.options.empty()) j["options"] = m.options;
  return j;
}

void WithMounts(Spec& s, const std::vector<SpecMount>& mounts) {
  if (mounts.empty()) return;
  if (!s.contains("mounts") || !s["mounts"].is_array()) s["mounts"] = json::array();
  for (const auto& m : mounts) s["mounts"].push_back(MountJson(m));
}

Result<SpecMount> ParseMountFlag(std::string_view flag) {
  // encoding/csv on one record: fields split by ",", double quotes group a field.
  std::vector<std::string> fields;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < flag.size(); ++i) {
    char c = flag[i];
    if (quoted) {
      if (c == '"' && i + 1 < flag.size() && flag[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"' && cur.empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (quoted)
    return InvalidArgument(
        fmt::format("parse mount {:?}: extraneous or missing \" in quoted-field", flag));
  fields.push_back(std::move(cur));
  SpecMount m;
  for (const auto& field : fields) {
    auto eq = field.find('=');
    if (eq == std::string::npos) {
      return InvalidArgument("invalid mount specification: expected key=val");
    }
    std::string key = field.substr(0, eq);
    std::string val = field.substr(eq + 1);
    if (key == "type") {
      m.type = val;
    } else if (key == "source" || key == "src") {
      m.source = val;
    } else if (key == "destination" || key == "dst") {
      m.destination = val;
    } else if (key == "options") {
      m.options = Split(val, ':');
    } else {
      return InvalidArgument(fmt::format("mount option {:?} not supported", key));
    }
  }
  return m;
}

void WithHostNamespace(Spec& s, std::string_view type) {
  json& linux = Linux(s);
  if (!linux.contains("namespaces") || !linux["namespaces"].is_array()) return;
  json& nss = linux["namespaces"];
  for (auto it = nss.begin(); it != nss.end(); ++it) {
    if (it->value("type", "") == type) {
      nss.erase(it);
      return;
    }
  }
}

void WithLinuxNamespace(Spec& s, std::string_view type, std::string_view path) {
  json& linux = Linux(s);
  if (!linux.contains("namespaces") || !linux["namespaces"].is_array()) {
    linux["namespaces"] = json::array();
  }
  json ns = {{"type", type}};
  if (!path.empty()) ns["path"] = path;
  for (auto& n : linux["namespaces"]) {
    if (n.value("type", "") == type) {
      n = ns;
      return;
    }
  }
  linux["namespaces"].push_back(ns);
}

void WithHostHostsFile(Spec& s) {
  WithMounts(s, {{"/etc/hosts", "bind", "/etc/hosts", {"rbind", "ro"}}});
}

void WithHostResolvconf(Spec& s) {
  WithMounts(s, {{"/etc/resolv.conf", "bind", "/etc/resolv.conf", {"rbind", "ro"}}});
}

Status WithHostNetwork(Spec& s) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return ErrnoError(errno, "get hostname");
  WithHostNamespace(s, "network");
  WithHostHostsFile(s);
  WithHostResolvconf(s);
  WithEnv(s, {fmt::format("HOSTNAME={}", host)});
  return Ok();
}

void WithCgroup(Spec& s, std::string_view path) { Linux(s)["cgroupsPath"] = path; }

void WithAnnotations(Spec& s, const std::map<std::string, std::string>& annotations) {
  if (!s.contains("annotations") || !s["annotations"].is_object()) {
    s["annotations"] = json::object();
  }
  for (const auto& [k, v] : annotations) s["annotations"][k] = v;
  // Go's omitempty drops an empty map when marshalling.
  if (s["annotations"].empty()) s.erase("annotations");
}

// ---- Devices and privileges ----

void WithDefaultUnixDevices(Spec& s) {
  json& r = Resources(s);
  if (!r.contains("devices") || !r["devices"].is_array()) r["devices"] = json::array();
  auto dev = [](int64_t major, std::optional<int64_t> minor) {
    json d = {{"allow", true}, {"type", "c"}, {"major", major}};
    if (minor) d["minor"] = *minor;
    d["access"] = "rwm";
    return d;
  };
  for (auto d : {dev(1, 3), dev(1, 8), dev(1, 7), dev(5, 0), dev(1, 5), dev(1, 9), dev(5, 1),
                 dev(136, std::nullopt), dev(5, 2)}) {
    r["devices"].push_back(d);
  }
}

void WithAllDevicesAllowed(Spec& s) {
  Resources(s)["devices"] = json::array({{{"allow", true}, {"access", "rwm"}}});
}

namespace {

// oci.DeviceFromPath: the device node at `path` (lstat: a symlink is not a device); nullopt for
// anything else (ErrNotADevice).
Result<std::optional<json>> DeviceFromPath(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ErrnoError(errno, "lstat " + path);
  std::string type;
  if (S_ISBLK(st.st_mode)) {
    type = "b";
  } else if (S_ISCHR(st.st_mode)) {
    type = "c";
  } else if (S_ISFIFO(st.st_mode)) {
    type = "p";
  } else {
    return std::optional<json>();
  }
  return std::optional<json>(json{{"path", path},
                                  {"type", type},
                                  {"major", static_cast<int64_t>(major(st.st_rdev))},
                                  {"minor", static_cast<int64_t>(minor(st.st_rdev))},
                                  {"fileMode", st.st_mode & ~S_IFMT},
                                  {"uid", st.st_uid},
                                  {"gid", st.st_gid}});
}

// oci.getDevices for a directory: the device nodes below `dir` (FIFOs skipped), each under
// `container_path`/<name> when `container_path` is set.
Status CollectDevices(const std::string& dir, const std::string& container_path, json& out) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return ErrnoError(ec.value(), "read device dir " + dir);
  std::vector<std::filesystem::directory_entry> entries(it, {});
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path() < b.path(); });
  for (const auto& e : entries) {
    const std::string name = e.path().filename();
    const std::string path = e.path();
    const std::string target =
        container_path.empty() ? "" : fmt::format("{}/{}", container_path, name);
    if (e.is_directory(ec) && !e.is_symlink(ec)) {
      if (name == "pts" || name == "shm" || name == "fd" || name == "mqueue" || name == ".lxc" ||
          name == ".lxd-mounts" || name == ".udev") {
        continue;
      }
      BERTH_TRY(CollectDevices(path, target, out));
      continue;
    }
    if (name == "console") continue;
    auto dev = DeviceFromPath(path);
    if (!dev) {
      if (dev.error().Is(Errc::kNotFound)) continue;
      return std::move(dev).error();
    }
    if (!*dev || (**dev)["type"] == "p") continue;  // not a device, or a FIFO
    if (!target.empty()) (**dev)["path"] = target;
    out.push_back(std::move(**dev));
  }
  return Ok();
}

// oci.getDevices: one device, or the devices below a directory.
Result<json> GetDevices(const std::string& path, const std::string& container_path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoError(errno, "error stating device path: stat " + path);
  }
  json out = json::array();
  if (S_ISDIR(st.st_mode)) {
    BERTH_TRY(CollectDevices(path, container_path, out));
    return out;
  }
  BERTH_ASSIGN_OR_RETURN(auto dev, DeviceFromPath(path));
  if (!dev) return InvalidArgument(fmt::format("{}: not a device node", path));
  if (!container_path.empty()) (*dev)["path"] = container_path;
  out.push_back(std::move(*dev));
  return out;
}

void WritableMounts(Spec& s, std::string_view type) {
  if (!s.contains("mounts") || !s["mounts"].is_array()) return;
  for (auto& m : s["mounts"]) {
    if (m.value("type", "") != type || !m.contains("options")) continue;
    for (auto& o : m["options"]) {
      if (o == "ro") o = "rw";
    }
  }
}

}  // namespace

Status WithHostDevices(Spec& s) {
  json devices = json::array();
  BERTH_TRY(CollectDevices("/dev", "", devices));
  json& linux = Linux(s);
  if (!linux.contains("devices") || !linux["devices"].is_array()) {
    linux["devices"] = json::array();
  }
  for (auto& d : devices) linux["devices"].push_back(std::move(d));
  if (linux["devices"].empty()) linux.erase("devices");
  return Ok();
}

Status WithDevices(Spec& s, const std::string& device_path, const std::string& container_path,
                   const std::string& permissions) {
  BERTH_ASSIGN_OR_RETURN(json devices, GetDevices(device_path, container_path));
  json& linux = Linux(s);
  if (!linux.contains("devices") || !linux["devices"].is_array()) {
    linux["devices"] = json::array();
  }
  json& r = Resources(s);
  if (!r.contains("devices") || !r["devices"].is_array()) r["devices"] = json::array();
  for (auto& d : devices) {
    json rule = {
        {"allow", true}, {"type", d["type"]}, {"major", d["major"]}, {"minor", d["minor"]}};
    if (!permissions.empty()) rule["access"] = permissions;
    r["devices"].push_back(std::move(rule));
    linux["devices"].push_back(std::move(d));
  }
  if (linux["devices"].empty()) linux.erase("devices");
  return Ok();
}

Status WithPrivileged(Spec& s) {
  BERTH_ASSIGN_OR_RETURN(auto caps, CurrentCapabilities());
  WithPrivileged(s, caps);
  return Ok();
}

void WithPrivileged(Spec& s, const std::vector<std::string>& current_caps) {
  WithCapabilities(s, current_caps);
  json& linux = Linux(s);
  linux.erase("maskedPaths");
  linux.erase("readonlyPaths");
  WritableMounts(s, "sysfs");
  WritableMounts(s, "cgroup");
  json& p = Process(s);
  p.erase("selinuxLabel");
  p.erase("apparmorProfile");
  linux.erase("seccomp");
}

Status WithPrivilegedAll(Spec& s) {
  BERTH_TRY(WithPrivileged(s));
  WithAllDevicesAllowed(s);
  return WithHostDevices(s);
}

// ---- Resources ----

void WithMemoryLimit(Spec& s, uint64_t limit) {
  if (!s.contains("linux")) return;  // Go: only when the Linux section exists
  json& r = Resources(s);
  if (!r.contains("memory") || !r["memory"].is_object()) r["memory"] = json::object();
  r["memory"]["limit"] = static_cast<int64_t>(limit);
}

void WithCpuCfs(Spec& s, int64_t quota, uint64_t period) {
  json& cpu = Cpu(s);
  cpu["quota"] = quota;
  cpu["period"] = period;
}

void WithCpus(Spec& s, double cpus) {
  if (cpus <= 0.0) return;
  WithCpuCfs(s, static_cast<int64_t>(cpus * 100000.0), 100000);
}

void WithCpuShares(Spec& s, uint64_t shares) { Cpu(s)["shares"] = shares; }

}  // namespace berth::oci

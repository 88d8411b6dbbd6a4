#include "cri/config.h"

#include <set>

#include <fmt/format.h>

#include "common/timeutil.h"

namespace berth::cri {
namespace {

// Reads typed keys of one table; records which keys were read so the rest can be reported.
class Reader {
 public:
  Reader(const toml::table& t, std::string where) : t_(t), where_(std::move(where)) {}

  Status Str(const char* key, std::string& out) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (n == nullptr) return Ok();
    auto v = n->value<std::string>();
    if (!v || !n->is_string()) return Bad(key, "a string");
    out = *v;
    return Ok();
  }
  Status Bool(const char* key, bool& out) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (n == nullptr) return Ok();
    if (!n->is_boolean()) return Bad(key, "a boolean");
    out = *n->value<bool>();
    return Ok();
  }
  Status Int(const char* key, int& out) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (n == nullptr) return Ok();
    if (!n->is_integer()) return Bad(key, "an integer");
    out = static_cast<int>(*n->value<int64_t>());
    return Ok();
  }
  Status Strings(const char* key, std::vector<std::string>& out) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (n == nullptr) return Ok();
    const toml::array* a = n->as_array();
    if (a == nullptr) return Bad(key, "an array of strings");
    out.clear();
    for (const auto& e : *a) {
      auto v = e.value<std::string>();
      if (!v || !e.is_string()) return Bad(key, "an array of strings");
      out.push_back(*v);
    }
    return Ok();
  }
  // A sub-table (nullptr when absent); InvalidArgument when the key is not a table.
  Result<const toml::table*> Table(const char* key) {
    seen_.insert(key);
    const toml::node* n = t_.get(key);
    if (n == nullptr) return static_cast<const toml::table*>(nullptr);
    if (!n->is_table()) return Bad(key, "a table");
    return n->as_table();
  }
  // Keys containerd knows that berth accepts without acting on them.
  void Accept(std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
      seen_.insert(k);
      if (t_.contains(k)) ignored_.push_back(k);
    }
  }
  void Warnings(std::vector<std::string>* out) const {
    if (out == nullptr) return;
    for (const auto& k : ignored_) {
      out->push_back(
          fmt::format("{}.{} is accepted for containerd compatibility and not used", where_, k));
    }
    for (const auto& [k, v] : t_) {
      if (!seen_.contains(std::string(k.str()))) {
        out->push_back(fmt::format("unknown key {}.{}", where_, k.str()));
      }
    }
  }

 private:
  Error Bad(const char* key, const char* what) const {
    return InvalidArgument(fmt::format("{}.{} must be {}", where_, key, what));
  }
  const toml::table& t_;
  std::string where_;
  std::set<std::string> seen_;
  std::vector<std::string> ignored_;
};

constexpr const char* kSection = "plugins.\"io.containerd.grpc.v1.cri\"";

Status ParseRuntime(const toml::table& t, const std::string& where, RuntimeConfig& rc,
                    std::vector<std::string>* warnings) {
  Reader r(t, where);
  BERTH_TRY(r.Str("runtime_type", rc.runtime_type));
  BERTH_TRY(r.Str("runtime_path", rc.runtime_path));
  BERTH_TRY(r.Strings("pod_annotations", rc.pod_annotations));
  BERTH_TRY(r.Strings("container_annotations", rc.container_annotations));
  BERTH_TRY(r.Bool("privileged_without_host_devices", rc.privileged_without_host_devices));
  BERTH_TRY(r.Str("base_runtime_spec", rc.base_runtime_spec));
  BERTH_TRY(r.Str("cni_conf_dir", rc.cni_conf_dir));
  BERTH_TRY(r.Int("cni_max_conf_num", rc.cni_max_conf_num));
  BERTH_ASSIGN_OR_RETURN(const toml::table* opts, r.Table("options"));
  if (opts != nullptr) rc.options = *opts;
  r.Accept({"runtime_engine", "runtime_root", "privileged_without_host_devices_all_devices_allowed",
            "snapshotter", "sandbox_mode"});
  r.Warnings(warnings);
  return Ok();
}

}  // namespace

Result<Config> Config::FromToml(const toml::table& table, std::vector<std::string>* warnings) {
  Config c;
  Reader r(table, kSection);
  BERTH_TRY(r.Str("sandbox_image", c.sandbox_image));
  BERTH_TRY(r.Str("stream_server_address", c.stream_server_address));
  BERTH_TRY(r.Str("stream_server_port", c.stream_server_port));
  BERTH_TRY(r.Str("stream_idle_timeout", c.stream_idle_timeout));
  BERTH_TRY(r.Bool("enable_tls_streaming", c.enable_tls_streaming));
  BERTH_TRY(r.Bool("disable_tcp_service", c.disable_tcp_service));
  BERTH_TRY(r.Bool("enable_selinux", c.enable_selinux));
  BERTH_TRY(r.Int("selinux_category_range", c.selinux_category_range));
  BERTH_TRY(r.Int("stats_collect_period", c.stats_collect_period));
  BERTH_TRY(r.Int("max_container_log_line_size", c.max_container_log_line_size));
  BERTH_TRY(r.Int("max_concurrent_downloads", c.max_concurrent_downloads));
  BERTH_TRY(r.Bool("disable_cgroup", c.disable_cgroup));
  BERTH_TRY(r.Bool("disable_apparmor", c.disable_apparmor));
  BERTH_TRY(r.Bool("restrict_oom_score_adj", c.restrict_oom_score_adj));
  BERTH_TRY(r.Bool("disable_proc_mount", c.disable_proc_mount));
  BERTH_TRY(
      r.Bool("device_ownership_from_security_context", c.device_ownership_from_security_context));
  BERTH_TRY(r.Bool("ignore_image_defined_volumes", c.ignore_image_defined_volumes));
  BERTH_TRY(r.Bool("netns_mounts_under_state_dir", c.netns_mounts_under_state_dir));
  BERTH_TRY(r.Bool("enable_unprivileged_ports", c.enable_unprivileged_ports));
  BERTH_TRY(r.Bool("enable_unprivileged_icmp", c.enable_unprivileged_icmp));
  BERTH_TRY(r.Bool("systemd_cgroup", c.systemd_cgroup));
  BERTH_TRY(r.Str("unset_seccomp_profile", c.unset_seccomp_profile));
  BERTH_TRY(r.Bool("tolerate_missing_hugetlb_controller", c.tolerate_missing_hugetlb_controller));
  BERTH_TRY(r.Bool("disable_hugetlb_controller", c.disable_hugetlb_controller));
  r.Accept({"enable_cdi", "cdi_spec_dirs", "image_decryption", "image_pull_progress_timeout",
            "drain_exec_sync_io_timeout"});

  BERTH_ASSIGN_OR_RETURN(const toml::table* tls, r.Table("x509_key_pair_streaming"));
  if (tls != nullptr) {
    Reader tr(*tls, std::string(kSection) + ".x509_key_pair_streaming");
    BERTH_TRY(tr.Str("tls_cert_file", c.tls_cert_file));
    BERTH_TRY(tr.Str("tls_key_file", c.tls_key_file));
    tr.Warnings(warnings);
  }

  BERTH_ASSIGN_OR_RETURN(const toml::table* ctrd, r.Table("containerd"));
  if (ctrd != nullptr) {
    const std::string where = std::string(kSection) + ".containerd";
    Reader cr(*ctrd, where);
    BERTH_TRY(cr.Str("snapshotter", c.snapshotter));
    BERTH_TRY(cr.Str("default_runtime_name", c.default_runtime_name));
    BERTH_TRY(cr.Bool("disable_snapshot_annotations", c.disable_snapshot_annotations));
    BERTH_TRY(cr.Bool("discard_unpacked_layers", c.discard_unpacked_layers));
    BERTH_TRY(cr.Bool("no_pivot", c.no_pivot));
    cr.Accept({"default_runtime", "untrusted_workload_runtime", "ignore_rdt_not_enabled_errors",
               "ignore_blockio_not_enabled_errors"});
    BERTH_ASSIGN_OR_RETURN(const toml::table* runtimes, cr.Table("runtimes"));
    if (runtimes != nullptr) {
      for (const auto& [name, node] : *runtimes) {
        const std::string key(name.str());
        const toml::table* rt = node.as_table();
        if (rt == nullptr) {
          return InvalidArgument(fmt::format("{}.runtimes.{} must be a table", where, key));
        }
        RuntimeConfig rc = c.runtimes.contains(key) ? c.runtimes[key] : RuntimeConfig{};
        BERTH_TRY(ParseRuntime(*rt, fmt::format("{}.runtimes.{}", where, key), rc, warnings));
        c.runtimes[key] = std::move(rc);
      }
    }
    cr.Warnings(warnings);
  }
  if (c.default_runtime_name.empty()) {
    return InvalidArgument("`default_runtime_name` is empty");
  }
  if (!c.runtimes.contains(c.default_runtime_name)) {
    return InvalidArgument(
        fmt::format("no corresponding runtime configured in `containerd.runtimes` for "
                    "`containerd` `default_runtime_name = \"{}\"",
                    c.default_runtime_name));
  }

  BERTH_ASSIGN_OR_RETURN(const toml::table* cni, r.Table("cni"));
  if (cni != nullptr) {
    Reader nr(*cni, std::string(kSection) + ".cni");
    BERTH_TRY(nr.Str("bin_dir", c.cni_bin_dir));
    BERTH_TRY(nr.Str("conf_dir", c.cni_conf_dir));
    BERTH_TRY(nr.Int("max_conf_num", c.cni_max_conf_num));
    BERTH_TRY(nr.Str("conf_template", c.cni_conf_template));
    BERTH_TRY(nr.Str("ip_pref", c.cni_ip_pref));
    BERTH_TRY(nr.Str("cache_dir", c.cni_cache_dir));
    nr.Accept({"setup_serially"});
    nr.Warnings(warnings);
  }
  if (!c.cni_ip_pref.empty() && c.cni_ip_pref != "ipv4" && c.cni_ip_pref != "ipv6" &&
      c.cni_ip_pref != "cni") {
    return InvalidArgument(fmt::format("invalid ip_pref {:?}: ipv4, ipv6 or cni", c.cni_ip_pref));
  }

  BERTH_ASSIGN_OR_RETURN(const toml::table* reg, r.Table("registry"));
  if (reg != nullptr) {
    Reader rr(*reg, std::string(kSection) + ".registry");
    BERTH_TRY(rr.Str("config_path", c.registry_config_path));
    // The deprecated inline registry settings: use hosts.toml under config_path instead.
    rr.Accept({"mirrors", "configs", "auths", "headers"});
    rr.Warnings(warnings);
  }

  if (auto d = ParseGoDuration(c.stream_idle_timeout); !d) {
    return std::move(d).error().Wrap(std::string(kSection) + ".stream_idle_timeout");
  }
  r.Warnings(warnings);
  return c;
}

std::string Config::DefaultToml() {
  return R"(sandbox_image = "registry.k8s.io/pause:3.6"
stream_server_address = "127.0.0.1"
stream_server_port = "0"
stream_idle_timeout = "4h"
enable_tls_streaming = false
disable_tcp_service = true
enable_selinux = false
selinux_category_range = 1024
stats_collect_period = 10
max_container_log_line_size = 16384
max_concurrent_downloads = 3
disable_cgroup = false
disable_apparmor = false
restrict_oom_score_adj = false
disable_proc_mount = false
device_ownership_from_security_context = false
ignore_image_defined_volumes = false
netns_mounts_under_state_dir = false
enable_unprivileged_ports = false
enable_unprivileged_icmp = false
systemd_cgroup = false
unset_seccomp_profile = ""
tolerate_missing_hugetlb_controller = true
disable_hugetlb_controller = true
[x509_key_pair_streaming]
tls_cert_file = ""
tls_key_file = ""
[containerd]
snapshotter = "overlayfs"
default_runtime_name = "runc"
disable_snapshot_annotations = true
discard_unpacked_layers = false
no_pivot = false
[containerd.runtimes.runc]
runtime_type = "io.containerd.runc.v2"
runtime_path = ""
pod_annotations = []
container_annotations = []
privileged_without_host_devices = false
base_runtime_spec = ""
cni_conf_dir = ""
cni_max_conf_num = 0
[containerd.runtimes.runc.options]
[cni]
bin_dir = "/opt/cni/bin"
conf_dir = "/etc/cni/net.d"
max_conf_num = 1
conf_template = ""
ip_pref = ""
cache_dir = "/var/lib/cni"
[registry]
config_path = ""
)";
}

}  // namespace berth::cri

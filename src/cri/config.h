#pragma once
// Configuration of the CRI plugin, containerd 1.6's [plugins."io.containerd.grpc.v1.cri"]
// section with its key names and defaults (reference/cri.md §15), so a containerd config.toml
// written for a Kubernetes node configures berthd unchanged:
//
//   [plugins."io.containerd.grpc.v1.cri"]
//     sandbox_image = "registry.k8s.io/pause:3.6"   # "" = berth's built-in pause (berth-pause)
//     max_container_log_line_size = 16384
//     [plugins."io.containerd.grpc.v1.cri".containerd]
//       snapshotter = "overlayfs"
//       default_runtime_name = "runc"
//       [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
//         runtime_type = "io.containerd.runc.v2"
//         [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
//           SystemdCgroup = false
//     [plugins."io.containerd.grpc.v1.cri".cni]
//       bin_dir = "/opt/cni/bin"
//       conf_dir = "/etc/cni/net.d"
//     [plugins."io.containerd.grpc.v1.cri".registry]
//       config_path = ""                           # hosts.toml directories, as ctr --hosts-dir
//
// Keys containerd has that berth does not act on are accepted (and named in a warning when they
// are set to something other than the default); keys nobody knows are warned about by name.
#include <map>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "common/errdefs.h"

namespace berth::cri {

inline constexpr const char* kPluginId = "cri";  // io.containerd.grpc.v1.cri
inline constexpr const char* kNamespace = "k8s.io";

// One entry of containerd.runtimes.<name>.
struct RuntimeConfig {
  std::string runtime_type = "io.containerd.runc.v2";
  std::string runtime_path;  // a shim binary to use instead of resolving runtime_type
  std::vector<std::string> pod_annotations;
  std::vector<std::string> container_annotations;
  bool privileged_without_host_devices = false;
  std::string base_runtime_spec;  // a JSON spec file used as the base of every container's spec
  std::string cni_conf_dir;
  int cni_max_conf_num = 0;
  // `options`, by the Go field names of the runtime's options message (containerd.runc.v1
  // Options for io.containerd.runc.*: SystemdCgroup, BinaryName, Root, ShimCgroup, IoUid, IoGid,
  // NoPivotRoot, NoNewKeyring, CriuPath, CriuImagePath, CriuWorkPath).
  toml::table options;
};

struct Config {
  std::string sandbox_image = "registry.k8s.io/pause:3.6";
  std::string stream_server_address = "127.0.0.1";
  std::string stream_server_port = "0";
  std::string stream_idle_timeout = "4h";
  bool enable_tls_streaming = false;
  std::string tls_cert_file;  // x509_key_pair_streaming
  std::string tls_key_file;
  bool disable_tcp_service = true;
  bool enable_selinux = false;
  int selinux_category_range = 1024;
  int stats_collect_period = 10;
  int max_container_log_line_size = 16384;
  int max_concurrent_downloads = 3;
  bool disable_cgroup = false;
  bool disable_apparmor = false;
  bool restrict_oom_score_adj = false;
  bool disable_proc_mount = false;
  bool device_ownership_from_security_context = false;
  bool ignore_image_defined_volumes = false;
  bool netns_mounts_under_state_dir = false;
  bool enable_unprivileged_ports = false;
  bool enable_unprivileged_icmp = false;
  bool systemd_cgroup = false;
  std::string unset_seccomp_profile;
  bool tolerate_missing_hugetlb_controller = true;
  bool disable_hugetlb_controller = true;

  // [containerd]
  std::string snapshotter = "overlayfs";
  std::string default_runtime_name = "runc";
  bool disable_snapshot_annotations = true;
  bool discard_unpacked_layers = false;
  bool no_pivot = false;
  std::map<std::string, RuntimeConfig> runtimes = {{"runc", RuntimeConfig{}}};

  // [cni]
  std::string cni_bin_dir = "/opt/cni/bin";
  std::string cni_conf_dir = "/etc/cni/net.d";
  int cni_max_conf_num = 1;
  std::string cni_conf_template;
  std::string cni_ip_pref;
  // berth's own key ([cni] cache_dir): libcni's result cache, /var/lib/cni as containerd uses.
  std::string cni_cache_dir = "/var/lib/cni";

  // [registry]
  std::string registry_config_path;

  // Parses the plugin's table over the defaults. InvalidArgument naming the key for a value of
  // the wrong type, an unknown or empty default_runtime_name, a bad stream_idle_timeout or
  // ip_pref. Unknown keys and keys berth ignores go to `warnings` (one line each).
  static Result<Config> FromToml(const toml::table& table, std::vector<std::string>* warnings);
  // The default table body for `berthd config default`.
  static std::string DefaultToml();
};

}  // namespace berth::cri

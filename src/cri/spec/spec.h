#pragma once
// The OCI runtime specs of CRI pod sandboxes and containers, as containerd 1.6.20's CRI plugin
// builds them (pkg/cri/server/sandbox_run_linux.go, container_create_linux.go,
// container_update_resources_linux.go, pkg/cri/opts/spec*.go): pure functions from the CRI
// configs and a few facts about the sandbox and the host to an oci::Spec. No daemon state; the
// only side effects are containerd's own: host paths of bind mounts are created (mkdir -p 0755)
// and the host is read where containerd reads it (device nodes, /proc/self/mountinfo, the
// container's /etc/passwd and /etc/group, seccomp profile files, AppArmor's profile list).
//
// Errors: containerd returns plain errors from spec generation (the kubelet sees gRPC Unknown);
// so do we, with containerd's texts (e.g. `no command specified`), Errc::kUnknown. Failures of
// the host (a missing file, a failed mkdir) keep the class of their errno.
//
// Not here: SELinux labels (berth runs without SELinux: no process/mount labels, relabel
// ignored), a runtime's base_runtime_spec and options (the caller's), loading AppArmor profiles.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"
#include "cri/api/api.pb.h"
#include "oci/seccomp.h"
#include "oci/spec.h"

namespace berth::cri::spec {

// The containerd namespace of every CRI object; default cgroupsPath is /k8s.io/<id>.
inline constexpr std::string_view kNamespace = "k8s.io";

// OCI annotations (pkg/cri/annotations).
inline constexpr std::string_view kContainerType = "io.kubernetes.cri.container-type";
inline constexpr std::string_view kContainerTypeSandbox = "sandbox";
inline constexpr std::string_view kContainerTypeContainer = "container";
inline constexpr std::string_view kSandboxId = "io.kubernetes.cri.sandbox-id";
inline constexpr std::string_view kSandboxNamespace = "io.kubernetes.cri.sandbox-namespace";
inline constexpr std::string_view kSandboxUid = "io.kubernetes.cri.sandbox-uid";
inline constexpr std::string_view kSandboxName = "io.kubernetes.cri.sandbox-name";
inline constexpr std::string_view kSandboxLogDir = "io.kubernetes.cri.sandbox-log-directory";
inline constexpr std::string_view kSandboxCpuPeriod = "io.kubernetes.cri.sandbox-cpu-period";
inline constexpr std::string_view kSandboxCpuQuota = "io.kubernetes.cri.sandbox-cpu-quota";
inline constexpr std::string_view kSandboxCpuShares = "io.kubernetes.cri.sandbox-cpu-shares";
inline constexpr std::string_view kSandboxMemory = "io.kubernetes.cri.sandbox-memory";
inline constexpr std::string_view kContainerName = "io.kubernetes.cri.container-name";
inline constexpr std::string_view kImageName = "io.kubernetes.cri.image-name";

// The sandbox container's oom_score_adj before clamping (defaultSandboxOOMAdj).
inline constexpr int kDefaultSandboxOomScoreAdj = -998;
// The sandbox container's cpu shares (DefaultSandboxCPUshares).
inline constexpr uint64_t kDefaultSandboxCpuShares = 2;
// The AppArmor profile containerd applies by default when the host has AppArmor.
inline constexpr std::string_view kAppArmorDefaultProfile = "cri-containerd.apparmor.d";

// cgroups.Mode(): a v1 hierarchy with a v2 mount at /sys/fs/cgroup/unified (hybrid) is v1.
enum class CgroupMode { kV1, kV2 };

// Facts about this host and daemon that the specs depend on; DetectHost() reads them once, tests
// set them.
struct Host {
  CgroupMode cgroup_mode = CgroupMode::kV1;
  bool seccomp_enabled = true;            // pkg/seccomp.IsEnabled
  bool apparmor_enabled = false;          // pkg/apparmor.HostSupports
  bool swap_controller = false;           // memory.memsw.limit_in_bytes (v1) / memory.swap.max (v2)
  bool hugetlb_controller = false;        // /sys/fs/cgroup/hugetlb (v1) / "hugetlb" controller (v2)
  int oom_score_adj = 0;                  // the daemon's own /proc/self/oom_score_adj
  std::vector<std::string> capabilities;  // the daemon's effective set (pkg/cap.Current)
  std::string hostname;                   // os.Hostname, for containers of pods without a hostname
  oci::SeccompHost seccomp;  // architecture and kernel the default profile is built for
};

// Reads the Host facts of this machine (statfs /sys/fs/cgroup, prctl, /proc/self/...). Errors
// only when /proc/self/status or oom_score_adj cannot be read.
Result<Host> DetectHost();

// The CRI plugin's config switches (containerd's key names, 1.6 defaults), the fields of the
// runtime entry the specs use, and the host facts.
struct Options {
  bool disable_cgroup = false;
  bool disable_apparmor = false;
  bool restrict_oom_score_adj = false;
  bool disable_proc_mount = false;
  std::string unset_seccomp_profile;  // "" = unconfined
  bool tolerate_missing_hugetlb_controller = true;
  bool disable_hugetlb_controller = true;
  bool device_ownership_from_security_context = false;
  bool ignore_image_defined_volumes = false;
  bool enable_unprivileged_ports = false;
  bool enable_unprivileged_icmp = false;
  // Deprecated v1-shim switch; the spec does not change with it: a cgroup_parent ending in
  // ".slice" gives a systemd "slice:prefix:name" path either way (the runtime must then use
  // systemd cgroups, runc option SystemdCgroup).
  bool systemd_cgroup = false;
  // From the runtime entry of the sandbox's handler.
  bool privileged_without_host_devices = false;
  std::vector<std::string> pod_annotations;        // globs of pod annotations copied in
  std::vector<std::string> container_annotations;  // globs of container annotations copied in
  Host host;
};

// getCgroupsPath: "<last element>:cri-containerd:<id>" when the parent's last element ends in
// ".slice" (a.slice/b.slice -> "b.slice:cri-containerd:<id>"), else filepath.Join(parent, id).
std::string CgroupsPath(std::string_view cgroup_parent, std::string_view id);

// Clamps an oom_score_adj as restrictOOMScoreAdj: max(adj, host.oom_score_adj) when
// restrict_oom_score_adj is set, or when the daemon lacks CAP_SYS_RESOURCE (it could not lower
// the score below its own, and runc would fail with "permission denied"); else adj.
int ClampOomScoreAdj(int adj, const Options& opts);

// ---- Sandboxes ----

struct SandboxSpecInput {
  std::string id;
  ::runtime::v1::PodSandboxConfig config;
  oci::ImageConfig image;        // the sandbox image's config (entrypoint/cmd must not be empty)
  std::string netns_path;        // the pinned netns; unused when network is NODE
  std::string resolv_conf_path;  // criRoot/sandboxes/<id>/resolv.conf
  std::string shm_path;          // criState/sandboxes/<id>/shm; host /dev/shm for IPC NODE
  oci::RootFs rootfs;            // the sandbox snapshot, to resolve user names; nullopt: none
};

// The pause container's spec (§4): containerd's default spec in namespace k8s.io (cgroupsPath
// /k8s.io/<id>) without the /run mount, AppArmor, seccomp and rlimits; root "rootfs" readonly;
// env, cwd, args from the image (Unknown `invalid empty entrypoint and cmd in image config` when
// both are empty); hostname; cgroupsPath from cgroup_parent ("" with disable_cgroup), cpu shares
// 2; namespaces by NamespaceMode (network NODE drops network and uts, else joins netns_path; pid
// and ipc NODE drop theirs); /dev/shm and /etc/resolv.conf read-only binds; SELinux-less
// supplemental groups; sysctls (+ the unprivileged port/ICMP ones for pod networks); oomScoreAdj
// -998 clamped (ClampOomScoreAdj); the §2 annotations (+ resource annotations when
// linux.resources is set, + pod annotations matching opts.pod_annotations); then seccomp as
// containers (none if privileged) and the user (run_as_user[:run_as_group], else image User,
// resolved in `rootfs`). Errors: Unknown with containerd's texts (`failed to generate seccomp
// spec opts: invalid profile "x"`, `failed to generate user string: user group "5" is specified
// without user`, ...), file errors of a localhost seccomp profile, user lookup errors.
Result<oci::Spec> SandboxSpec(const SandboxSpecInput& in, const Options& opts);

// ---- Containers ----

struct ContainerSpecInput {
  std::string id;
  std::string sandbox_id;
  uint32_t sandbox_pid = 0;    // the pause process: namespaces /proc/<pid>/ns/{net,ipc,uts,pid}
  uint32_t target_pid = 0;     // the target container's pid, for pid NamespaceMode TARGET
  std::string container_name;  // config.metadata.name
  std::string image_name;      // the image's name as stored (annotation image-name)
  ::runtime::v1::ContainerConfig config;
  ::runtime::v1::PodSandboxConfig sandbox_config;
  oci::ImageConfig image;
  // The sandbox's files (criRoot/sandboxes/<id>/{hostname,hosts,resolv.conf}, criState/.../shm).
  // /etc/hostname is mounted only if hostname_path exists (containerd's upgrade rule).
  std::string hostname_path;
  std::string hosts_path;
  std::string resolv_conf_path;
  std::string shm_path;
  // Image volumes (ImageVolumeMounts), appended to the sandbox file mounts.
  std::vector<::runtime::v1::Mount> volume_mounts;
  oci::RootFs rootfs;  // the container's snapshot, for user names and groups; nullopt: none
};

// The container's spec (§6, every rule in containerd's order). Errors (Unknown unless a file
// error): `no command specified`; `no privileged container allowed in sandbox`; the propagation
// checks `path "<p>" is mounted on "<m>" but it is not a shared mount` / `... not a shared or
// slave mount`; `failed to stat|mkdir|resolve symlink "<p>": ...`; device errors; `huge pages
// limits are specified but hugetlb cgroup controller is missing. ...`; `failed to generate user
// string: user group "<g>" is specified without user`; `failed to generate apparmor spec opts:
// apparmor is not supported` (only when a non-unconfined profile is requested: an unset profile
// on a host without AppArmor is no error); `failed to generate seccomp spec opts: invalid
// profile "<p>"` / `seccomp is not supported`; seccomp profile file errors; user lookup errors;
// InvalidArgument when pid mode TARGET comes without target_pid.
Result<oci::Spec> ContainerSpec(const ContainerSpecInput& in, const Options& opts);

// volumeMounts: one mount per image volume (ImageConfig::volumes) not shadowed by a CRI mount at
// the same (cleaned) destination, host path <cri_root>/containers/<id>/volumes/<64 random hex>,
// selinux_relabel set; none with opts.ignore_image_defined_volumes. The caller creates the
// directories and fills them from the image before starting the container.
std::vector<::runtime::v1::Mount> ImageVolumeMounts(const std::string& cri_root,
                                                    const std::string& id,
                                                    const oci::ImageConfig& image,
                                                    const ::runtime::v1::ContainerConfig& config,
                                                    const Options& opts);

// ---- Resources ----

// UpdateContainerResources' merge (updateOCIResource + WithResources) of `resources` into the
// stored spec (call it only when the request has `linux`: containerd changes nothing without
// it, while an empty message still adds empty "cpu" and "memory" objects): zero fields leave the
// spec's values; memory.swap = limit when no swap is given and the host has a swap controller;
// hugepage limits only without disable_hugetlb_controller (Unknown if the controller is missing and
// not tolerated); unified entries merged. The spec is untouched on error.
Status UpdateResources(oci::Spec& s, const ::runtime::v1::LinuxContainerResources& resources,
                       const Options& opts);

// ContainerStatus.resources.linux from a spec: cpu period/quota/shares, cpusets, memory
// limit/swap, hugepage limits, unified, oom_score_adj (absent fields stay zero).
::runtime::v1::LinuxContainerResources ResourcesFromSpec(const oci::Spec& s);

}  // namespace berth::cri::spec

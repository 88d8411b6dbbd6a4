#pragma once
// OCI runtime spec generation as containerd's oci package does it (oci/spec.go, spec_opts*.go):
// the default Linux spec, then options applied in order. The spec is the runtime-spec JSON
// document itself (nlohmann::json), so whatever a runtime understands passes through untouched.
//
// Field presence follows Go's encoding of specs-go: `omitempty` fields are absent rather than
// empty/false/zero (e.g. process.terminal only when true, linux.maskedPaths absent when
// cleared), so our JSON equals what `ctr oci spec` / a Go client writes for the same options.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/errdefs.h"

namespace berth::oci {

using Spec = nlohmann::json;

// specs.Version of the runtime-spec vendored by containerd 1.6.
inline constexpr std::string_view kSpecVersion = "1.0.2-dev";
// The default PATH when an image config has no Env (oci.defaultUnixEnv).
inline constexpr std::string_view kDefaultPathEnv =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// Any type URL of a whole spec / a process spec / resources (bare, as Go's typeurl registers).
inline constexpr std::string_view kSpecTypeUrl =
    "types.containerd.io/opencontainers/runtime-spec/1/Spec";
inline constexpr std::string_view kProcessTypeUrl =
    "types.containerd.io/opencontainers/runtime-spec/1/Process";
inline constexpr std::string_view kResourcesTypeUrl =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

// populateDefaultUnixSpec: root "rootfs", uid/gid 0, cwd "/", the 14 default capabilities in
// bounding/effective/permitted, RLIMIT_NOFILE 1024, noNewPrivileges, the default mounts, pid ipc
// uts mount network namespaces, masked and read-only /proc and /sys paths, devices deny-all and
// cgroupsPath "/<ns>/<id>" (filepath.Join: "/<ns>" when id is empty).
Spec DefaultSpec(std::string_view ns, std::string_view id);

// The default capability list (oci.defaultUnixCaps), in containerd's order.
std::vector<std::string> DefaultCapabilities();

// ---- Process ----

// replaceOrAppendEnvValues: `overrides` replace same-named entries of `defaults` in place or are
// appended; an override without "=" unsets the variable.
std::vector<std::string> ReplaceOrAppendEnv(const std::vector<std::string>& defaults,
                                            const std::vector<std::string>& overrides);
// WithEnv: merges `env` into process.env (nothing when empty).
void WithEnv(Spec& s, const std::vector<std::string>& env);
// WithEnvFile: every line of the file goes to WithEnv as it is (oci.WithEnvFile: so "KEY"
// without "=" unsets). NotFound/... naming the file if it cannot be read.
Status WithEnvFile(Spec& s, const std::string& path);
// WithProcessArgs: replaces process.args.
void WithProcessArgs(Spec& s, const std::vector<std::string>& args);
// WithProcessCwd.
void WithProcessCwd(Spec& s, std::string_view cwd);
// WithTTY: process.terminal = true and TERM=xterm appended to env.
void WithTty(Spec& s);
// WithNewPrivileges: noNewPrivileges off (ctr --allow-new-privs).
void WithNewPrivileges(Spec& s);
// Capabilities (names with the CAP_ prefix) in bounding/effective/permitted.
void WithCapabilities(Spec& s, const std::vector<std::string>& caps);
void WithAddedCapabilities(Spec& s, const std::vector<std::string>& caps);
void WithDroppedCapabilities(Spec& s, const std::vector<std::string>& caps);
// The effective capabilities of this process by name (pkg/cap.Current: CapEff of
// /proc/self/status mapped to the known names, in number order).
Result<std::vector<std::string>> CurrentCapabilities();

// ---- Root, mounts, namespaces ----

void WithRootFsPath(Spec& s, std::string_view path);
void WithRootFsReadonly(Spec& s);
// A mount as the runtime spec writes it ({"destination","type","source","options"}).
struct SpecMount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};
nlohmann::json MountJson(const SpecMount& m);
// WithMounts: appends.
void WithMounts(Spec& s, const std::vector<SpecMount>& mounts);
// ctr's --mount flag: CSV of key=value with keys type, source|src, destination|dst and options
// (":"-separated). InvalidArgument "invalid mount specification: expected key=val" / "mount
// option \"k\" not supported" as ctr.
Result<SpecMount> ParseMountFlag(std::string_view flag);
// WithHostNamespace: removes the namespace of `type` (e.g. "network") so the host's is used.
void WithHostNamespace(Spec& s, std::string_view type);
// WithLinuxNamespace: sets (replaces or appends) the namespace of `type`, joining `path`.
void WithLinuxNamespace(Spec& s, std::string_view type, std::string_view path);
// WithHostHostsFile / WithHostResolvconf: read-only rbind of the host's /etc/hosts and
// /etc/resolv.conf (ctr --net-host adds both plus HOSTNAME=<host name>).
void WithHostHostsFile(Spec& s);
void WithHostResolvconf(Spec& s);
// Everything ctr --net-host does: host network namespace, the two files, HOSTNAME env.
Status WithHostNetwork(Spec& s);
// WithCgroup: linux.cgroupsPath.
void WithCgroup(Spec& s, std::string_view path);
// WithAnnotations: adds/replaces annotations.
void WithAnnotations(Spec& s, const std::map<std::string, std::string>& annotations);

// ---- Devices and privileges ----

// WithDefaultUnixDevices: allows null, random, full, tty, zero, urandom, console, pts (136:*),
// ptmx in the devices cgroup (appended after the deny-all entry).
void WithDefaultUnixDevices(Spec& s);
// WithAllDevicesAllowed: devices cgroup = [{allow: true, access: rwm}].
void WithAllDevicesAllowed(Spec& s);
// WithHostDevices: every device node under /dev (as oci.HostDevices: skips pts, shm, fd,
// mqueue, .lxc, .lxd-mounts, .udev, console and FIFOs) into linux.devices.
Status WithHostDevices(Spec& s);
// oci.WithDevices: the device node at `device_path` (symlinks not followed), or every device node
// below it when it is a directory (skipping what WithHostDevices skips), appended to linux.devices
// under `container_path` (the device's own path when empty; for a directory, container_path/<name>
// per entry) and allowed in the devices cgroup with `permissions`. NotFound ("error stating device
// path ...") when the path does not exist; InvalidArgument "not a device node" for a single path
// that is neither a block, character nor FIFO device.
Status WithDevices(Spec& s, const std::string& device_path, const std::string& container_path,
                   const std::string& permissions);
// WithPrivileged: all current capabilities, no masked or read-only paths, writable sysfs and
// cgroupfs mounts, no SELinux label, AppArmor profile or seccomp.
Status WithPrivileged(Spec& s);
// The same with the capability list given (e.g. the daemon's, read once at start-up).
void WithPrivileged(Spec& s, const std::vector<std::string>& current_caps);
// ctr --privileged: WithPrivileged + WithAllDevicesAllowed + WithHostDevices.
Status WithPrivilegedAll(Spec& s);

// ---- Resources ----

// WithMemoryLimit: linux.resources.memory.limit (bytes).
void WithMemoryLimit(Spec& s, uint64_t limit);
// WithCPUCFS: linux.resources.cpu.quota and period.
void WithCpuCfs(Spec& s, int64_t quota, uint64_t period);
// ctr --cpus: quota = cpus * 100000, period 100000 (nothing when cpus <= 0).
void WithCpus(Spec& s, double cpus);
// WithCPUShares.
void WithCpuShares(Spec& s, uint64_t shares);

// ---- Users ----

// A user or group record from the container's /etc/passwd or /etc/group.
struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
};
struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};
// Parsers for passwd(5)/group(5) text as runc's libcontainer/user (malformed lines skipped).
std::vector<PasswdEntry> ParsePasswd(std::string_view text);
std::vector<GroupEntry> ParseGroup(std::string_view text);

// The rootfs of the container as the user options see it: a directory holding it (a temp mount of
// the snapshot, or --rootfs), or nullopt when there is none (then names cannot be resolved).
// Files are read with openat2(RESOLVE_IN_ROOT), so symlinks in the image cannot leave it.
using RootFs = std::optional<std::string>;
// Reads `path` (absolute inside the container) below `root`; NotFound if it does not exist.
Result<std::string> ReadInRoot(const std::string& root, std::string_view path);

// WithUser: "user", "uid", "user:group", "uid:gid", "uid:group", "user:gid" as the OCI image
// spec defines (containerd's oci.WithUser): a numeric uid takes uid/gid from /etc/passwd if
// listed (else gid 0); a name must exist in /etc/passwd (NotFound "no users found"); a group
// name must exist in /etc/group. additionalGids is reset, then holds the primary gid.
// InvalidArgument "invalid USER value" for more than one ":".
Status WithUser(Spec& s, std::string_view user, const RootFs& root);
// WithAdditionalGIDs: the groups of /etc/group listing the user (by name or uid) as a member,
// plus the primary gid first (ensureAdditionalGids). Missing files are fine.
Status WithAdditionalGids(Spec& s, std::string_view user, const RootFs& root);

// ---- Image config ----

// The "config" object of an OCI/Docker image config blob (the parts a spec uses).
struct ImageConfig {
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::string stop_signal;
  std::map<std::string, std::string> labels;
  std::vector<std::string> volumes;  // the keys of config.Volumes, sorted
};
// Parses an image config blob (application/vnd.oci.image.config.v1+json or Docker's);
// InvalidArgument naming what is malformed.
Result<ImageConfig> ParseImageConfig(std::string_view blob);
// WithImageConfigArgs: env = image env (or the default PATH) overridden by the spec's env; args =
// entrypoint + (args if given, else cmd); cwd = workdir or "/"; user from the config (then its
// additional gids), else the additional gids of root.
Status WithImageConfig(Spec& s, const ImageConfig& config, const RootFs& root,
                       const std::vector<std::string>& args = {});

}  // namespace berth::oci

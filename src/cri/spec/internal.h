#pragma once
// Helpers shared by the sandbox and container spec files (not part of the cri/spec API).
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cri/spec/spec.h"

namespace berth::cri::spec::internal {

using json = nlohmann::json;

// The object at `key` of `parent`, created empty if missing (Go's setLinux/setProcess/...).
json& Object(json& parent, const char* key);
inline json& Process(oci::Spec& s) { return Object(s, "process"); }
inline json& Linux(oci::Spec& s) { return Object(s, "linux"); }
inline json& Resources(oci::Spec& s) { return Object(Linux(s), "resources"); }

// strings.Split.
std::vector<std::string> Split(std::string_view text, char sep);
// Go's filepath.Clean / path.Base for slash paths.
std::string CleanPath(std::string_view path);
std::string BaseName(std::string_view path);

// Spec options containerd's CRI adds (pkg/cri/opts).
void WithoutRunMount(oci::Spec& s);
void WithoutDefaultSecuritySettings(oci::Spec& s);  // no apparmor, seccomp, rlimits
void WithAnnotation(oci::Spec& s, std::string_view key, std::string_view value);
void WithSysctls(oci::Spec& s, const std::map<std::string, std::string>& sysctls);
// mergeGids of the additional gids and `groups`: sorted, unique (absent when empty).
void WithSupplementalGroups(oci::Spec& s, const std::vector<int64_t>& groups);
// customopts.WithAdditionalGIDs: oci.WithAdditionalGIDs merged with the gids already set.
Status WithMergedAdditionalGids(oci::Spec& s, std::string_view user, const oci::RootFs& rootfs);
void WithOomScoreAdj(oci::Spec& s, int adj);

// getPassthroughAnnotations: the annotations whose key matches one of the globs (Go's
// filepath.Match: '*' does not cross '/').
std::map<std::string, std::string> PassthroughAnnotations(
    const google::protobuf::Map<std::string, std::string>& annotations,
    const std::vector<std::string>& globs);

// generateUserString: "" (none), "<name|uid>" or "<name|uid>:<gid>"; Unknown `user group "<g>"
// is specified without user` for a group alone.
Result<std::string> UserString(std::string_view username, const ::runtime::v1::Int64Value* uid,
                               const ::runtime::v1::Int64Value* gid);

// The profile a security context asks for: the SecurityProfile message when set, else the
// deprecated path string, else (seccomp only) unset_seccomp_profile; nullopt when none. Unknown
// `invalid profile "<p>"` for a string that is none of runtime/default, docker/default,
// unconfined, localhost/<path>.
Result<std::optional<::runtime::v1::SecurityProfile>> ChooseProfile(
    const ::runtime::v1::SecurityProfile* message, const std::string& path,
    const std::string& unset_profile);

// generateSeccompSpecOpts + applying it: nothing when privileged; without kernel support an
// error unless unconfined/none; the default profile (built from the spec's bounding set as it is
// now), a localhost file, or nothing. `profile` errors come wrapped in "failed to generate
// seccomp spec opts: "; file errors as oci::WithSeccompProfileFile returns them.
Status ApplySeccomp(oci::Spec& s, const std::optional<::runtime::v1::SecurityProfile>& profile,
                    bool privileged, const Options& opts);

// generateApparmorSpecOpts + applying it (process.apparmorProfile).
Status ApplyAppArmor(oci::Spec& s, const std::optional<::runtime::v1::SecurityProfile>& profile,
                     bool privileged, const Options& opts);

// customopts.WithResources (zero = unset; see UpdateResources).
Status WithResources(oci::Spec& s, const ::runtime::v1::LinuxContainerResources& res,
                     const Options& opts);

// ---- Mounts (container_mounts.cc) ----

// A line of /proc/self/mountinfo: the mount point (octal escapes decoded) and its optional
// fields ("shared:1 master:2"), joined by spaces.
struct MountInfo {
  std::string mountpoint;
  std::string optional;
};
// mount.Lookup: the entry of `mountinfo` (the file's text) with the longest mount point that is a
// string prefix of the cleaned `dir`. Unknown `failed to find the mount info for "<dir>"`.
Result<MountInfo> LookupMount(std::string_view dir, std::string_view mountinfo);

// pkg/os ResolveSymbolicLink: `path` itself when it is not a symlink, else the fully resolved
// path. Errno errors (lstat/realpath) naming the path.
Result<std::string> ResolveSymbolicLink(const std::string& path);

// containerMounts: /etc/hostname (if the sandbox has the file), /etc/hosts, /etc/resolv.conf,
// /dev/shm, each unless a CRI mount has that destination.
std::vector<::runtime::v1::Mount> SandboxFileMounts(const ContainerSpecInput& in);

// customopts.WithMounts: the cgroup mount, defaults minus those shadowed, then the CRI and extra
// mounts sorted by depth, with host paths created and propagation checked.
Status WithCriMounts(oci::Spec& s,
                     const google::protobuf::RepeatedPtrField<::runtime::v1::Mount>& cri,
                     const std::vector<::runtime::v1::Mount>& extra);

// The error class containerd's plain errors reach the kubelet with.
inline Error Plain(std::string what) { return {Errc::kUnknown, std::move(what)}; }

}  // namespace berth::cri::spec::internal

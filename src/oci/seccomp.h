#pragma once
// Seccomp for OCI specs as containerd 1.6.20 does it (contrib/seccomp, pkg/seccomp): the default
// profile that containerd builds at container-creation time, custom profiles from host files, and
// the kernel support probe. The profile is the runtime-spec `linux.seccomp` object as JSON, with
// Go's field presence: `defaultErrnoRet`, `flags`, `listenerPath`, `listenerMetadata` never
// appear; `architectures`, `args`, `errnoRet` and `valueTwo` only when non-empty / non-zero.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/errdefs.h"
#include "oci/spec.h"

namespace berth::oci {

// What the default profile depends on besides the spec: the Go architecture name containerd was
// built for (runtime.GOARCH: "amd64", "arm64", "386", "s390x", "ppc64le", "riscv64", ...) and the
// kernel release (uname -r; only "<major>.<minor>" is read).
struct SeccompHost {
  std::string arch;
  std::string kernel_release;
};

// This build's architecture (as the GOARCH name) and the running kernel's release.
SeccompHost CurrentSeccompHost();

// containerd's DefaultProfile: defaultAction SCMP_ACT_ERRNO (EPERM, left implicit), the
// architectures of `host.arch`, then the rules in containerd's order: the 349-name base allow
// list, five personality rules, ptrace when the kernel is >= 4.8 (left out when the release does
// not parse as "%d.%d"), the architecture's rule, one rule per capability of
// process.capabilities.bounding in that list's order (duplicates kept), and, without
// CAP_SYS_ADMIN in the bounding set, the masked clone rule and clone3 -> ENOSYS. A spec without
// capabilities counts as an empty bounding set. Never fails.
nlohmann::json DefaultSeccompProfile(const Spec& s, const SeccompHost& host);
// The same for this host (CurrentSeccompHost()).
nlohmann::json DefaultSeccompProfile(const Spec& s);

// seccomp.WithDefaultProfile: linux.seccomp = DefaultSeccompProfile(s) for this host. Must follow
// the capability options: it reads the bounding set as it is now.
void WithDefaultSeccomp(Spec& s);

// seccomp.WithProfile: linux.seccomp = the OCI LinuxSeccomp object read from the host file
// `path`, decoded as Go decodes it into specs.LinuxSeccomp (keys matched case-insensitively,
// unknown keys such as Docker's archMap/includes dropped, empty optional fields left out).
// Errors name the file as containerd's text does: `cannot load seccomp profile "<path>": ...`
// (class from errno, e.g. NotFound) and `decoding seccomp profile failed "<path>": ...`
// (InvalidArgument); linux.seccomp is then an empty profile, as Go leaves it.
Status WithSeccompProfileFile(Spec& s, const std::string& path);

// Decodes a LinuxSeccomp JSON document as WithSeccompProfileFile does (without the file).
// InvalidArgument saying what is malformed.
Result<nlohmann::json> DecodeSeccompProfile(std::string_view text);

// oci.WithSeccompUnconfined: no linux.seccomp.
void WithSeccompUnconfined(Spec& s);

// pkg/seccomp.IsEnabled: whether the kernel has seccomp filter support (prctl(PR_SET_SECCOMP,
// SECCOMP_MODE_FILTER, NULL) fails with something other than EINVAL; no filter is installed).
bool SeccompSupported();

}  // namespace berth::oci

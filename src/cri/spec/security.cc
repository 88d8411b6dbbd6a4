// Users and security profiles of CRI security contexts (pkg/cri/server/container_create_linux.go:
// generateUserString, generateSecurityProfile, generateSeccompSpecOpts,
// generateApparmorSpecOpts, appArmorProfileExists).
#include <fmt/format.h>

#include <sstream>

#include "common/fs.h"
#include "cri/spec/internal.h"

namespace berth::cri::spec::internal {
namespace {

using ::runtime::v1::SecurityProfile;

constexpr std::string_view kLocalhostPrefix = "localhost/";
constexpr std::string_view kAppArmorProfiles = "/sys/kernel/security/apparmor/profiles";

// generateSecurityProfile.
Result<SecurityProfile> ParseProfile(const std::string& text) {
  SecurityProfile p;
  if (text == "runtime/default" || text == "docker/default" || text.empty()) {
    p.set_profile_type(SecurityProfile::RuntimeDefault);
  } else if (text == "unconfined") {
    p.set_profile_type(SecurityProfile::Unconfined);
  } else if (text.starts_with(kLocalhostPrefix)) {
    p.set_profile_type(SecurityProfile::Localhost);
    p.set_localhost_ref(text.substr(kLocalhostPrefix.size()));
  } else {
    return Plain(fmt::format("invalid profile {:?}", text));
  }
  return p;
}

std::string TrimLocalhost(const std::string& ref) {
  return ref.starts_with(kLocalhostPrefix) ? ref.substr(kLocalhostPrefix.size()) : ref;
}

// appArmorProfileExists: a line of the kernel's profile list starts with "<name> (".
Result<bool> AppArmorProfileExists(const std::string& name) {
  if (name.empty()) return Plain("nil apparmor profile is not supported");
  BERTH_ASSIGN_OR_RETURN(std::string list, fs::ReadFile(std::string(kAppArmorProfiles)));
  std::istringstream in(list);
  for (std::string line; std::getline(in, line);) {
    if (in.eof()) break;  // Go's ReadString: a last line without '\n' is not looked at
    if (line.starts_with(name + " (")) return true;
  }
  return false;
}

}  // namespace

Result<std::string> UserString(std::string_view username, const ::runtime::v1::Int64Value* uid,
                               const ::runtime::v1::Int64Value* gid) {
  std::string user;
  std::string group;
  if (uid != nullptr) user = std::to_string(uid->value());
  if (!username.empty()) user = username;
  if (gid != nullptr) group = std::to_string(gid->value());
  if (user.empty()) {
    if (!group.empty()) {
      return Plain(fmt::format("user group {:?} is specified without user", group));
    }
    return std::string();
  }
  if (!group.empty()) user += ":" + group;
  return user;
}

Result<std::optional<SecurityProfile>> ChooseProfile(const SecurityProfile* message,
                                                     const std::string& path,
                                                     const std::string& unset_profile) {
  if (message != nullptr) return std::optional<SecurityProfile>(*message);
  const std::string& text = !path.empty() ? path : unset_profile;
  if (text.empty()) return std::optional<SecurityProfile>();
  BERTH_ASSIGN_OR_RETURN(SecurityProfile p, ParseProfile(text));
  return std::optional<SecurityProfile>(std::move(p));
}

Status ApplySeccomp(oci::Spec& s, const std::optional<SecurityProfile>& profile, bool privileged,
                    const Options& opts) {
  constexpr std::string_view kWhere = "failed to generate seccomp spec opts: ";
  if (privileged) return Ok();  // no profile for privileged containers, whatever was asked
  if (!opts.host.seccomp_enabled) {
    if (profile && profile->profile_type() != SecurityProfile::Unconfined) {
      return Plain(std::string(kWhere) + "seccomp is not supported");
    }
    return Ok();
  }
  if (!profile) return Ok();
  if (profile->profile_type() != SecurityProfile::Localhost && !profile->localhost_ref().empty()) {
    return Plain(
        std::string(kWhere) +
        "seccomp config invalid LocalhostRef must only be set if ProfileType is Localhost");
  }
  switch (profile->profile_type()) {
    case SecurityProfile::Unconfined:
      return Ok();
    case SecurityProfile::RuntimeDefault:
      // Built from the bounding set as it is now: after the capability options.
      Linux(s)["seccomp"] = oci::DefaultSeccompProfile(s, opts.host.seccomp);
      return Ok();
    case SecurityProfile::Localhost:
      return oci::WithSeccompProfileFile(s, TrimLocalhost(profile->localhost_ref()));
    default:
      return Plain(std::string(kWhere) + "seccomp unknown ProfileType");
  }
}

Status ApplyAppArmor(oci::Spec& s, const std::optional<SecurityProfile>& requested, bool privileged,
                     const Options& opts) {
  constexpr std::string_view kWhere = "failed to generate apparmor spec opts: ";
  const bool enabled = opts.host.apparmor_enabled && !opts.disable_apparmor;
  if (!enabled) {
    // Loud only when a profile is actually asked for: unset is fine without AppArmor.
    if (requested && requested->profile_type() != SecurityProfile::Unconfined) {
      return Plain(std::string(kWhere) + "apparmor is not supported");
    }
    return Ok();
  }
  SecurityProfile profile;  // unset: the runtime default (kubernetes#51746)
  if (requested) profile = *requested;
  if (profile.profile_type() != SecurityProfile::Localhost && !profile.localhost_ref().empty()) {
    return Plain(std::string(kWhere) +
                 "apparmor config invalid LocalhostRef must only be set if ProfileType is "
                 "Localhost");
  }
  switch (profile.profile_type()) {
    case SecurityProfile::Unconfined:
      return Ok();
    case SecurityProfile::RuntimeDefault:
      if (privileged) return Ok();
      // containerd also loads its default profile into the kernel when it is missing; berth
      // leaves that to whoever installs the profile.
      Process(s)["apparmorProfile"] = kAppArmorDefaultProfile;
      return Ok();
    case SecurityProfile::Localhost: {
      std::string name = TrimLocalhost(profile.localhost_ref());
      auto exists = AppArmorProfileExists(name);
      if (!exists) {  // wrapped twice, as containerd does (inner and outer function)
        return Error(exists.error().Code(),
                     fmt::format("{}{}{}", kWhere, kWhere, exists.error().What()));
      }
      if (!*exists) return Plain(fmt::format("{}apparmor profile not found {}", kWhere, name));
      Process(s)["apparmorProfile"] = name;
      return Ok();
    }
    default:
      return Plain(std::string(kWhere) + "apparmor unknown ProfileType");
  }
}

}  // namespace berth::cri::spec::internal

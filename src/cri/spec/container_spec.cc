// A CRI container's spec: pkg/cri/server/container_create_linux.go (containerSpec, then
// containerSpecOpts applied on top as containerd.WithSpec does), pkg/cri/opts.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "cri/spec/internal.h"

namespace berth::cri::spec {
namespace {

using internal::json;
using ::runtime::v1::NamespaceMode;

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

// customopts.WithProcessArgs: `command` replaces the image's entrypoint and cmd; without it the
// image's entrypoint (unless it is [""], docker's reset) and, without `args`, its cmd.
Status WithProcessArgs(oci::Spec& s, const ::runtime::v1::ContainerConfig& config,
                       const oci::ImageConfig& image) {
  std::vector<std::string> command(config.command().begin(), config.command().end());
  std::vector<std::string> args(config.args().begin(), config.args().end());
  if (command.empty()) {
    if (args.empty()) args = image.cmd;
    if (!(image.entrypoint.size() == 1 && image.entrypoint[0].empty())) command = image.entrypoint;
  }
  if (command.empty() && args.empty()) return internal::Plain("no command specified");
  command.insert(command.end(), args.begin(), args.end());
  oci::WithProcessArgs(s, command);
  return Ok();
}

// customopts.WithDevices: each CRI device (its host path's symlink resolved) with its cgroup
// rule; owned by run_as_user/run_as_group with device_ownership_from_security_context.
Status WithCriDevices(oci::Spec& s, const ::runtime::v1::ContainerConfig& config,
                      const Options& opts) {
  json& linux = internal::Linux(s);
  size_t before = linux.contains("devices") ? linux["devices"].size() : 0;
  for (const auto& d : config.devices()) {
    BERTH_ASSIGN_OR_RETURN(std::string path, internal::ResolveSymbolicLink(d.host_path()));
    BERTH_TRY(oci::WithDevices(s, path, d.container_path(), d.permissions()));
  }
  if (!opts.device_ownership_from_security_context || !linux.contains("devices")) return Ok();
  const auto& security = config.linux().security_context();
  auto uid = static_cast<uint32_t>(security.has_run_as_user() ? security.run_as_user().value() : 0);
  auto gid =
      static_cast<uint32_t>(security.has_run_as_group() ? security.run_as_group().value() : 0);
  for (size_t i = before; i < linux["devices"].size(); ++i) {
    if (uid != 0) linux["devices"][i]["uid"] = uid;
    if (gid != 0) linux["devices"][i]["gid"] = gid;
  }
  return Ok();
}

// customopts.WithCapabilities: "ALL" (any case) in add = the daemon's capabilities, in drop =
// none; then the other names, upper-cased with "CAP_" prepended, added and dropped.
void WithCriCapabilities(oci::Spec& s, const ::runtime::v1::LinuxContainerSecurityContext& security,
                         const Options& opts) {
  if (!security.has_capabilities()) return;
  const auto& caps = security.capabilities();
  auto is_all = [](const std::string& c) { return Upper(c) == "ALL"; };
  if (std::any_of(caps.add_capabilities().begin(), caps.add_capabilities().end(), is_all)) {
    oci::WithCapabilities(s, opts.host.capabilities);
  }
  if (std::any_of(caps.drop_capabilities().begin(), caps.drop_capabilities().end(), is_all)) {
    oci::WithCapabilities(s, {});
  }
  std::vector<std::string> add;
  for (const auto& c : caps.add_capabilities()) {
    if (!is_all(c)) add.push_back("CAP_" + Upper(c));
  }
  // Go touches the lists only per named capability: nothing to add leaves absent lists absent.
  if (!add.empty()) oci::WithAddedCapabilities(s, add);
  std::vector<std::string> drop;
  for (const auto& c : caps.drop_capabilities()) {
    if (!is_all(c)) drop.push_back("CAP_" + Upper(c));
  }
  if (!drop.empty()) oci::WithDroppedCapabilities(s, drop);
}

}  // namespace

Result<oci::Spec> ContainerSpec(const ContainerSpecInput& in, const Options& opts) {
  const auto& config = in.config;
  const auto& sandbox = in.sandbox_config;
  const auto& security = config.linux().security_context();
  const auto& ns_options = security.namespace_options();

  // Refused while containerd collects the options, before any is applied.
  if (security.privileged() && !sandbox.linux().security_context().privileged()) {
    return internal::Plain("no privileged container allowed in sandbox");
  }
  if (ns_options.pid() == NamespaceMode::TARGET && in.target_pid == 0) {
    return InvalidArgument(fmt::format("target container {:?} of container {} has no pid",
                                       ns_options.target_id(), in.id));
  }

  // ---- containerSpec ----
  oci::Spec s = oci::DefaultSpec(kNamespace, in.id);
  internal::WithoutRunMount(s);
  internal::WithoutDefaultSecuritySettings(s);
  oci::WithRootFsPath(s, "rootfs");
  BERTH_TRY(WithProcessArgs(s, config, in.image));
  internal::Process(s)["env"] = oci::ReplaceOrAppendEnv(
      s["process"].value("env", std::vector<std::string>{}), {std::string(oci::kDefaultPathEnv)});
  oci::WithNewPrivileges(s);  // set from the security context below
  if (!config.working_dir().empty()) {
    oci::WithProcessCwd(s, config.working_dir());
  } else if (!in.image.working_dir.empty()) {
    oci::WithProcessCwd(s, in.image.working_dir);
  }
  if (config.tty()) oci::WithTty(s);
  const std::string& hostname =
      sandbox.hostname().empty() ? opts.host.hostname : sandbox.hostname();
  oci::WithEnv(s, {"HOSTNAME=" + hostname});
  // Image env first, so that the container's envs override it.
  std::vector<std::string> env = in.image.env;
  for (const auto& kv : config.envs()) env.push_back(kv.key() + "=" + kv.value());
  oci::WithEnv(s, env);

  std::vector<::runtime::v1::Mount> extra = internal::SandboxFileMounts(in);
  extra.insert(extra.end(), in.volume_mounts.begin(), in.volume_mounts.end());
  BERTH_TRY(internal::WithCriMounts(s, config.mounts(), extra));

  if (!opts.disable_proc_mount) {
    // The defaults are dropped (containerd#5029); the kubelet sends its own.
    json& linux = internal::Linux(s);
    linux.erase("maskedPaths");
    linux.erase("readonlyPaths");
    if (!security.masked_paths().empty()) {
      linux["maskedPaths"] =
          std::vector<std::string>(security.masked_paths().begin(), security.masked_paths().end());
    }
    if (!security.readonly_paths().empty()) {
      linux["readonlyPaths"] = std::vector<std::string>(security.readonly_paths().begin(),
                                                        security.readonly_paths().end());
    }
  }

  BERTH_TRY(WithCriDevices(s, config, opts));
  WithCriCapabilities(s, security, opts);

  if (security.privileged()) {
    oci::WithPrivileged(s, opts.host.capabilities);
    if (!opts.privileged_without_host_devices) {
      BERTH_TRY(oci::WithHostDevices(s));
      oci::WithAllDevicesAllowed(s);
    }
  }

  // Ambient capabilities are cleared: non-root + capabilities is not defined in Kubernetes
  // (kubernetes#56374), docker's behaviour.
  internal::Object(internal::Process(s), "capabilities").erase("ambient");

  if (security.no_new_privs()) internal::Process(s)["noNewPrivileges"] = true;
  if (security.readonly_rootfs()) oci::WithRootFsReadonly(s);

  if (opts.disable_cgroup) {
    internal::Linux(s).erase("cgroupsPath");
  } else {
    if (config.linux().has_resources()) {
      BERTH_TRY(internal::WithResources(s, config.linux().resources(), opts));
    }
    if (!sandbox.linux().cgroup_parent().empty()) {
      oci::WithCgroup(s, CgroupsPath(sandbox.linux().cgroup_parent(), in.id));
    }
  }

  for (const auto& [k, v] :
       internal::PassthroughAnnotations(sandbox.annotations(), opts.pod_annotations)) {
    internal::WithAnnotation(s, k, v);
  }
  for (const auto& [k, v] :
       internal::PassthroughAnnotations(config.annotations(), opts.container_annotations)) {
    internal::WithAnnotation(s, k, v);
  }

  if (config.linux().has_resources()) {
    internal::WithOomScoreAdj(
        s, ClampOomScoreAdj(static_cast<int>(config.linux().resources().oom_score_adj()), opts));
  }

  // The pod's namespaces: network, ipc and uts always; pid unless the container has its own.
  const std::string proc = fmt::format("/proc/{}/ns/", in.sandbox_pid);
  oci::WithLinuxNamespace(s, "network", proc + "net");
  oci::WithLinuxNamespace(s, "ipc", proc + "ipc");
  oci::WithLinuxNamespace(s, "uts", proc + "uts");
  if (ns_options.pid() != NamespaceMode::CONTAINER) {
    uint32_t pid = ns_options.pid() == NamespaceMode::TARGET ? in.target_pid : in.sandbox_pid;
    oci::WithLinuxNamespace(s, "pid", fmt::format("/proc/{}/ns/pid", pid));
  }

  internal::WithAnnotation(s, kContainerType, kContainerTypeContainer);
  internal::WithAnnotation(s, kSandboxId, in.sandbox_id);
  internal::WithAnnotation(s, kSandboxNamespace, sandbox.metadata().namespace_());
  internal::WithAnnotation(s, kSandboxUid, sandbox.metadata().uid());
  internal::WithAnnotation(s, kSandboxName, sandbox.metadata().name());
  internal::WithAnnotation(s, kContainerName, in.container_name);
  internal::WithAnnotation(s, kImageName, in.image_name);

  // A cgroup namespace hides the host's cgroup tree, on v2 only and not for privileged
  // containers (compatibility; containers/libpod#4363).
  if (opts.host.cgroup_mode == CgroupMode::kV2 && !security.privileged()) {
    oci::WithLinuxNamespace(s, "cgroup", "");
  }

  // ---- containerSpecOpts, applied on the spec built so far ----
  auto user = internal::UserString(
      security.run_as_username(), security.has_run_as_user() ? &security.run_as_user() : nullptr,
      security.has_run_as_group() ? &security.run_as_group() : nullptr);
  if (!user) return internal::Plain("failed to generate user string: " + user.error().What());
  auto apparmor = internal::ChooseProfile(security.has_apparmor() ? &security.apparmor() : nullptr,
                                          security.apparmor_profile(), "");
  if (!apparmor) {
    return internal::Plain("failed to generate apparmor spec opts: " + apparmor.error().What());
  }
  auto seccomp =
      internal::ChooseProfile(security.has_seccomp() ? &security.seccomp() : nullptr,
                              security.seccomp_profile_path(), opts.unset_seccomp_profile);
  if (!seccomp) {
    return internal::Plain("failed to generate seccomp spec opts: " + seccomp.error().What());
  }

  // The user, resolved in the container's rootfs: run_as_username > run_as_user, ":group"
  // appended; else the image's USER.
  std::string userstr = user->empty() ? in.image.user : *user;
  if (!userstr.empty()) BERTH_TRY(oci::WithUser(s, userstr, in.rootfs));
  // Groups of the user from /etc/group (the user as above, else the image's user without its
  // group, else root), merged sorted with the primary gid and supplemental_groups (the fix of
  // CVE-2023-25173, containerd 1.6.18).
  std::string group_user = "0";
  if (!security.run_as_username().empty()) {
    group_user = security.run_as_username();
  } else if (security.has_run_as_user()) {
    group_user = std::to_string(security.run_as_user().value());
  } else if (!in.image.user.empty()) {
    group_user = in.image.user.substr(0, in.image.user.find(':'));
  }
  BERTH_TRY(internal::WithMergedAdditionalGids(s, group_user, in.rootfs));
  internal::WithSupplementalGroups(
      s, {security.supplemental_groups().begin(), security.supplemental_groups().end()});

  BERTH_TRY(internal::ApplyAppArmor(s, *apparmor, security.privileged(), opts));
  // After the capability options: the default profile reads the final bounding set.
  BERTH_TRY(internal::ApplySeccomp(s, *seccomp, security.privileged(), opts));
  return s;
}

}  // namespace berth::cri::spec

// The pod sandbox (pause) container's spec: pkg/cri/server/sandbox_run_linux.go
// (sandboxContainerSpec, then sandboxContainerSpecOpts applied on top as containerd.WithSpec
// does).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cri/spec/internal.h"

namespace berth::cri::spec {
namespace {

using internal::json;
using ::runtime::v1::NamespaceMode;

// Go's %+v of the image config fields the sandbox uses.
std::string DescribeImageConfig(const oci::ImageConfig& c) {
  return fmt::format("{{User:{} Env:[{}] Entrypoint:[{}] Cmd:[{}] WorkingDir:{} StopSignal:{}}}",
                     c.user, fmt::join(c.env, " "), fmt::join(c.entrypoint, " "),
                     fmt::join(c.cmd, " "), c.working_dir, c.stop_signal);
}

}  // namespace

Result<oci::Spec> SandboxSpec(const SandboxSpecInput& in, const Options& opts) {
  const auto& config = in.config;
  const auto& linux_config = config.linux();
  const auto& security = linux_config.security_context();
  const auto& ns_options = security.namespace_options();

  oci::Spec s = oci::DefaultSpec(kNamespace, in.id);
  internal::WithoutRunMount(s);
  internal::WithoutDefaultSecuritySettings(s);
  oci::WithRootFsPath(s, "rootfs");
  oci::WithEnv(s, in.image.env);
  oci::WithRootFsReadonly(s);
  if (!config.hostname().empty()) s["hostname"] = config.hostname();  // omitempty
  if (!in.image.working_dir.empty()) oci::WithProcessCwd(s, in.image.working_dir);
  if (in.image.entrypoint.empty() && in.image.cmd.empty()) {
    // The pause image must have an entrypoint or a cmd.
    return internal::Plain(fmt::format("invalid empty entrypoint and cmd in image config {}",
                                       DescribeImageConfig(in.image)));
  }
  std::vector<std::string> args = in.image.entrypoint;
  args.insert(args.end(), in.image.cmd.begin(), in.image.cmd.end());
  oci::WithProcessArgs(s, args);

  // Cgroups: none at all, the parent's, or the default /k8s.io/<id>.
  if (opts.disable_cgroup) {
    internal::Linux(s).erase("cgroupsPath");  // "" is omitted
  } else if (!linux_config.cgroup_parent().empty()) {
    oci::WithCgroup(s, CgroupsPath(linux_config.cgroup_parent(), in.id));
  }

  // Namespaces: the host's where asked for; the pod's own network namespace otherwise.
  if (ns_options.network() == NamespaceMode::NODE) {
    oci::WithHostNamespace(s, "network");
    oci::WithHostNamespace(s, "uts");
  } else {
    oci::WithLinuxNamespace(s, "network", in.netns_path);
  }
  if (ns_options.pid() == NamespaceMode::NODE) oci::WithHostNamespace(s, "pid");
  if (ns_options.ipc() == NamespaceMode::NODE) oci::WithHostNamespace(s, "ipc");

  const std::string shm = ns_options.ipc() == NamespaceMode::NODE ? "/dev/shm" : in.shm_path;
  oci::WithMounts(s, {{"/dev/shm", "bind", shm, {"rbind", "ro"}},
                      // For VM runtimes (katacontainers) to set up the pod VM's DNS.
                      {"/etc/resolv.conf", "bind", in.resolv_conf_path, {"rbind", "ro"}}});

  internal::WithSupplementalGroups(
      s, {security.supplemental_groups().begin(), security.supplemental_groups().end()});

  std::map<std::string, std::string> sysctls(linux_config.sysctls().begin(),
                                             linux_config.sysctls().end());
  if (ns_options.network() != NamespaceMode::NODE) {
    if (opts.enable_unprivileged_ports) {
      sysctls.try_emplace("net.ipv4.ip_unprivileged_port_start", "0");
    }
    if (opts.enable_unprivileged_icmp) {
      sysctls.try_emplace("net.ipv4.ping_group_range", "0 2147483647");
    }
  }
  internal::WithSysctls(s, sysctls);

  if (!opts.disable_cgroup) oci::WithCpuShares(s, kDefaultSandboxCpuShares);

  if (linux_config.has_resources()) {
    const auto& res = linux_config.resources();
    internal::WithAnnotation(s, kSandboxCpuPeriod, std::to_string(res.cpu_period()));
    internal::WithAnnotation(s, kSandboxCpuQuota, std::to_string(res.cpu_quota()));
    internal::WithAnnotation(s, kSandboxCpuShares, std::to_string(res.cpu_shares()));
    internal::WithAnnotation(s, kSandboxMemory, std::to_string(res.memory_limit_in_bytes()));
  }

  internal::WithOomScoreAdj(s, ClampOomScoreAdj(kDefaultSandboxOomScoreAdj, opts));

  for (const auto& [k, v] :
       internal::PassthroughAnnotations(config.annotations(), opts.pod_annotations)) {
    internal::WithAnnotation(s, k, v);
  }
  internal::WithAnnotation(s, kContainerType, kContainerTypeSandbox);
  internal::WithAnnotation(s, kSandboxId, in.id);
  internal::WithAnnotation(s, kSandboxNamespace, config.metadata().namespace_());
  internal::WithAnnotation(s, kSandboxUid, config.metadata().uid());
  internal::WithAnnotation(s, kSandboxName, config.metadata().name());
  internal::WithAnnotation(s, kSandboxLogDir, config.log_directory());

  // sandboxContainerSpecOpts, applied on the spec built so far: seccomp (from the default
  // capabilities), then the user.
  auto seccomp =
      internal::ChooseProfile(security.has_seccomp() ? &security.seccomp() : nullptr,
                              security.seccomp_profile_path(), opts.unset_seccomp_profile);
  if (!seccomp) {
    return internal::Plain("failed to generate seccomp spec opts: " + seccomp.error().What());
  }
  auto user =
      internal::UserString("", security.has_run_as_user() ? &security.run_as_user() : nullptr,
                           security.has_run_as_group() ? &security.run_as_group() : nullptr);
  if (!user) return internal::Plain("failed to generate user string: " + user.error().What());
  BERTH_TRY(internal::ApplySeccomp(s, *seccomp, security.privileged(), opts));
  std::string userstr = user->empty() ? in.image.user : *user;
  if (!userstr.empty()) BERTH_TRY(oci::WithUser(s, userstr, in.rootfs));
  return s;
}

}  // namespace berth::cri::spec

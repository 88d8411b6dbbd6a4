#include <gtest/gtest.h>

#include "cri/spec/spec.h"
#include "cri/spec/test_util.h"

namespace berth::cri::spec {
namespace {

using testing::MountAt;
using testing::Namespace;
using testing::Strings;
using testing::TestOptions;
using json = nlohmann::json;

constexpr const char* kId = "5b1c0f7d3f0e4a6c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c";

class SandboxSpecTest : public testing::SpecTest {
 protected:
  SandboxSpecInput Input() {
    SandboxSpecInput in;
    in.id = kId;
    auto* md = in.config.mutable_metadata();
    md->set_name("web");
    md->set_namespace_("default");
    md->set_uid("uid-1");
    md->set_attempt(1);
    in.config.set_hostname("web-host");
    in.config.set_log_directory("/var/log/pods/default_web_uid-1");
    in.image.env = {"PATH=/usr/bin:/bin", "PAUSE=1"};
    in.image.entrypoint = {"/pause"};
    in.image.working_dir = "/";
    in.netns_path = "/var/run/netns/cni-1234";
    in.resolv_conf_path = sandbox_dir_ + "/resolv.conf";
    in.shm_path = sandbox_dir_ + "/shm";
    in.rootfs = rootfs_;
    return in;
  }
  ::runtime::v1::LinuxSandboxSecurityContext* Security(SandboxSpecInput& in) {
    return in.config.mutable_linux()->mutable_security_context();
  }
  json Spec(const SandboxSpecInput& in, const Options& opts = TestOptions()) {
    auto s = SandboxSpec(in, opts);
    EXPECT_TRUE(s) << s.error().ToString();
    return s ? *s : json();
  }
  std::string Fails(const SandboxSpecInput& in, const Options& opts = TestOptions()) {
    auto s = SandboxSpec(in, opts);
    EXPECT_FALSE(s);
    return s ? "" : s.error().ToString();
  }
};

TEST_F(SandboxSpecTest, Basics) {
  json s = Spec(Input());
  EXPECT_EQ(s["ociVersion"], "1.0.2-dev");
  EXPECT_EQ(s["root"], json({{"path", "rootfs"}, {"readonly", true}}));
  EXPECT_EQ(s["hostname"], "web-host");
  EXPECT_EQ(s["process"]["args"], json({"/pause"}));
  EXPECT_EQ(s["process"]["env"], json({"PATH=/usr/bin:/bin", "PAUSE=1"}));
  EXPECT_EQ(s["process"]["cwd"], "/");
  EXPECT_EQ(s["process"]["noNewPrivileges"], true);
  EXPECT_EQ(Strings(s["process"]["capabilities"]["bounding"]), oci::DefaultCapabilities());
  EXPECT_EQ(s["process"]["user"], json({{"uid", 0}, {"gid", 0}}));
  // Cleared security settings and /run.
  EXPECT_FALSE(s["process"].contains("rlimits"));
  EXPECT_FALSE(s["process"].contains("apparmorProfile"));
  EXPECT_FALSE(s["linux"].contains("seccomp"));
  EXPECT_TRUE(MountAt(s, "/run").is_null());
  // Default masked and read-only paths stay.
  EXPECT_EQ(s["linux"]["maskedPaths"].size(), 10U);
  EXPECT_EQ(s["linux"]["readonlyPaths"].size(), 5U);
  EXPECT_EQ(s["linux"]["cgroupsPath"], std::string("/k8s.io/") + kId);
  EXPECT_EQ(s["linux"]["resources"]["cpu"], json({{"shares", 2}}));
  EXPECT_EQ(s["process"]["oomScoreAdj"], -998);
  EXPECT_FALSE(s["linux"].contains("sysctl"));
}

TEST_F(SandboxSpecTest, ImageWithoutEntrypointOrCmd) {
  auto in = Input();
  in.image.entrypoint.clear();
  EXPECT_EQ(Fails(in).rfind("invalid empty entrypoint and cmd in image config {", 0), 0U);
  in.image.cmd = {"/pause", "-v"};
  EXPECT_EQ(Spec(in)["process"]["args"], json({"/pause", "-v"}));
  in.image.entrypoint = {"/bin/sh", "-c"};
  EXPECT_EQ(Spec(in)["process"]["args"], json({"/bin/sh", "-c", "/pause", "-v"}));
}

TEST_F(SandboxSpecTest, NoHostnameOrEnvOrCwd) {
  auto in = Input();
  in.config.clear_hostname();
  in.image.env.clear();
  in.image.working_dir.clear();
  json s = Spec(in);
  EXPECT_FALSE(s.contains("hostname"));
  EXPECT_FALSE(s["process"].contains("env"));
  EXPECT_EQ(s["process"]["cwd"], "/");
}

TEST_F(SandboxSpecTest, PodNamespaces) {
  json s = Spec(Input());
  EXPECT_EQ(s["linux"]["namespaces"], json::parse(R"([{"type":"pid"},{"type":"ipc"},
      {"type":"uts"},{"type":"mount"},{"type":"network","path":"/var/run/netns/cni-1234"}])"));
}

TEST_F(SandboxSpecTest, HostNamespaces) {
  auto in = Input();
  auto* ns = Security(in)->mutable_namespace_options();
  ns->set_network(::runtime::v1::NODE);
  json s = Spec(in);
  EXPECT_TRUE(Namespace(s, "network").is_null());
  EXPECT_TRUE(Namespace(s, "uts").is_null());  // host network means the host's hostname too
  EXPECT_FALSE(Namespace(s, "pid").is_null());
  ns->set_pid(::runtime::v1::NODE);
  ns->set_ipc(::runtime::v1::NODE);
  s = Spec(in);
  EXPECT_EQ(s["linux"]["namespaces"], json::parse(R"([{"type":"mount"}])"));
  // Host IPC: the host's /dev/shm (bound over the default tmpfs, which stays as in 1.6).
  EXPECT_EQ(s["mounts"][s["mounts"].size() - 2]["destination"], "/dev/shm");
  EXPECT_EQ(s["mounts"][s["mounts"].size() - 2]["source"], "/dev/shm");
}

TEST_F(SandboxSpecTest, ShmAndResolvConfMounts) {
  json s = Spec(Input());
  const json& mounts = s["mounts"];
  ASSERT_GE(mounts.size(), 2U);
  // Appended after the defaults (whose own /dev/shm tmpfs stays, as in containerd 1.6).
  EXPECT_EQ(mounts[mounts.size() - 2], json({{"destination", "/dev/shm"},
                                             {"type", "bind"},
                                             {"source", sandbox_dir_ + "/shm"},
                                             {"options", {"rbind", "ro"}}}));
  EXPECT_EQ(mounts.back(), json({{"destination", "/etc/resolv.conf"},
                                 {"type", "bind"},
                                 {"source", sandbox_dir_ + "/resolv.conf"},
                                 {"options", {"rbind", "ro"}}}));
}

TEST_F(SandboxSpecTest, Sysctls) {
  auto in = Input();
  (*in.config.mutable_linux()->mutable_sysctls())["kernel.shm_rmid_forced"] = "1";
  json s = Spec(in);
  EXPECT_EQ(s["linux"]["sysctl"], json({{"kernel.shm_rmid_forced", "1"}}));

  Options opts = TestOptions();
  opts.enable_unprivileged_ports = true;
  opts.enable_unprivileged_icmp = true;
  s = Spec(in, opts);
  EXPECT_EQ(s["linux"]["sysctl"], json({{"kernel.shm_rmid_forced", "1"},
                                        {"net.ipv4.ip_unprivileged_port_start", "0"},
                                        {"net.ipv4.ping_group_range", "0 2147483647"}}));
  // A pod's own value wins.
  (*in.config.mutable_linux()->mutable_sysctls())["net.ipv4.ip_unprivileged_port_start"] = "80";
  s = Spec(in, opts);
  EXPECT_EQ(s["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "80");
  // Host network: not the pod's to change.
  Security(in)->mutable_namespace_options()->set_network(::runtime::v1::NODE);
  in.config.mutable_linux()->mutable_sysctls()->clear();
  s = Spec(in, opts);
  EXPECT_FALSE(s["linux"].contains("sysctl"));
}

TEST_F(SandboxSpecTest, CgroupParent) {
  auto in = Input();
  in.config.mutable_linux()->set_cgroup_parent("/kubepods/besteffort/poduid-1");
  EXPECT_EQ(Spec(in)["linux"]["cgroupsPath"], std::string("/kubepods/besteffort/poduid-1/") + kId);
  in.config.mutable_linux()->set_cgroup_parent(
      "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poduid_1.slice");
  EXPECT_EQ(Spec(in)["linux"]["cgroupsPath"],
            std::string("kubepods-besteffort-poduid_1.slice:cri-containerd:") + kId);
  Options opts = TestOptions();
  opts.disable_cgroup = true;
  json s = Spec(in, opts);
  EXPECT_FALSE(s["linux"].contains("cgroupsPath"));
  EXPECT_FALSE(s["linux"]["resources"].contains("cpu"));
}

TEST_F(SandboxSpecTest, OomScoreAdjClamp) {
  Options opts = TestOptions();
  opts.host.oom_score_adj = -500;
  EXPECT_EQ(Spec(Input(), opts)["process"]["oomScoreAdj"], -998);  // may lower: not clamped
  opts.restrict_oom_score_adj = true;
  EXPECT_EQ(Spec(Input(), opts)["process"]["oomScoreAdj"], -500);
  opts.host.oom_score_adj = -999;
  EXPECT_EQ(Spec(Input(), opts)["process"]["oomScoreAdj"], -998);
  // A daemon without CAP_SYS_RESOURCE cannot go below its own score: clamped anyway.
  opts.restrict_oom_score_adj = false;
  opts.host.oom_score_adj = 0;
  std::erase(opts.host.capabilities, "CAP_SYS_RESOURCE");
  EXPECT_EQ(Spec(Input(), opts)["process"]["oomScoreAdj"], 0);
}

TEST_F(SandboxSpecTest, Annotations) {
  auto in = Input();
  (*in.config.mutable_annotations())["example.com/passed"] = "yes";
  (*in.config.mutable_annotations())["example.com/sub/no"] = "no";
  (*in.config.mutable_annotations())["other"] = "no";
  Options opts = TestOptions();
  opts.pod_annotations = {"example.com/*"};
  json s = Spec(in, opts);
  EXPECT_EQ(s["annotations"],
            json({{"io.kubernetes.cri.container-type", "sandbox"},
                  {"io.kubernetes.cri.sandbox-id", kId},
                  {"io.kubernetes.cri.sandbox-namespace", "default"},
                  {"io.kubernetes.cri.sandbox-uid", "uid-1"},
                  {"io.kubernetes.cri.sandbox-name", "web"},
                  {"io.kubernetes.cri.sandbox-log-directory", "/var/log/pods/default_web_uid-1"},
                  {"example.com/passed", "yes"}}));
  auto* res = in.config.mutable_linux()->mutable_resources();
  res->set_cpu_period(100000);
  res->set_cpu_quota(50000);
  res->set_memory_limit_in_bytes(1 << 30);
  s = Spec(in);
  EXPECT_EQ(s["annotations"]["io.kubernetes.cri.sandbox-cpu-period"], "100000");
  EXPECT_EQ(s["annotations"]["io.kubernetes.cri.sandbox-cpu-quota"], "50000");
  EXPECT_EQ(s["annotations"]["io.kubernetes.cri.sandbox-cpu-shares"], "0");
  EXPECT_EQ(s["annotations"]["io.kubernetes.cri.sandbox-memory"], "1073741824");
  EXPECT_FALSE(s["annotations"].contains("example.com/passed"));
}

TEST_F(SandboxSpecTest, Seccomp) {
  auto in = Input();
  EXPECT_FALSE(Spec(in)["linux"].contains("seccomp"));  // unset: unconfined by default
  Options opts = TestOptions();
  opts.unset_seccomp_profile = "runtime/default";
  json s = Spec(in, opts);
  // The pause container has the default capabilities: the 11-rule amd64 profile.
  EXPECT_EQ(s["linux"]["seccomp"]["syscalls"].size(), 11U);
  EXPECT_EQ(s["linux"]["seccomp"], oci::DefaultSeccompProfile(s, opts.host.seccomp));

  Security(in)->set_seccomp_profile_path("unconfined");
  EXPECT_FALSE(Spec(in, opts)["linux"].contains("seccomp"));
  Security(in)->mutable_seccomp()->set_profile_type(::runtime::v1::SecurityProfile::RuntimeDefault);
  EXPECT_TRUE(Spec(in)["linux"].contains("seccomp"));  // the message wins over the path
  Security(in)->set_privileged(true);
  EXPECT_FALSE(Spec(in)["linux"].contains("seccomp"));
  Security(in)->set_privileged(false);
  Security(in)->clear_seccomp();
  Security(in)->set_seccomp_profile_path("nonsense");
  EXPECT_EQ(Fails(in), "failed to generate seccomp spec opts: invalid profile \"nonsense\"");
}

TEST_F(SandboxSpecTest, User) {
  auto in = Input();
  Security(in)->mutable_run_as_user()->set_value(1000);
  Security(in)->mutable_run_as_group()->set_value(2000);
  EXPECT_EQ(Spec(in)["process"]["user"],
            json({{"uid", 1000}, {"gid", 2000}, {"additionalGids", {2000}}}));
  Security(in)->clear_run_as_user();
  EXPECT_EQ(Fails(in),
            "failed to generate user string: user group \"2000\" is specified without user");
  Security(in)->clear_run_as_group();
  in.image.user = "alice";  // the image's USER, looked up in the rootfs
  EXPECT_EQ(Spec(in)["process"]["user"],
            json({{"uid", 1000}, {"gid", 1000}, {"additionalGids", {1000}}}));
  in.image.user = "nobody";
  auto err = SandboxSpec(in, TestOptions());
  ASSERT_FALSE(err);
  EXPECT_TRUE(err.error().Is(Errc::kNotFound)) << err.error().ToString();
}

TEST_F(SandboxSpecTest, SupplementalGroups) {
  auto in = Input();
  for (int64_t g : {300, 100, 300}) Security(in)->add_supplemental_groups(g);
  EXPECT_EQ(Spec(in)["process"]["user"]["additionalGids"], json({100, 300}));
}

}  // namespace
}  // namespace berth::cri::spec

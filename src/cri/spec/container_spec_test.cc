#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "cri/spec/spec.h"
#include "cri/spec/test_util.h"

namespace berth::cri::spec {
namespace {

using testing::ContainerSpecTest;
constexpr const char* kId = testing::kContainerId;
constexpr const char* kSandboxId = testing::kContainerSandboxId;

using testing::MountAt;
using testing::Namespace;
using testing::Strings;
using testing::TestOptions;
using json = nlohmann::json;

// ---- Process ----

TEST_F(ContainerSpecTest, ArgvRules) {
  auto in = Input();
  EXPECT_EQ(Spec(in)["process"]["args"], json({"/entry", "serve", "--port=80"}));
  in.config.add_args("debug");  // args replace the image's cmd, entrypoint stays
  EXPECT_EQ(Spec(in)["process"]["args"], json({"/entry", "debug"}));
  in.config.add_command("/bin/sh");  // command replaces entrypoint and cmd
  EXPECT_EQ(Spec(in)["process"]["args"], json({"/bin/sh", "debug"}));
  in.config.clear_args();
  EXPECT_EQ(Spec(in)["process"]["args"], json({"/bin/sh"}));
  // An image entrypoint of [""] is docker's reset: only cmd.
  in = Input();
  in.image.entrypoint = {""};
  EXPECT_EQ(Spec(in)["process"]["args"], json({"serve", "--port=80"}));
  in.image.cmd.clear();
  EXPECT_EQ(Fails(in), "no command specified");
  in.image.entrypoint.clear();
  EXPECT_EQ(Fails(in), "no command specified");
}

TEST_F(ContainerSpecTest, EnvOrder) {
  auto in = Input();
  auto* kv = in.config.add_envs();
  kv->set_key("PATH");
  kv->set_value("/custom");
  kv = in.config.add_envs();
  kv->set_key("APP");
  kv->set_value("x=y");
  EXPECT_EQ(Spec(in)["process"]["env"],
            json({"PATH=/custom", "HOSTNAME=web-host", "IMAGE=1", "APP=x=y"}));
  // tty: TERM=xterm right after PATH; no sandbox hostname: the host's.
  in.config.set_tty(true);
  in.sandbox_config.clear_hostname();
  json s = Spec(in);
  EXPECT_EQ(s["process"]["env"],
            json({"PATH=/custom", "TERM=xterm", "HOSTNAME=node-1", "IMAGE=1", "APP=x=y"}));
  EXPECT_EQ(s["process"]["terminal"], true);
  EXPECT_FALSE(Spec(Input())["process"].contains("terminal"));
}

TEST_F(ContainerSpecTest, CwdAndNoNewPrivs) {
  auto in = Input();
  json s = Spec(in);
  EXPECT_EQ(s["process"]["cwd"], "/srv");
  EXPECT_FALSE(s["process"].contains("noNewPrivileges"));  // off unless asked for
  in.config.set_working_dir("/work");
  Security(in)->set_no_new_privs(true);
  s = Spec(in);
  EXPECT_EQ(s["process"]["cwd"], "/work");
  EXPECT_EQ(s["process"]["noNewPrivileges"], true);
  in.image.working_dir.clear();
  in.config.clear_working_dir();
  EXPECT_EQ(Spec(in)["process"]["cwd"], "/");
}

TEST_F(ContainerSpecTest, DefaultsCleared) {
  json s = Spec(Input());
  EXPECT_EQ(s["root"], json({{"path", "rootfs"}}));
  EXPECT_FALSE(s["process"].contains("rlimits"));
  EXPECT_FALSE(s["process"].contains("apparmorProfile"));
  EXPECT_FALSE(s["linux"].contains("seccomp"));
  EXPECT_TRUE(MountAt(s, "/run").is_null());
  EXPECT_EQ(s["linux"]["cgroupsPath"], std::string("/k8s.io/") + kId);
  EXPECT_FALSE(s["process"].contains("oomScoreAdj"));  // only with resources
  EXPECT_FALSE(s["process"]["capabilities"].contains("ambient"));
  // The log path is the daemon's business, not the runtime's.
  EXPECT_EQ(s.dump().find("log"), std::string::npos);
}

// ---- Mounts ----

TEST_F(ContainerSpecTest, SandboxFileMounts) {
  auto in = Input();
  json s = Spec(in);
  auto bind = [](const std::string& dst, const std::string& src, const char* mode) {
    return json({{"destination", dst},
                 {"type", "bind"},
                 {"source", src},
                 {"options", {"rbind", "rprivate", mode}}});
  };
  EXPECT_EQ(MountAt(s, "/etc/hostname"), bind("/etc/hostname", sandbox_dir_ + "/hostname", "rw"));
  EXPECT_EQ(MountAt(s, "/etc/hosts"), bind("/etc/hosts", sandbox_dir_ + "/hosts", "rw"));
  EXPECT_EQ(MountAt(s, "/etc/resolv.conf"),
            bind("/etc/resolv.conf", sandbox_dir_ + "/resolv.conf", "rw"));
  EXPECT_EQ(MountAt(s, "/dev/shm"), bind("/dev/shm", sandbox_dir_ + "/shm", "rw"));
  // readonly_rootfs makes the sandbox files read-only (not /dev/shm) and the root.
  Security(in)->set_readonly_rootfs(true);
  s = Spec(in);
  EXPECT_EQ(s["root"]["readonly"], true);
  EXPECT_EQ(Strings(MountAt(s, "/etc/hosts")["options"]).back(), "ro");
  EXPECT_EQ(Strings(MountAt(s, "/etc/hostname")["options"]).back(), "ro");
  EXPECT_EQ(Strings(MountAt(s, "/dev/shm")["options"]).back(), "rw");
  // Host IPC: the host's /dev/shm. No hostname file: no /etc/hostname mount.
  Security(in)->mutable_namespace_options()->set_ipc(::runtime::v1::NODE);
  std::filesystem::remove(sandbox_dir_ + "/hostname");
  s = Spec(in);
  EXPECT_EQ(MountAt(s, "/dev/shm")["source"], "/dev/shm");
  EXPECT_TRUE(MountAt(s, "/etc/hostname").is_null());
}

TEST_F(ContainerSpecTest, CriMountReplacesSandboxFile) {
  auto in = Input();
  std::string hosts = Path("my-hosts");
  Write(hosts, "10.0.0.1 db\n");
  AddMount(in, "/etc/hosts/", hosts)->set_readonly(true);  // compared cleaned
  json s = Spec(in);
  int count = 0;
  for (const auto& m : s["mounts"]) {
    if (m["destination"] == "/etc/hosts" || m["destination"] == "/etc/hosts/") ++count;
  }
  EXPECT_EQ(count, 1);
  EXPECT_EQ(MountAt(s, "/etc/hosts/")["source"], hosts);
  EXPECT_EQ(Strings(MountAt(s, "/etc/hosts/")["options"]),
            (std::vector<std::string>{"rbind", "rprivate", "ro"}));
}

TEST_F(ContainerSpecTest, CgroupMountAndDefaults) {
  auto in = Input();
  json s = Spec(in);
  EXPECT_EQ(MountAt(s, "/sys/fs/cgroup"),
            json({{"destination", "/sys/fs/cgroup"},
                  {"type", "cgroup"},
                  {"source", "cgroup"},
                  {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}}));
  // Defaults first (proc, dev, devpts, mqueue, sys, cgroup; the shm tmpfs gives way to the
  // sandbox's), then the supplied mounts, stable by depth.
  std::vector<std::string> order;
  for (const auto& m : s["mounts"]) order.push_back(m["destination"]);
  EXPECT_EQ(order, (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys",
                                             "/sys/fs/cgroup", "/etc/hostname", "/etc/hosts",
                                             "/etc/resolv.conf", "/dev/shm"}));
  // A supplied /dev drops every default under /dev.
  std::filesystem::create_directories(Path("dev"));
  AddMount(in, "/dev", Path("dev"));
  order.clear();
  s = Spec(in);
  for (const auto& m : s["mounts"]) order.push_back(m["destination"]);
  EXPECT_EQ(order,
            (std::vector<std::string>{"/proc", "/sys", "/sys/fs/cgroup", "/dev", "/etc/hostname",
                                      "/etc/hosts", "/etc/resolv.conf", "/dev/shm"}));
}

TEST_F(ContainerSpecTest, MountsSortedByDepthCreatedAndResolved) {
  auto in = Input();
  std::string deep = Path("new/deep/dir");  // does not exist yet
  std::string target = Path("target");
  std::filesystem::create_directories(target);
  std::filesystem::create_symlink(target, Path("link"));
  AddMount(in, "/a/b/c", deep);
  AddMount(in, "/a", Path("link"));
  AddMount(in, "/a/b", target)->set_propagation(::runtime::v1::PROPAGATION_PRIVATE);
  json s = Spec(in);
  std::vector<std::string> order;
  for (const auto& m : s["mounts"]) order.push_back(m["destination"]);
  // Stable by depth: /a (1), then the depth-2 ones in order, then /a/b/c (3).
  auto pos = [&](const std::string& d) {
    return std::find(order.begin(), order.end(), d) - order.begin();
  };
  EXPECT_LT(pos("/a"), pos("/a/b"));
  EXPECT_LT(pos("/a/b"), pos("/etc/hosts"));
  EXPECT_LT(pos("/etc/resolv.conf"), pos("/a/b/c"));
  EXPECT_TRUE(std::filesystem::is_directory(deep));
  EXPECT_EQ(MountAt(s, "/a")["source"], target);  // symlink resolved
  EXPECT_EQ(MountAt(s, "/a/b/c")["source"], deep);
  EXPECT_FALSE(s["linux"].contains("rootfsPropagation"));
}

TEST_F(ContainerSpecTest, ImageVolumes) {
  auto in = Input();
  in.image.volumes = {"/data", "/cache"};
  AddMount(in, "/cache/", Path("cache"));
  Options opts = TestOptions();
  auto mounts =
      ImageVolumeMounts("/var/lib/berth/io.containerd.grpc.v1.cri", kId, in.image, in.config, opts);
  ASSERT_EQ(mounts.size(), 1U);  // /cache is the CRI mount's
  EXPECT_EQ(mounts[0].container_path(), "/data");
  const std::string prefix =
      std::string("/var/lib/berth/io.containerd.grpc.v1.cri/containers/") + kId + "/volumes/";
  ASSERT_EQ(mounts[0].host_path().rfind(prefix, 0), 0U);
  std::string hex = mounts[0].host_path().substr(prefix.size());
  EXPECT_EQ(hex.size(), 64U);
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_TRUE(mounts[0].selinux_relabel());
  EXPECT_NE(ImageVolumeMounts("/r", kId, in.image, in.config, opts)[0].host_path(),
            mounts[0].host_path());
  opts.ignore_image_defined_volumes = true;
  EXPECT_TRUE(ImageVolumeMounts("/r", kId, in.image, in.config, opts).empty());

  // Given to the spec, they come after the sandbox files, as rw binds.
  opts = TestOptions();
  in.volume_mounts = ImageVolumeMounts(Path("cri"), kId, in.image, in.config, opts);
  json s = Spec(in, opts);
  EXPECT_EQ(MountAt(s, "/data")["source"], in.volume_mounts[0].host_path());
  EXPECT_TRUE(std::filesystem::is_directory(in.volume_mounts[0].host_path()));
}

TEST_F(ContainerSpecTest, MaskedAndReadonlyPaths) {
  auto in = Input();
  json s = Spec(in);
  EXPECT_FALSE(s["linux"].contains("maskedPaths"));  // defaults dropped
  EXPECT_FALSE(s["linux"].contains("readonlyPaths"));
  Security(in)->add_masked_paths("/proc/kcore");
  Security(in)->add_readonly_paths("/proc/sys");
  s = Spec(in);
  EXPECT_EQ(s["linux"]["maskedPaths"], json({"/proc/kcore"}));
  EXPECT_EQ(s["linux"]["readonlyPaths"], json({"/proc/sys"}));
  Options opts = TestOptions();
  opts.disable_proc_mount = true;  // the default lists stay, the CRI's are ignored
  s = Spec(in, opts);
  EXPECT_EQ(s["linux"]["maskedPaths"].size(), 10U);
  EXPECT_EQ(s["linux"]["readonlyPaths"].size(), 5U);
}

// ---- Devices, capabilities, privileges ----

TEST_F(ContainerSpecTest, Devices) {
  auto in = Input();
  std::filesystem::create_symlink("/dev/null", Path("null-link"));
  auto* d = in.config.add_devices();
  d->set_host_path(Path("null-link"));
  d->set_container_path("/dev/mynull");
  d->set_permissions("rw");
  json s = Spec(in);
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  ASSERT_EQ(s["linux"]["devices"].size(), 1U);
  const json& dev = s["linux"]["devices"][0];
  EXPECT_EQ(dev["path"], "/dev/mynull");
  EXPECT_EQ(dev["type"], "c");
  EXPECT_EQ(dev["major"], major(st.st_rdev));
  EXPECT_EQ(dev["minor"], minor(st.st_rdev));
  EXPECT_EQ(dev["uid"], st.st_uid);
  EXPECT_EQ(s["linux"]["resources"]["devices"].back(), json({{"allow", true},
                                                             {"type", "c"},
                                                             {"major", major(st.st_rdev)},
                                                             {"minor", minor(st.st_rdev)},
                                                             {"access", "rw"}}));
  EXPECT_EQ(s["linux"]["resources"]["devices"][0], json({{"allow", false}, {"access", "rwm"}}));
  // Owned by the container's user with device_ownership_from_security_context.
  Options opts = TestOptions();
  opts.device_ownership_from_security_context = true;
  Security(in)->mutable_run_as_user()->set_value(1000);
  Security(in)->mutable_run_as_group()->set_value(2000);
  s = Spec(in, opts);
  EXPECT_EQ(s["linux"]["devices"][0]["uid"], 1000);
  EXPECT_EQ(s["linux"]["devices"][0]["gid"], 2000);
  // A missing device is an error.
  d->set_host_path(Path("no-such-device"));
  EXPECT_NE(Fails(in).find("no-such-device"), std::string::npos);
}

TEST_F(ContainerSpecTest, DeviceDirectory) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for mknod";
  auto in = Input();
  std::string dir = Path("devs");
  std::filesystem::create_directories(dir + "/sub");
  ASSERT_EQ(::mknod((dir + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::chmod((dir + "/null").c_str(), 0666), 0);  // past the umask
  ASSERT_EQ(::mknod((dir + "/sub/zero").c_str(), S_IFCHR | 0640, makedev(1, 5)), 0);
  ASSERT_EQ(::mkfifo((dir + "/fifo").c_str(), 0600), 0);  // FIFOs below a directory: skipped
  Write(dir + "/file", "not a device");
  auto* d = in.config.add_devices();
  d->set_host_path(dir);
  d->set_container_path("/dev/mine");
  d->set_permissions("r");
  json s = Spec(in);
  ASSERT_EQ(s["linux"]["devices"].size(), 2U);
  EXPECT_EQ(s["linux"]["devices"][0]["path"], "/dev/mine/null");
  EXPECT_EQ(s["linux"]["devices"][0]["fileMode"], 0666);
  EXPECT_EQ(s["linux"]["devices"][1]["path"], "/dev/mine/sub/zero");
  EXPECT_EQ(s["linux"]["devices"][1]["minor"], 5);
  EXPECT_EQ(s["linux"]["resources"]["devices"].size(), 3U);  // deny-all + one rule each
  EXPECT_EQ(s["linux"]["resources"]["devices"][2]["access"], "r");
  // A single path that is not a device.
  d->set_host_path(dir + "/file");
  EXPECT_NE(Fails(in).find("not a device node"), std::string::npos);
}

TEST_F(ContainerSpecTest, Capabilities) {
  auto in = Input();
  auto* caps = Security(in)->mutable_capabilities();
  caps->add_add_capabilities("net_admin");
  caps->add_drop_capabilities("CHOWN");
  json s = Spec(in);
  auto bounding = Strings(s["process"]["capabilities"]["bounding"]);
  EXPECT_EQ(bounding.back(), "CAP_NET_ADMIN");
  EXPECT_EQ(std::count(bounding.begin(), bounding.end(), "CAP_CHOWN"), 0);
  EXPECT_EQ(s["process"]["capabilities"]["effective"], s["process"]["capabilities"]["bounding"]);
  EXPECT_EQ(s["process"]["capabilities"]["permitted"], s["process"]["capabilities"]["bounding"]);

  // add ALL: the daemon's set; then drop CHOWN still applies.
  caps->clear_add_capabilities();
  caps->add_add_capabilities("all");
  Options opts = TestOptions();
  opts.host.capabilities = {"CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"};
  s = Spec(in, opts);
  EXPECT_EQ(s["process"]["capabilities"]["bounding"], json({"CAP_KILL", "CAP_SYS_ADMIN"}));

  // drop ALL: none, then the named additions.
  caps->Clear();
  caps->add_drop_capabilities("ALL");
  s = Spec(in);
  EXPECT_EQ(s["process"]["capabilities"], json::object());
  caps->add_add_capabilities("sys_time");
  s = Spec(in);
  EXPECT_EQ(s["process"]["capabilities"]["bounding"], json({"CAP_SYS_TIME"}));
  EXPECT_FALSE(s["process"]["capabilities"].contains("inheritable"));
}

TEST_F(ContainerSpecTest, PrivilegedNeedsPrivilegedSandbox) {
  auto in = Input();
  Security(in)->set_privileged(true);
  EXPECT_EQ(Fails(in), "no privileged container allowed in sandbox");
}

TEST_F(ContainerSpecTest, Privileged) {
  auto in = Input();
  Security(in)->set_privileged(true);
  Security(in)->mutable_seccomp()->set_profile_type(::runtime::v1::SecurityProfile::RuntimeDefault);
  Security(in)->add_masked_paths("/proc/kcore");
  in.sandbox_config.mutable_linux()->mutable_security_context()->set_privileged(true);
  Options opts = TestOptions();
  opts.host.capabilities = {"CAP_CHOWN", "CAP_SYS_ADMIN"};
  opts.host.cgroup_mode = CgroupMode::kV2;
  json s = Spec(in, opts);
  EXPECT_EQ(s["process"]["capabilities"]["bounding"], json({"CAP_CHOWN", "CAP_SYS_ADMIN"}));
  EXPECT_FALSE(s["linux"].contains("maskedPaths"));
  EXPECT_FALSE(s["linux"].contains("readonlyPaths"));
  EXPECT_FALSE(s["linux"].contains("seccomp"));
  EXPECT_EQ(Strings(MountAt(s, "/sys")["options"]).back(), "rw");
  EXPECT_EQ(Strings(MountAt(s, "/sys/fs/cgroup")["options"]).back(), "rw");
  EXPECT_EQ(s["linux"]["resources"]["devices"], json({{{"allow", true}, {"access", "rwm"}}}));
  ASSERT_TRUE(s["linux"].contains("devices"));
  bool has_null = false;
  for (const auto& d : s["linux"]["devices"]) has_null |= d["path"] == "/dev/null";
  EXPECT_TRUE(has_null);
  EXPECT_TRUE(Namespace(s, "cgroup").is_null());  // no cgroup ns for privileged, even on v2

  // privileged_without_host_devices: only the requested devices, the deny-all rule stays.
  opts.privileged_without_host_devices = true;
  s = Spec(in, opts);
  EXPECT_FALSE(s["linux"].contains("devices"));
  EXPECT_EQ(s["linux"]["resources"]["devices"], json({{{"allow", false}, {"access", "rwm"}}}));
}

// ---- Resources, cgroups, oom ----

TEST_F(ContainerSpecTest, ResourcesZeroIsUnset) {
  auto in = Input();
  Res(in);  // present, all zero
  json s = Spec(in);
  EXPECT_EQ(s["linux"]["resources"]["cpu"], json::object());
  EXPECT_EQ(s["linux"]["resources"]["memory"], json::object());
  EXPECT_EQ(s["process"]["oomScoreAdj"], 0);
  EXPECT_FALSE(Spec(Input())["linux"]["resources"].contains("cpu"));
}

TEST_F(ContainerSpecTest, Resources) {
  auto in = Input();
  auto* r = Res(in);
  r->set_cpu_period(100000);
  r->set_cpu_quota(25000);
  r->set_cpu_shares(512);
  r->set_cpuset_cpus("0-1");
  r->set_cpuset_mems("0");
  r->set_memory_limit_in_bytes(256 << 20);
  auto* h = r->add_hugepage_limits();
  h->set_page_size("2MB");
  h->set_limit(1 << 21);
  (*r->mutable_unified())["memory.high"] = "200M";
  json s = Spec(in);
  const json& res = s["linux"]["resources"];
  EXPECT_EQ(
      res["cpu"],
      json(
          {{"period", 100000}, {"quota", 25000}, {"shares", 512}, {"cpus", "0-1"}, {"mems", "0"}}));
  // swap = limit: no swapping, where there is a swap controller.
  EXPECT_EQ(res["memory"], json({{"limit", 256 << 20}, {"swap", 256 << 20}}));
  EXPECT_FALSE(res.contains("hugepageLimits"));  // disable_hugetlb_controller defaults to true
  EXPECT_EQ(res["unified"], json({{"memory.high", "200M"}}));

  Options opts = TestOptions();
  opts.host.swap_controller = false;
  opts.disable_hugetlb_controller = false;
  s = Spec(in, opts);
  EXPECT_EQ(s["linux"]["resources"]["memory"], json({{"limit", 256 << 20}}));
  EXPECT_EQ(s["linux"]["resources"]["hugepageLimits"],
            json({{{"pageSize", "2MB"}, {"limit", 1 << 21}}}));
  r->set_memory_swap_limit_in_bytes(512 << 20);
  opts.host.swap_controller = true;
  EXPECT_EQ(Spec(in, opts)["linux"]["resources"]["memory"]["swap"], 512 << 20);

  opts.host.hugetlb_controller = false;
  opts.tolerate_missing_hugetlb_controller = false;
  EXPECT_EQ(Fails(in, opts).rfind("huge pages limits are specified but hugetlb cgroup controller "
                                  "is missing.",
                                  0),
            0U);
  opts.tolerate_missing_hugetlb_controller = true;
  EXPECT_FALSE(Spec(in, opts)["linux"]["resources"].contains("hugepageLimits"));
}

TEST_F(ContainerSpecTest, CgroupsPathAndDisabledCgroups) {
  auto in = Input();
  in.sandbox_config.mutable_linux()->set_cgroup_parent("/kubepods/burstable/poduid-1");
  Res(in)->set_cpu_shares(256);
  json s = Spec(in);
  EXPECT_EQ(s["linux"]["cgroupsPath"], std::string("/kubepods/burstable/poduid-1/") + kId);
  Options opts = TestOptions();
  opts.disable_cgroup = true;
  s = Spec(in, opts);
  EXPECT_FALSE(s["linux"].contains("cgroupsPath"));
  EXPECT_FALSE(s["linux"]["resources"].contains("cpu"));
}

TEST_F(ContainerSpecTest, OomScoreAdj) {
  auto in = Input();
  Res(in)->set_oom_score_adj(-997);
  EXPECT_EQ(Spec(in)["process"]["oomScoreAdj"], -997);
  Options opts = TestOptions();
  opts.restrict_oom_score_adj = true;
  opts.host.oom_score_adj = -500;
  EXPECT_EQ(Spec(in, opts)["process"]["oomScoreAdj"], -500);
  Res(in)->set_oom_score_adj(1000);
  EXPECT_EQ(Spec(in, opts)["process"]["oomScoreAdj"], 1000);
}

// ---- Namespaces ----

TEST_F(ContainerSpecTest, Namespaces) {
  auto in = Input();
  json s = Spec(in);
  EXPECT_EQ(s["linux"]["namespaces"], json::parse(R"([
      {"type":"pid","path":"/proc/4242/ns/pid"},{"type":"ipc","path":"/proc/4242/ns/ipc"},
      {"type":"uts","path":"/proc/4242/ns/uts"},{"type":"mount"},
      {"type":"network","path":"/proc/4242/ns/net"}])"));
  auto* ns = Security(in)->mutable_namespace_options();
  ns->set_pid(::runtime::v1::CONTAINER);
  EXPECT_EQ(Namespace(Spec(in), "pid"), json({{"type", "pid"}}));
  ns->set_pid(::runtime::v1::TARGET);
  ns->set_target_id("other");
  auto err = ContainerSpec(in, TestOptions());
  ASSERT_FALSE(err);
  EXPECT_TRUE(err.error().Is(Errc::kInvalidArgument));
  in.target_pid = 777;
  EXPECT_EQ(Namespace(Spec(in), "pid")["path"], "/proc/777/ns/pid");
  // cgroup v2: a cgroup namespace.
  Options opts = TestOptions();
  opts.host.cgroup_mode = CgroupMode::kV2;
  EXPECT_EQ(Namespace(Spec(in, opts), "cgroup"), json({{"type", "cgroup"}}));
  EXPECT_TRUE(Namespace(Spec(in), "cgroup").is_null());
}

// ---- Annotations ----

TEST_F(ContainerSpecTest, Annotations) {
  auto in = Input();
  (*in.sandbox_config.mutable_annotations())["pod.example/a"] = "1";
  (*in.config.mutable_annotations())["ctr.example/b"] = "2";
  (*in.config.mutable_annotations())["pod.example/c"] = "not a pod annotation";
  Options opts = TestOptions();
  opts.pod_annotations = {"pod.example/*"};
  opts.container_annotations = {"ctr.example/?"};
  json s = Spec(in, opts);
  EXPECT_EQ(s["annotations"],
            json({{"io.kubernetes.cri.container-type", "container"},
                  {"io.kubernetes.cri.sandbox-id", kSandboxId},
                  {"io.kubernetes.cri.sandbox-namespace", "default"},
                  {"io.kubernetes.cri.sandbox-uid", "uid-1"},
                  {"io.kubernetes.cri.sandbox-name", "web"},
                  {"io.kubernetes.cri.container-name", "app"},
                  {"io.kubernetes.cri.image-name", "docker.io/library/busybox:1.36"},
                  {"pod.example/a", "1"},
                  {"ctr.example/b", "2"}}));
}

}  // namespace
}  // namespace berth::cri::spec

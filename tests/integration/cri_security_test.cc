// CRI integration: every security-context option this host can run, checked from inside the
// container: users and groups (uid, gid, name resolved in the image, supplemental groups),
// read-only rootfs, privileged, capabilities (add, drop, ALL), no_new_privs, masked and read-only
// paths, sysctls, seccomp (runtime/default, docker/default, unconfined, localhost/<path>, in both
// the field and the deprecated path form), namespace options (host PID and IPC, pod, container
// and target PID), devices. AppArmor and SELinux are absent here: their enforcement is skipped,
// saying so.
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "cri_fixture.h"

namespace berth::testing {
namespace {

namespace v1 = ::runtime::v1;

// containerd's default capability set (CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID
// SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE).
constexpr uint64_t kDefaultCaps = 0xa80425fb;
constexpr int kCapChown = 0;
constexpr int kCapNetBindService = 10;
constexpr int kCapSysAdmin = 21;

// A "Key:\tvalue" field of a /proc/<pid>/status text.
std::string StatusField(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(key + ":"))
      return Trim(line.substr(line.find_first_not_of(" \t", key.size() + 1)));
  }
  return "";
}

uint64_t Hex(const std::string& s) {
  return s.empty() ? ~uint64_t{0} : std::stoull(s, nullptr, 16);
}

class CriSecurityIT : public CriTest {
 protected:
  // A pod (unprivileged unless asked) whose containers the test runs.
  void SetUpPod(const std::string& name, bool privileged = false) {
    pod_cfg_ = PodConfig(name);
    pod_cfg_.mutable_linux()->mutable_security_context()->set_privileged(privileged);
    pod_ = RunPod(pod_cfg_);
    ASSERT_FALSE(pod_.empty());
  }
  v1::ContainerConfig Sleeper(const std::string& name, const std::string& tag = "busybox") {
    return ContainerConfig(name, tag, {"sleep", "3600"});
  }
  v1::LinuxContainerSecurityContext* Sec(v1::ContainerConfig& c) {
    return c.mutable_linux()->mutable_security_context();
  }
  std::string Run(const v1::ContainerConfig& c) { return RunContainer(pod_, pod_cfg_, c); }
  grpc::Status TryCreate(const v1::ContainerConfig& c) {
    std::string id;
    return TryCreateContainer(pod_, pod_cfg_, c, &id);
  }
  uint64_t CapEff(const std::string& id) {
    return Hex(StatusField(Sh(id, "cat /proc/self/status"), "CapEff"));
  }
  std::string SelfStatus(const std::string& id, const std::string& key) {
    return StatusField(Sh(id, "cat /proc/self/status"), key);
  }

  v1::PodSandboxConfig pod_cfg_;
  std::string pod_;
};

TEST_F(CriSecurityIT, UsersGroupsAndSupplementalGroups) {
  SetUpPod("users");
  // run_as_user + run_as_group + supplemental_groups (busybox: no such user in /etc/passwd).
  auto numeric = Sleeper("numeric");
  Sec(numeric)->mutable_run_as_user()->set_value(1500);
  Sec(numeric)->mutable_run_as_group()->set_value(2500);
  Sec(numeric)->add_supplemental_groups(3001);
  Sec(numeric)->add_supplemental_groups(3000);
  const std::string a = Run(numeric);
  // run_as_username, resolved in the image's /etc/passwd and /etc/group (berth: 1234, member
  // of extra 2345).
  auto named = Sleeper("named", "cri");
  Sec(named)->set_run_as_username("berth");
  Sec(named)->add_supplemental_groups(4000);
  const std::string b = Run(named);
  // The image's USER (berth) when nothing is asked.
  const std::string c = Run(Sleeper("image-user", "cri"));
  // A uid known to /etc/passwd: its primary group from there.
  auto nobody = Sleeper("nobody");
  Sec(nobody)->mutable_run_as_user()->set_value(65534);
  const std::string d = Run(nobody);
  ASSERT_FALSE(a.empty() || b.empty() || c.empty() || d.empty());

  EXPECT_EQ(Sh(a, "id -u; id -g; id -G"), "1500\n2500\n2500 3000 3001\n");
  EXPECT_EQ(Sh(b, "id -u; id -g; id -G"), "1234\n1234\n1234 2345 4000\n");
  EXPECT_EQ(Sh(c, "id -un; id -u"), "berth\n1234\n");
  EXPECT_EQ(Sh(d, "id -u; id -g"), "65534\n65534\n");
  // The main process too, not only ExecSync's.
  EXPECT_TRUE(StatusField(ReadText("/proc/" + std::to_string(ContainerPid(b)) + "/status"), "Uid")
                  .starts_with("1234\t"));

  // A group without a user is refused.
  auto group_only = Sleeper("group-only");
  Sec(group_only)->mutable_run_as_group()->set_value(2500);
  auto st = TryCreate(group_only);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("is specified without user"), std::string::npos)
      << Describe(st);
}

TEST_F(CriSecurityIT, ReadonlyRootfs) {
  SetUpPod("readonly");
  auto ro = Sleeper("ro");
  Sec(ro)->set_readonly_rootfs(true);
  const std::string a = Run(ro);
  const std::string b = Run(Sleeper("rw"));
  ASSERT_FALSE(a.empty() || b.empty());
  auto r = ExecSync(a, {"touch", "/newfile"});
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_NE(r.stderr().find("Read-only file system"), std::string::npos) << r.stderr();
  r = ExecSync(a, {"touch", "/etc/hostname"});  // the pod's files are read-only with it
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_EQ(ExecSync(a, {"touch", "/dev/shm/ok"}).exit_code(), 0);  // shm stays writable
  EXPECT_EQ(ExecSync(b, {"touch", "/newfile"}).exit_code(), 0);
  EXPECT_EQ(ExecSync(b, {"touch", "/etc/hostname"}).exit_code(), 0);
}

TEST_F(CriSecurityIT, CapabilitiesAddDropAndAll) {
  SetUpPod("caps");
  const uint64_t daemon_caps =
      Hex(StatusField(ReadText("/proc/" + std::to_string(E().D().Pid()) + "/status"), "CapEff"));
  const std::string plain = Run(Sleeper("default"));
  auto add = Sleeper("add");
  Sec(add)->mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  Sec(add)->mutable_capabilities()->add_drop_capabilities("CHOWN");
  const std::string added = Run(add);
  auto all = Sleeper("add-all");
  Sec(all)->mutable_capabilities()->add_add_capabilities("ALL");
  const std::string with_all = Run(all);
  auto none = Sleeper("drop-all");
  Sec(none)->mutable_capabilities()->add_drop_capabilities("ALL");
  const std::string without = Run(none);
  auto only = Sleeper("drop-all-add-one");
  Sec(only)->mutable_capabilities()->add_drop_capabilities("ALL");
  Sec(only)->mutable_capabilities()->add_add_capabilities("net_bind_service");
  const std::string one = Run(only);
  ASSERT_FALSE(plain.empty() || added.empty() || with_all.empty() || without.empty() ||
               one.empty());

  EXPECT_EQ(CapEff(plain), kDefaultCaps);
  EXPECT_EQ(Hex(SelfStatus(plain, "CapBnd")), kDefaultCaps);
  EXPECT_EQ(CapEff(added), (kDefaultCaps | (1ull << kCapSysAdmin)) & ~(1ull << kCapChown));
  EXPECT_EQ(CapEff(with_all), daemon_caps);
  EXPECT_EQ(CapEff(without), 0u);
  EXPECT_EQ(CapEff(one), 1ull << kCapNetBindService);
  // What the caps mean: chown without CAP_CHOWN fails.
  EXPECT_EQ(ExecSync(plain, {"chown", "1:1", "/tmp"}).exit_code(), 0);
  EXPECT_NE(ExecSync(added, {"chown", "1:1", "/tmp"}).exit_code(), 0);
}

TEST_F(CriSecurityIT, PrivilegedContainersNeedAPrivilegedPod) {
  SetUpPod("unprivileged");
  auto priv = Sleeper("priv");
  Sec(priv)->set_privileged(true);
  auto st = TryCreate(priv);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("no privileged container allowed in sandbox"),
            std::string::npos)
      << Describe(st);
  const std::string plain = Run(Sleeper("plain"));
  ASSERT_FALSE(plain.empty());

  auto pod_cfg = PodConfig("privileged");
  pod_cfg.mutable_linux()->mutable_security_context()->set_privileged(true);
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  const std::string p = RunContainer(pod, pod_cfg, priv);
  ASSERT_FALSE(p.empty());
  const uint64_t daemon_caps =
      Hex(StatusField(ReadText("/proc/" + std::to_string(E().D().Pid()) + "/status"), "CapEff"));
  EXPECT_EQ(CapEff(p), daemon_caps);
  // Host devices, writable /sys, nothing masked, no seccomp.
  EXPECT_EQ(ExecSync(p, {"test", "-c", "/dev/kmsg"}).exit_code(), 0);
  EXPECT_NE(ExecSync(plain, {"test", "-e", "/dev/kmsg"}).exit_code(), 0);
  // sysfs and cgroupfs are asked for read-write. (The kernel still shows /sys read-only: the
  // pod's sysfs superblock, mounted read-only by the unprivileged sandbox, is shared by every
  // mount in its netns — containerd 1.6 behaves the same, containerd#8445.)
  std::map<std::string, std::string> info;
  ContainerStatus(p, &info);
  const auto verbose = VerboseInfo(info);  // range-for on a temporary's member would dangle
  for (const auto& m : verbose["runtimeSpec"]["mounts"]) {
    if (m.value("type", "") != "sysfs" && m.value("type", "") != "cgroup") continue;
    const auto& o = m["options"];
    EXPECT_TRUE(std::find(o.begin(), o.end(), "rw") != o.end()) << m.dump();
    EXPECT_TRUE(std::find(o.begin(), o.end(), "ro") == o.end()) << m.dump();
  }
  const std::string plain_sys = Sh(plain, "grep ' /sys ' /proc/mounts");
  EXPECT_NE(plain_sys.find(" ro,"), std::string::npos) << plain_sys;
  EXPECT_EQ(Sh(p, "grep -c ' /proc/kcore ' /proc/self/mountinfo || true"), "0\n");
  EXPECT_EQ(SelfStatus(p, "Seccomp"), "0");
}

TEST_F(CriSecurityIT, NoNewPrivs) {
  SetUpPod("nnp");
  auto on = Sleeper("on");
  Sec(on)->set_no_new_privs(true);
  const std::string a = Run(on);
  const std::string b = Run(Sleeper("off"));
  ASSERT_FALSE(a.empty() || b.empty());
  EXPECT_EQ(SelfStatus(a, "NoNewPrivs"), "1");
  EXPECT_EQ(SelfStatus(b, "NoNewPrivs"), "0");
}

TEST_F(CriSecurityIT, MaskedAndReadonlyPaths) {
  SetUpPod("paths");
  auto masked = Sleeper("masked");
  Sec(masked)->add_masked_paths("/etc/group");
  Sec(masked)->add_masked_paths("/proc/kcore");
  Sec(masked)->add_readonly_paths("/tmp");
  Sec(masked)->add_readonly_paths("/proc/sys");
  const std::string a = Run(masked);
  // Empty lists: nothing masked or read-only (the kubelet always sends its defaults).
  const std::string b = Run(Sleeper("open"));
  ASSERT_FALSE(a.empty() || b.empty());
  EXPECT_EQ(Sh(a, "cat /etc/group"), "");
  auto r = ExecSync(a, {"touch", "/tmp/test"});
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_NE(r.stderr().find("Read-only file system"), std::string::npos) << r.stderr();
  r = ExecSync(a, {"sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"});
  EXPECT_NE(r.exit_code(), 0);
  EXPECT_NE(Sh(b, "cat /etc/group").find("root:x:0:"), std::string::npos);
  EXPECT_EQ(ExecSync(b, {"touch", "/tmp/test"}).exit_code(), 0);
  EXPECT_EQ(Sh(b, "grep -c ' /proc/kcore ' /proc/self/mountinfo || true"), "0\n");
}

TEST_F(CriSecurityIT, PodSysctls) {
  pod_cfg_ = PodConfig("sysctls");
  auto& sysctls = *pod_cfg_.mutable_linux()->mutable_sysctls();
  sysctls["kernel.shm_rmid_forced"] = "1";                  // IPC namespace
  sysctls["net.ipv4.ip_unprivileged_port_start"] = "2000";  // network namespace
  pod_ = RunPod(pod_cfg_);
  ASSERT_FALSE(pod_.empty());
  const std::string c = Run(Sleeper("reader"));
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(
      Sh(c, "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_unprivileged_port_start"),
      "1\n2000\n");
}

TEST_F(CriSecurityIT, Seccomp) {
  SetUpPod("seccomp");
  const std::string no_mkdir = E().Tmp() + "/seccomp-no-mkdir.json";
  ASSERT_TRUE(fs::WriteFileAtomic(no_mkdir,
                                  R"({"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]})"));
  const std::string no_sethostname = E().Tmp() + "/seccomp-no-sethostname.json";
  ASSERT_TRUE(fs::WriteFileAtomic(no_sethostname,
                                  R"({"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"}]})"));
  auto with = [&](const std::string& name, auto set) {
    auto c = Sleeper(name);
    set(*Sec(c));
    return c;
  };
  using SC = v1::LinuxContainerSecurityContext;
  using Profile = v1::SecurityProfile;
  // unset: unset_seccomp_profile (""): unconfined.
  const std::string unset = Run(Sleeper("unset"));
  const std::string def =
      Run(with("default", [](SC& s) { s.set_seccomp_profile_path("runtime/default"); }));
  const std::string docker =
      Run(with("docker", [](SC& s) { s.set_seccomp_profile_path("docker/default"); }));
  const std::string field = Run(
      with("field", [](SC& s) { s.mutable_seccomp()->set_profile_type(Profile::RuntimeDefault); }));
  const std::string unconfined = Run(with(
      "unconfined", [](SC& s) { s.mutable_seccomp()->set_profile_type(Profile::Unconfined); }));
  const std::string local =
      Run(with("local", [&](SC& s) { s.set_seccomp_profile_path("localhost/" + no_mkdir); }));
  const std::string local_field = Run(with("local-field", [&](SC& s) {
    s.mutable_seccomp()->set_profile_type(Profile::Localhost);
    s.mutable_seccomp()->set_localhost_ref(no_mkdir);
  }));
  // With CAP_SYS_ADMIN: runtime/default allows sethostname, the custom profile does not.
  const std::string admin_default = Run(with("admin-default", [](SC& s) {
    s.set_seccomp_profile_path("runtime/default");
    s.mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  }));
  const std::string admin_blocked = Run(with("admin-blocked", [&](SC& s) {
    s.set_seccomp_profile_path("localhost/" + no_sethostname);
    s.mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  }));
  const std::string admin_unconfined = Run(with("admin-unconfined", [](SC& s) {
    s.set_seccomp_profile_path("unconfined");
    s.mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  }));
  for (const auto* id : {&unset, &def, &docker, &field, &unconfined, &local, &local_field,
                         &admin_default, &admin_blocked, &admin_unconfined}) {
    ASSERT_FALSE(id->empty());
  }

  EXPECT_EQ(SelfStatus(unset, "Seccomp"), "0");
  EXPECT_EQ(SelfStatus(unconfined, "Seccomp"), "0");
  for (const auto* id : {&def, &docker, &field, &local, &local_field}) {
    EXPECT_EQ(SelfStatus(*id, "Seccomp"), "2");
  }
  // The default profile refuses unshare(2) without CAP_SYS_ADMIN; a new user namespace needs
  // no capability, so only seccomp stands in the way.
  EXPECT_EQ(ExecSync(unconfined, {"unshare", "-U", "true"}).exit_code(), 0);
  for (const auto* id : {&def, &docker, &field}) {
    auto r = ExecSync(*id, {"unshare", "-U", "true"});
    EXPECT_NE(r.exit_code(), 0) << "unshare -U was allowed under the default profile";
    EXPECT_NE(r.stderr().find("Operation not permitted"), std::string::npos) << r.stderr();
  }
  for (const auto* id : {&local, &local_field}) {
    auto r = ExecSync(*id, {"mkdir", "/tmp/blocked"});
    EXPECT_NE(r.exit_code(), 0);
    EXPECT_NE(r.stderr().find("Operation not permitted"), std::string::npos) << r.stderr();
  }
  EXPECT_EQ(ExecSync(def, {"mkdir", "/tmp/allowed"}).exit_code(), 0);
  // sethostname: no caps -> refused; SYS_ADMIN under runtime/default or unconfined -> allowed;
  // SYS_ADMIN under a profile blocking it -> refused.
  EXPECT_NE(ExecSync(def, {"hostname", "renamed"}).exit_code(), 0);
  EXPECT_EQ(ExecSync(admin_default, {"hostname", "renamed"}).exit_code(), 0);
  EXPECT_EQ(ExecSync(admin_unconfined, {"hostname", "renamed"}).exit_code(), 0);
  EXPECT_NE(ExecSync(admin_blocked, {"hostname", "renamed"}).exit_code(), 0);

  // Not a profile.
  auto st = TryCreate(with("bad", [](SC& s) { s.set_seccomp_profile_path("notaprofile"); }));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("notaprofile"), std::string::npos) << Describe(st);
  st = TryCreate(with("missing", [&](SC& s) {
    s.set_seccomp_profile_path("localhost/" + E().Tmp() + "/no-such-profile.json");
  }));
  EXPECT_FALSE(st.ok());

  // Privileged containers ignore the profile.
  auto pod_cfg = PodConfig("seccomp-priv");
  pod_cfg.mutable_linux()->mutable_security_context()->set_privileged(true);
  const std::string pod = RunPod(pod_cfg);
  ASSERT_FALSE(pod.empty());
  auto priv = with("priv", [&](SC& s) {
    s.set_privileged(true);
    s.set_seccomp_profile_path("localhost/" + no_mkdir);
  });
  const std::string p = RunContainer(pod, pod_cfg, priv);
  ASSERT_FALSE(p.empty());
  EXPECT_EQ(SelfStatus(p, "Seccomp"), "0");
  EXPECT_EQ(ExecSync(p, {"mkdir", "/tmp/allowed"}).exit_code(), 0);
}

TEST_F(CriSecurityIT, NamespaceOptions) {
  // Pod PID (the default): PID 1 is the sandbox's pause; IPC shared with the pod.
  SetUpPod("ns-pod");
  const std::string a = Run(Sleeper("a"));
  const std::string b = Run(Sleeper("b"));
  auto own = Sleeper("own-pid");
  Sec(own)->mutable_namespace_options()->set_pid(v1::CONTAINER);
  const std::string c = Run(own);
  ASSERT_FALSE(a.empty() || b.empty() || c.empty());
  EXPECT_EQ(Sh(a, "cat /proc/1/cmdline"), std::string("/pause\0", 7));
  EXPECT_NE(Sh(a, "readlink /proc/self/ns/pid"), NsLink("pid") + "\n");
  EXPECT_EQ(Sh(a, "readlink /proc/self/ns/pid"), Sh(b, "readlink /proc/self/ns/pid"));
  EXPECT_EQ(Sh(a, "readlink /proc/self/ns/ipc"), Sh(b, "readlink /proc/self/ns/ipc"));
  EXPECT_NE(Sh(a, "readlink /proc/self/ns/ipc"), NsLink("ipc") + "\n");
  // Container PID: its own namespace, its command is PID 1.
  EXPECT_EQ(Sh(c, "cat /proc/1/cmdline"), std::string("sleep\0"
                                                      "3600\0",
                                                      11));
  EXPECT_NE(Sh(c, "readlink /proc/self/ns/pid"), Sh(a, "readlink /proc/self/ns/pid"));
  // Target PID: the namespace of another container of the pod.
  auto target = Sleeper("target");
  Sec(target)->mutable_namespace_options()->set_pid(v1::TARGET);
  Sec(target)->mutable_namespace_options()->set_target_id(c);
  const std::string t = Run(target);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(Sh(t, "readlink /proc/self/ns/pid"), Sh(c, "readlink /proc/self/ns/pid"));

  // Host PID and IPC: the pod and its container in the host's namespaces.
  auto host_cfg = PodConfig("ns-host");
  auto* ns = host_cfg.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_pid(v1::NODE);
  ns->set_ipc(v1::NODE);
  const std::string host_pod = RunPod(host_cfg);
  ASSERT_FALSE(host_pod.empty());
  auto host = Sleeper("host");
  Sec(host)->mutable_namespace_options()->set_pid(v1::NODE);
  Sec(host)->mutable_namespace_options()->set_ipc(v1::NODE);
  const std::string h = RunContainer(host_pod, host_cfg, host);
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(Sh(h, "readlink /proc/self/ns/pid"), NsLink("pid") + "\n");
  EXPECT_EQ(Sh(h, "readlink /proc/self/ns/ipc"), NsLink("ipc") + "\n");
  EXPECT_EQ(Sh(h, "cat /proc/1/comm"), ReadText("/proc/1/comm"));
  auto status = PodStatus(host_pod);
  EXPECT_EQ(status.linux().namespaces().options().pid(), v1::NODE);
  EXPECT_EQ(status.linux().namespaces().options().ipc(), v1::NODE);
}

TEST_F(CriSecurityIT, Devices) {
  SetUpPod("devices");
  // /dev/null is always allowed by runc (a default device): it checks the node; /dev/fuse (not
  // a default device) checks the cgroup rule's permissions, as open(2) of the node.
  const bool fuse = ::access("/dev/fuse", F_OK) == 0;
  auto device = [](v1::ContainerConfig& c, const std::string& host, const std::string& path,
                   const std::string& perms) {
    auto* d = c.add_devices();
    d->set_host_path(host);
    d->set_container_path(path);
    d->set_permissions(perms);
  };
  auto rw = Sleeper("rw");
  device(rw, "/dev/null", "/dev/berth-null", "rwm");
  if (fuse) device(rw, "/dev/fuse", "/dev/berth-fuse", "rwm");
  auto ro = Sleeper("ro");
  if (fuse) device(ro, "/dev/fuse", "/dev/berth-fuse", "r");
  const std::string a = Run(rw);
  const std::string b = Run(ro);
  ASSERT_FALSE(a.empty() || b.empty());
  EXPECT_EQ(Sh(a, "stat -c %F:%t:%T /dev/berth-null"), "character special file:1:3\n");
  EXPECT_EQ(ExecSync(a, {"sh", "-c", "echo x > /dev/berth-null"}).exit_code(), 0);
  if (!fuse) GTEST_SKIP() << "/dev/fuse is absent: no non-default device to check permissions on";
  EXPECT_EQ(ExecSync(a, {"sh", "-c", "exec 3<>/dev/berth-fuse"}).exit_code(), 0);
  EXPECT_EQ(ExecSync(b, {"sh", "-c", "exec 3</dev/berth-fuse"}).exit_code(), 0);
  auto r = ExecSync(b, {"sh", "-c", "exec 3>/dev/berth-fuse"});
  EXPECT_NE(r.exit_code(), 0) << "the device cgroup let a read-only device be opened for writing";
  EXPECT_NE(r.stderr().find("Operation not permitted"), std::string::npos) << r.stderr();
  // Not asked for: not there.
  EXPECT_NE(ExecSync(b, {"test", "-e", "/dev/berth-null"}).exit_code(), 0);
}

TEST_F(CriSecurityIT, AppArmorAndSelinuxAreAbsentHere) {
  const bool apparmor = Trim(ReadText("/sys/module/apparmor/parameters/enabled")) == "Y";
  const bool selinux = ::access("/sys/fs/selinux/enforce", F_OK) == 0;
  if (!apparmor) {
    // Without AppArmor a profile cannot be honoured: containerd refuses it.
    SetUpPod("apparmor");
    auto c = Sleeper("profiled");
    Sec(c)->mutable_apparmor()->set_profile_type(v1::SecurityProfile::Localhost);
    Sec(c)->mutable_apparmor()->set_localhost_ref("berth-test");
    auto st = TryCreate(c);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.error_message().find("apparmor is not supported"), std::string::npos)
        << Describe(st);
    const std::string plain = Run(Sleeper("unconfined"));
    ASSERT_FALSE(plain.empty());
  }
  if (!apparmor || !selinux) {
    GTEST_SKIP() << "AppArmor profile enforcement and SELinux labels cannot be tested on this "
                    "host: AppArmor is "
                 << (apparmor ? "enabled" : "not enabled (/sys/module/apparmor absent)")
                 << ", SELinux is "
                 << (selinux ? "enabled" : "not enabled (/sys/fs/selinux absent)")
                 << "; berth ignores SELinux options as containerd does with enable_selinux = "
                    "false";
  }
}

}  // namespace
}  // namespace berth::testing

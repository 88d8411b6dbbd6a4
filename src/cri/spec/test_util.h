#pragma once
// Shared pieces of the cri/spec tests: fixed host facts, a temp sandbox with its files and a
// container rootfs holding /etc/passwd and /etc/group, and bind mounts undone even on failure.
#include <sys/mount.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/fs.h"
#include "cri/spec/spec.h"

namespace berth::cri::spec::testing {

using json = nlohmann::json;

// The 41 capabilities in kernel order.
inline std::vector<std::string> AllCaps() {
  return {"CAP_CHOWN",
          "CAP_DAC_OVERRIDE",
          "CAP_DAC_READ_SEARCH",
          "CAP_FOWNER",
          "CAP_FSETID",
          "CAP_KILL",
          "CAP_SETGID",
          "CAP_SETUID",
          "CAP_SETPCAP",
          "CAP_LINUX_IMMUTABLE",
          "CAP_NET_BIND_SERVICE",
          "CAP_NET_BROADCAST",
          "CAP_NET_ADMIN",
          "CAP_NET_RAW",
          "CAP_IPC_LOCK",
          "CAP_IPC_OWNER",
          "CAP_SYS_MODULE",
          "CAP_SYS_RAWIO",
          "CAP_SYS_CHROOT",
          "CAP_SYS_PTRACE",
          "CAP_SYS_PACCT",
          "CAP_SYS_ADMIN",
          "CAP_SYS_BOOT",
          "CAP_SYS_NICE",
          "CAP_SYS_RESOURCE",
          "CAP_SYS_TIME",
          "CAP_SYS_TTY_CONFIG",
          "CAP_MKNOD",
          "CAP_LEASE",
          "CAP_AUDIT_WRITE",
          "CAP_AUDIT_CONTROL",
          "CAP_SETFCAP",
          "CAP_MAC_OVERRIDE",
          "CAP_MAC_ADMIN",
          "CAP_SYSLOG",
          "CAP_WAKE_ALARM",
          "CAP_BLOCK_SUSPEND",
          "CAP_AUDIT_READ",
          "CAP_PERFMON",
          "CAP_BPF",
          "CAP_CHECKPOINT_RESTORE"};
}

// containerd's defaults with a deterministic host: cgroup v1, seccomp but no AppArmor, swap and
// hugetlb controllers, a root daemon with every capability and oom_score_adj 0, amd64 on 6.1.
inline Options TestOptions() {
  Options o;
  o.host.cgroup_mode = CgroupMode::kV1;
  o.host.seccomp_enabled = true;
  o.host.apparmor_enabled = false;
  o.host.swap_controller = true;
  o.host.hugetlb_controller = true;
  o.host.oom_score_adj = 0;
  o.host.capabilities = AllCaps();
  o.host.hostname = "node-1";
  o.host.seccomp = {"amd64", "6.1.0-18-amd64"};
  return o;
}

inline std::vector<std::string> Strings(const json& j) {
  std::vector<std::string> out;
  if (j.is_array()) {
    for (const auto& v : j) out.push_back(v.get<std::string>());
  }
  return out;
}

// The mount of `s` at `destination`, or null.
inline json MountAt(const json& s, const std::string& destination) {
  for (const auto& m : s["mounts"]) {
    if (m["destination"] == destination) return m;
  }
  return nullptr;
}

inline json Namespace(const json& s, const std::string& type) {
  for (const auto& n : s["linux"]["namespaces"]) {
    if (n["type"] == type) return n;
  }
  return nullptr;
}

// Temp dirs of one test: a sandbox dir with hostname, hosts, resolv.conf and shm, and a rootfs
// with /etc/passwd and /etc/group.
class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("cri-spec-test-");
    ASSERT_TRUE(dir);
    dir_ = std::make_unique<fs::TempDir>(std::move(*dir));
    sandbox_dir_ = dir_->Path() + "/sandbox";
    rootfs_ = dir_->Path() + "/rootfs";
    std::filesystem::create_directories(sandbox_dir_ + "/shm");
    std::filesystem::create_directories(rootfs_ + "/etc");
    Write(sandbox_dir_ + "/hostname", "pod-host\n");
    Write(sandbox_dir_ + "/hosts", "127.0.0.1 localhost\n");
    Write(sandbox_dir_ + "/resolv.conf", "nameserver 10.0.0.10\n");
    Write(rootfs_ + "/etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\n"
          "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
          "alice:x:1000:1000::/home/alice:/bin/sh\n"
          "bob:x:1001:1001::/home/bob:/bin/sh\n");
    Write(rootfs_ + "/etc/group",
          "root:x:0:\n"
          "wheel:x:10:root,alice\n"
          "audio:x:29:alice\n"
          "alice:x:1000:\n"
          "bob:x:1001:\n"
          "video:x:44:bob\n"
          "staff:x:50:\n");
  }

  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }

  std::string Path(const std::string& rel) const { return dir_->Path() + "/" + rel; }

  std::unique_ptr<fs::TempDir> dir_;
  std::string sandbox_dir_;
  std::string rootfs_;
};

// Mount points made by a test, detached in reverse order when it ends, passed or not.
class MountGuard {
 public:
  MountGuard() = default;
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;
  ~MountGuard() {
    for (auto it = targets_.rbegin(); it != targets_.rend(); ++it) {
      ::umount2(it->c_str(), MNT_DETACH);
    }
  }
  // Binds `source` on `target`, remembered for unmounting. False if the kernel refuses.
  bool Bind(const std::string& source, const std::string& target) {
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) return false;
    targets_.push_back(target);
    return true;
  }
  // MS_SHARED / MS_SLAVE / MS_PRIVATE on a mount point.
  static bool Propagation(const std::string& target,
                          unsigned long flag) {  // NOLINT(google-runtime-int)
    return ::mount(nullptr, target.c_str(), nullptr, flag, nullptr) == 0;
  }

 private:
  std::vector<std::string> targets_;
};

// A container of a pod "web" (sandbox pid 4242) running the image's /entry serve --port=80.
inline constexpr const char* kContainerId =
    "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
inline constexpr const char* kContainerSandboxId =
    "5b1c0f7d3f0e4a6c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c";

class ContainerSpecTest : public SpecTest {
 protected:
  ContainerSpecInput Input() {
    ContainerSpecInput in;
    in.id = kContainerId;
    in.sandbox_id = kContainerSandboxId;
    in.sandbox_pid = 4242;
    in.container_name = "app";
    in.image_name = "docker.io/library/busybox:1.36";
    in.config.mutable_metadata()->set_name("app");
    in.config.mutable_image()->set_image("busybox:1.36");
    auto* md = in.sandbox_config.mutable_metadata();
    md->set_name("web");
    md->set_namespace_("default");
    md->set_uid("uid-1");
    in.sandbox_config.set_hostname("web-host");
    in.image.env = {"PATH=/usr/local/bin:/bin", "IMAGE=1"};
    in.image.entrypoint = {"/entry"};
    in.image.cmd = {"serve", "--port=80"};
    in.image.working_dir = "/srv";
    in.hostname_path = sandbox_dir_ + "/hostname";
    in.hosts_path = sandbox_dir_ + "/hosts";
    in.resolv_conf_path = sandbox_dir_ + "/resolv.conf";
    in.shm_path = sandbox_dir_ + "/shm";
    in.rootfs = rootfs_;
    return in;
  }
  static ::runtime::v1::LinuxContainerSecurityContext* Security(ContainerSpecInput& in) {
    return in.config.mutable_linux()->mutable_security_context();
  }
  static ::runtime::v1::LinuxContainerResources* Res(ContainerSpecInput& in) {
    return in.config.mutable_linux()->mutable_resources();
  }
  static ::runtime::v1::Mount* AddMount(ContainerSpecInput& in, const std::string& dst,
                                        const std::string& src) {
    auto* m = in.config.add_mounts();
    m->set_container_path(dst);
    m->set_host_path(src);
    return m;
  }
  json Spec(const ContainerSpecInput& in, const Options& opts = TestOptions()) {
    auto s = ContainerSpec(in, opts);
    EXPECT_TRUE(s) << s.error().ToString();
    return s ? *s : json();
  }
  std::string Fails(const ContainerSpecInput& in, const Options& opts = TestOptions()) {
    auto s = ContainerSpec(in, opts);
    EXPECT_FALSE(s);
    return s ? "" : s.error().ToString();
  }
};

}  // namespace berth::cri::spec::testing

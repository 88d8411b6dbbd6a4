// This host's runc runs what SandboxSpec and ContainerSpec produce, with this host's facts
// (DetectHost: no CAP_SYS_RESOURCE here, so the oom_score_adj clamp is what lets runc start).
// Containers, runc state and cgroups are removed whatever happens.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "cri/spec/spec.h"
#include "cri/spec/test_util.h"

namespace berth::cri::spec {
namespace {

using json = nlohmann::json;

constexpr const char* kRunc = "/usr/sbin/runc";

class RuncTest : public testing::SpecTest {
 protected:
  void SetUp() override {
    SpecTest::SetUp();
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (::access(kRunc, X_OK) != 0) GTEST_SKIP() << "no runc";
    if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "no busybox";
    std::filesystem::create_directories(rootfs_ + "/bin");
    std::filesystem::copy_file("/bin/busybox", rootfs_ + "/bin/busybox");
    for (const char* applet : {"sh", "id", "cat", "true"}) {
      std::filesystem::create_symlink("busybox", rootfs_ + "/bin/" + applet);
    }
    auto host = DetectHost();
    ASSERT_TRUE(host) << host.error().ToString();
    opts_.host = *host;
    parent_ = "/berth-cri-spec-test-" + std::to_string(::getpid());
  }

  void TearDown() override {
    for (const auto& id : started_) {
      std::string del = std::string(kRunc) + " --root " + Path("runc") + " delete --force " + id +
                        " >/dev/null 2>&1";
      (void)std::system(del.c_str());
    }
    // The parent cgroup runc created in each v1 controller (or the v2 tree).
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
      std::filesystem::remove(entry.path().string() + parent_, ec);
    }
    std::filesystem::remove("/sys/fs/cgroup" + parent_, ec);
  }

  // Runs the spec as container `id` in the bundle dir_ (root "rootfs" = rootfs_); stdout+stderr.
  std::string Run(const json& spec, const std::string& id, int* rc) {
    std::ofstream(Path("config.json")) << spec.dump();
    started_.push_back(id);
    std::string cmd = std::string(kRunc) + " --root " + Path("runc") + " run --bundle " +
                      dir_->Path() + " " + id + " </dev/null 2>&1";
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    *rc = ::pclose(p);
    return out;
  }

  Options opts_;
  std::string parent_;
  std::vector<std::string> started_;
};

TEST_F(RuncTest, SandboxSpecRuns) {
  SandboxSpecInput in;
  in.id = "berth-spec-sandbox-" + std::to_string(::getpid());
  in.config.mutable_metadata()->set_name("web");
  in.config.mutable_linux()->set_cgroup_parent(parent_);
  auto* sc = in.config.mutable_linux()->mutable_security_context();
  sc->mutable_namespace_options()->set_network(::runtime::v1::NODE);  // no netns to pin here
  sc->mutable_seccomp()->set_profile_type(::runtime::v1::SecurityProfile::RuntimeDefault);
  in.image.entrypoint = {"/bin/sh", "-c", "echo sandbox ok"};
  in.resolv_conf_path = sandbox_dir_ + "/resolv.conf";
  in.shm_path = sandbox_dir_ + "/shm";
  in.rootfs = rootfs_;
  auto s = SandboxSpec(in, opts_);
  ASSERT_TRUE(s) << s.error().ToString();
  int rc = -1;
  std::string out = Run(*s, in.id, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "sandbox ok\n");
}

TEST_F(RuncTest, ContainerSpecRuns) {
  ContainerSpecInput in;
  in.id = "berth-spec-container-" + std::to_string(::getpid());
  in.sandbox_id = "sandbox";
  in.sandbox_pid = static_cast<uint32_t>(::getpid());  // join this process's namespaces
  in.container_name = "app";
  in.image_name = "busybox";
  in.config.add_command("/bin/sh");
  in.config.add_args("-c");
  in.config.add_args("id -u; id -G; cat /etc/hostname; echo ok");
  auto* sc = in.config.mutable_linux()->mutable_security_context();
  sc->mutable_run_as_user()->set_value(1000);
  sc->add_supplemental_groups(5000);
  sc->set_seccomp_profile_path("runtime/default");
  sc->add_masked_paths("/proc/kcore");
  sc->add_readonly_paths("/proc/sys");
  auto* res = in.config.mutable_linux()->mutable_resources();
  res->set_oom_score_adj(-997);  // kubelet's for critical pods: clamped to what runc may set
  res->set_cpu_shares(512);
  in.sandbox_config.mutable_linux()->set_cgroup_parent(parent_);
  in.hostname_path = sandbox_dir_ + "/hostname";
  in.hosts_path = sandbox_dir_ + "/hosts";
  in.resolv_conf_path = sandbox_dir_ + "/resolv.conf";
  in.shm_path = sandbox_dir_ + "/shm";
  in.rootfs = rootfs_;
  auto s = ContainerSpec(in, opts_);
  ASSERT_TRUE(s) << s.error().ToString();
  int rc = -1;
  std::string out = Run(*s, in.id, &rc);
  EXPECT_EQ(rc, 0) << out << "\n" << s->dump(2);
  EXPECT_EQ(out, "1000\n1000 10 29 5000\npod-host\nok\n");
}

}  // namespace
}  // namespace berth::cri::spec

// ContainerSpec: users and groups, AppArmor, seccomp.
#include <gtest/gtest.h>

#include "cri/spec/spec.h"
#include "cri/spec/test_util.h"

namespace berth::cri::spec {
namespace {

using testing::ContainerSpecTest;
using testing::TestOptions;
using json = nlohmann::json;

// ---- Users ----

TEST_F(ContainerSpecTest, UserFromImage) {
  auto in = Input();
  json s = Spec(in);  // no user anywhere: root, with root's groups from /etc/group
  EXPECT_EQ(s["process"]["user"], json({{"uid", 0}, {"gid", 0}, {"additionalGids", {0, 10}}}));
  in.image.user = "alice";
  s = Spec(in);
  EXPECT_EQ(s["process"]["user"],
            json({{"uid", 1000}, {"gid", 1000}, {"additionalGids", {10, 29, 1000}}}));
  in.image.user = "bob:staff";
  s = Spec(in);
  EXPECT_EQ(s["process"]["user"], json({{"uid", 1001}, {"gid", 50}, {"additionalGids", {44, 50}}}));
}

TEST_F(ContainerSpecTest, UserFromSecurityContext) {
  auto in = Input();
  in.image.user = "bob";
  Security(in)->mutable_run_as_user()->set_value(1000);  // alice's uid
  json s = Spec(in);
  EXPECT_EQ(s["process"]["user"],
            json({{"uid", 1000}, {"gid", 1000}, {"additionalGids", {10, 29, 1000}}}));
  // run_as_username wins over run_as_user; run_as_group is appended.
  Security(in)->set_run_as_username("bob");
  Security(in)->mutable_run_as_group()->set_value(2000);
  for (int64_t g : {5000, 44, 5000}) Security(in)->add_supplemental_groups(g);
  s = Spec(in);
  EXPECT_EQ(s["process"]["user"],
            json({{"uid", 1001}, {"gid", 2000}, {"additionalGids", {44, 2000, 5000}}}));
  // A uid unknown to /etc/passwd: gid 0.
  Security(in)->clear_run_as_username();
  Security(in)->clear_run_as_group();
  Security(in)->mutable_run_as_user()->set_value(4321);
  s = Spec(in);
  EXPECT_EQ(s["process"]["user"]["uid"], 4321);
  EXPECT_EQ(s["process"]["user"]["gid"], 0);
}

TEST_F(ContainerSpecTest, UserErrors) {
  auto in = Input();
  Security(in)->mutable_run_as_group()->set_value(7);
  EXPECT_EQ(Fails(in),
            "failed to generate user string: user group \"7\" is specified without user");
  Security(in)->clear_run_as_group();
  Security(in)->set_run_as_username("mallory");
  auto err = ContainerSpec(in, TestOptions());
  ASSERT_FALSE(err);
  EXPECT_TRUE(err.error().Is(Errc::kNotFound)) << err.error().ToString();
}

// ---- AppArmor ----

TEST_F(ContainerSpecTest, AppArmorWithoutHostSupport) {
  auto in = Input();
  EXPECT_FALSE(Spec(in)["process"].contains("apparmorProfile"));  // unset: no error
  Security(in)->set_apparmor_profile("unconfined");
  EXPECT_TRUE(ContainerSpec(in, TestOptions()));
  Security(in)->set_apparmor_profile("localhost/my-profile");
  EXPECT_EQ(Fails(in), "failed to generate apparmor spec opts: apparmor is not supported");
  Security(in)->set_apparmor_profile("runtime/default");
  EXPECT_EQ(Fails(in), "failed to generate apparmor spec opts: apparmor is not supported");
  Security(in)->set_apparmor_profile("bogus");
  EXPECT_EQ(Fails(in), "failed to generate apparmor spec opts: invalid profile \"bogus\"");
  // The message wins over the string; an empty message means RuntimeDefault.
  Security(in)->mutable_apparmor();
  EXPECT_EQ(Fails(in), "failed to generate apparmor spec opts: apparmor is not supported");
  Security(in)->mutable_apparmor()->set_profile_type(::runtime::v1::SecurityProfile::Unconfined);
  EXPECT_TRUE(ContainerSpec(in, TestOptions()));
}

TEST_F(ContainerSpecTest, AppArmorOnAHostWithIt) {
  auto in = Input();
  Options opts = TestOptions();
  opts.host.apparmor_enabled = true;
  EXPECT_EQ(Spec(in, opts)["process"]["apparmorProfile"], "cri-containerd.apparmor.d");
  Security(in)->set_apparmor_profile("unconfined");
  EXPECT_FALSE(Spec(in, opts)["process"].contains("apparmorProfile"));
  opts.disable_apparmor = true;
  Security(in)->set_apparmor_profile("runtime/default");
  EXPECT_EQ(Fails(in, opts), "failed to generate apparmor spec opts: apparmor is not supported");
  // Privileged: no default profile.
  opts.disable_apparmor = false;
  Security(in)->set_privileged(true);
  in.sandbox_config.mutable_linux()->mutable_security_context()->set_privileged(true);
  EXPECT_FALSE(Spec(in, opts)["process"].contains("apparmorProfile"));
}

// ---- Seccomp ----

TEST_F(ContainerSpecTest, SeccompProfiles) {
  auto in = Input();
  Options opts = TestOptions();
  EXPECT_FALSE(Spec(in)["linux"].contains("seccomp"));  // unset, unset_seccomp_profile ""
  for (const char* name : {"runtime/default", "docker/default"}) {
    Security(in)->set_seccomp_profile_path(name);
    json s = Spec(in);
    EXPECT_EQ(s["linux"]["seccomp"], oci::DefaultSeccompProfile(s, opts.host.seccomp)) << name;
    EXPECT_EQ(s["linux"]["seccomp"]["syscalls"].size(), 11U) << name;
  }
  Security(in)->set_seccomp_profile_path("unconfined");
  EXPECT_FALSE(Spec(in)["linux"].contains("seccomp"));
  Security(in)->set_seccomp_profile_path("foo/bar");
  EXPECT_EQ(Fails(in), "failed to generate seccomp spec opts: invalid profile \"foo/bar\"");

  // localhost/<path>: the host file.
  std::string profile = Path("profile.json");
  Write(profile, R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sethostname"],
                     "action":"SCMP_ACT_ERRNO"}]})");
  Security(in)->set_seccomp_profile_path("localhost/" + profile);
  EXPECT_EQ(Spec(in)["linux"]["seccomp"],
            json::parse(R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["sethostname"],"action":"SCMP_ACT_ERRNO"}]})"));
  Security(in)->set_seccomp_profile_path("localhost/" + Path("missing.json"));
  EXPECT_NE(Fails(in).find("cannot load seccomp profile \"" + Path("missing.json") + "\""),
            std::string::npos);

  // The SecurityProfile message wins over the deprecated string.
  auto* sp = Security(in)->mutable_seccomp();
  sp->set_profile_type(::runtime::v1::SecurityProfile::Localhost);
  sp->set_localhost_ref(profile);
  EXPECT_EQ(Spec(in)["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
  sp->set_profile_type(::runtime::v1::SecurityProfile::RuntimeDefault);
  EXPECT_EQ(Fails(in),
            "failed to generate seccomp spec opts: seccomp config invalid LocalhostRef must only "
            "be set if ProfileType is Localhost");
  sp->clear_localhost_ref();
  EXPECT_EQ(Spec(in)["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
  sp->set_profile_type(::runtime::v1::SecurityProfile::Unconfined);
  EXPECT_FALSE(Spec(in)["linux"].contains("seccomp"));
}

TEST_F(ContainerSpecTest, SeccompUnsetProfileOption) {
  auto in = Input();
  Options opts = TestOptions();
  opts.unset_seccomp_profile = "runtime/default";
  EXPECT_TRUE(Spec(in, opts)["linux"].contains("seccomp"));
  Security(in)->set_seccomp_profile_path("unconfined");  // an explicit request wins
  EXPECT_FALSE(Spec(in, opts)["linux"].contains("seccomp"));
  opts.unset_seccomp_profile = "bad";
  Security(in)->clear_seccomp_profile_path();
  EXPECT_EQ(Fails(in, opts), "failed to generate seccomp spec opts: invalid profile \"bad\"");
}

TEST_F(ContainerSpecTest, SeccompFollowsCapabilities) {
  auto in = Input();
  Security(in)->set_seccomp_profile_path("runtime/default");
  Security(in)->mutable_capabilities()->add_add_capabilities("SYS_ADMIN");
  json s = Spec(in);
  // CAP_SYS_ADMIN: its rule, and no clone mask / clone3 ENOSYS pair.
  const json& rules = s["linux"]["seccomp"]["syscalls"];
  EXPECT_EQ(rules.back()["names"][0], "bpf");
  for (const auto& r : rules) EXPECT_NE(r["action"], "SCMP_ACT_ERRNO");
}

TEST_F(ContainerSpecTest, SeccompWithoutKernelSupport) {
  auto in = Input();
  Options opts = TestOptions();
  opts.host.seccomp_enabled = false;
  EXPECT_TRUE(ContainerSpec(in, opts));  // nothing asked for
  Security(in)->set_seccomp_profile_path("unconfined");
  EXPECT_TRUE(ContainerSpec(in, opts));
  Security(in)->set_seccomp_profile_path("runtime/default");
  EXPECT_EQ(Fails(in, opts), "failed to generate seccomp spec opts: seccomp is not supported");
}

}  // namespace
}  // namespace berth::cri::spec

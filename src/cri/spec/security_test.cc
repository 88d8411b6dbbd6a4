// The helpers under the specs: users, profiles, paths, annotations, oom clamping, host facts.
#include <gtest/gtest.h>

#include "cri/spec/internal.h"
#include "cri/spec/test_util.h"

namespace berth::cri::spec {
namespace {

using ::runtime::v1::SecurityProfile;
using testing::TestOptions;

::runtime::v1::Int64Value Int(int64_t v) {
  ::runtime::v1::Int64Value i;
  i.set_value(v);
  return i;
}

TEST(UserString, Combinations) {
  auto uid = Int(1000);
  auto gid = Int(2000);
  auto zero = Int(0);
  EXPECT_EQ(*internal::UserString("", nullptr, nullptr), "");
  EXPECT_EQ(*internal::UserString("alice", nullptr, nullptr), "alice");
  EXPECT_EQ(*internal::UserString("alice", &uid, nullptr), "alice");
  EXPECT_EQ(*internal::UserString("alice", &uid, &gid), "alice:2000");
  EXPECT_EQ(*internal::UserString("alice", nullptr, &gid), "alice:2000");
  EXPECT_EQ(*internal::UserString("", &uid, nullptr), "1000");
  EXPECT_EQ(*internal::UserString("", &zero, &zero), "0:0");
  auto err = internal::UserString("", nullptr, &gid);
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().ToString(), "user group \"2000\" is specified without user");
}

TEST(ChooseProfile, MessagePathUnset) {
  SecurityProfile message;
  message.set_profile_type(SecurityProfile::Unconfined);
  auto p = internal::ChooseProfile(&message, "runtime/default", "runtime/default");
  ASSERT_TRUE(p && *p);
  EXPECT_EQ((*p)->profile_type(), SecurityProfile::Unconfined);
  struct Case {
    const char* path;
    const char* unset;
    SecurityProfile::ProfileType type;
    const char* ref;
  };
  for (const Case& c : {Case{"runtime/default", "", SecurityProfile::RuntimeDefault, ""},
                        Case{"docker/default", "", SecurityProfile::RuntimeDefault, ""},
                        Case{"unconfined", "runtime/default", SecurityProfile::Unconfined, ""},
                        Case{"localhost/p.json", "", SecurityProfile::Localhost, "p.json"},
                        Case{"localhost//abs/p", "", SecurityProfile::Localhost, "/abs/p"},
                        Case{"", "runtime/default", SecurityProfile::RuntimeDefault, ""}}) {
    p = internal::ChooseProfile(nullptr, c.path, c.unset);
    ASSERT_TRUE(p && *p) << c.path;
    EXPECT_EQ((*p)->profile_type(), c.type) << c.path;
    EXPECT_EQ((*p)->localhost_ref(), c.ref) << c.path;
  }
  p = internal::ChooseProfile(nullptr, "", "");
  ASSERT_TRUE(p);
  EXPECT_FALSE(*p);
  p = internal::ChooseProfile(nullptr, "Localhost/x", "");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().ToString(), "invalid profile \"Localhost/x\"");
}

TEST(Paths, CleanAndBase) {
  EXPECT_EQ(internal::CleanPath(""), ".");
  EXPECT_EQ(internal::CleanPath("/"), "/");
  EXPECT_EQ(internal::CleanPath("//a//b/./c/.."), "/a/b");
  EXPECT_EQ(internal::CleanPath("/../x"), "/x");
  EXPECT_EQ(internal::CleanPath("a/../../b/"), "../b");
  EXPECT_EQ(internal::BaseName(""), ".");
  EXPECT_EQ(internal::BaseName("///"), "/");
  EXPECT_EQ(internal::BaseName("/a/b.slice/"), "b.slice");
  EXPECT_EQ(internal::BaseName("kubepods"), "kubepods");
}

TEST(CgroupsPath, ParentRules) {
  EXPECT_EQ(CgroupsPath("/kubepods/pod1", "abc"), "/kubepods/pod1/abc");
  EXPECT_EQ(CgroupsPath("/kubepods/pod1/", "abc"), "/kubepods/pod1/abc");
  EXPECT_EQ(CgroupsPath("kubepods", "abc"), "kubepods/abc");
  EXPECT_EQ(CgroupsPath("system.slice", "abc"), "system.slice:cri-containerd:abc");
  EXPECT_EQ(CgroupsPath("/a.slice/b.slice/", "abc"), "b.slice:cri-containerd:abc");
  EXPECT_EQ(CgroupsPath("/a.slice/pod", "abc"), "/a.slice/pod/abc");
}

TEST(ClampOomScoreAdj, RestrictOrNoCapSysResource) {
  Options opts = TestOptions();
  opts.host.oom_score_adj = -500;
  EXPECT_EQ(ClampOomScoreAdj(-998, opts), -998);
  opts.restrict_oom_score_adj = true;
  EXPECT_EQ(ClampOomScoreAdj(-998, opts), -500);
  EXPECT_EQ(ClampOomScoreAdj(100, opts), 100);
  opts.restrict_oom_score_adj = false;
  opts.host.capabilities = {"CAP_SYS_ADMIN"};
  EXPECT_EQ(ClampOomScoreAdj(-998, opts), -500);
}

TEST(PassthroughAnnotations, Globs) {
  google::protobuf::Map<std::string, std::string> a;
  a["io.katacontainers.config.hypervisor.kernel"] = "k";
  a["example.com/x"] = "1";
  a["example.com/sub/x"] = "2";
  a["plain"] = "3";
  auto out = internal::PassthroughAnnotations(a, {"io.katacontainers.*", "example.com/*"});
  EXPECT_EQ(out, (std::map<std::string, std::string>{
                     {"example.com/x", "1"}, {"io.katacontainers.config.hypervisor.kernel", "k"}}));
  EXPECT_TRUE(internal::PassthroughAnnotations(a, {}).empty());
  EXPECT_EQ(internal::PassthroughAnnotations(a, {"*"}).size(), 2U);  // "*" stops at '/'
}

TEST(DetectHost, ThisMachine) {
  auto host = DetectHost();
  ASSERT_TRUE(host) << host.error().ToString();
  EXPECT_FALSE(host->hostname.empty());
  EXPECT_FALSE(host->capabilities.empty() && ::geteuid() == 0);
  EXPECT_FALSE(host->seccomp.arch.empty());
  EXPECT_GE(host->oom_score_adj, -1000);
  EXPECT_LE(host->oom_score_adj, 1000);
}

}  // namespace
}  // namespace berth::cri::spec

#include "shim/manager.h"

#include <gtest/gtest.h>

#include "common/fs.h"
#include "shim/service.h"
#include "shim/sha256.h"

namespace berth::shim {
namespace {

TEST(ManagerTest, FlagsAsContainerdPassesThem) {
  auto f = ParseFlags({"-namespace", "default", "-address", "/run/containerd/containerd.sock",
                       "-publish-binary", "/usr/bin/containerd", "-id", "c1", "-debug", "start"});
  ASSERT_TRUE(f) << f.error().ToString();
  EXPECT_EQ(f->ns, "default");
  EXPECT_EQ(f->address, "/run/containerd/containerd.sock");
  EXPECT_EQ(f->publish_binary, "/usr/bin/containerd");
  EXPECT_EQ(f->id, "c1");
  EXPECT_TRUE(f->debug);
  EXPECT_EQ(f->action, "start");
  auto d = ParseFlags({"--namespace=k8s.io", "-bundle", "/b", "-id=x", "delete"});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->ns, "k8s.io");
  EXPECT_EQ(d->bundle, "/b");
  EXPECT_EQ(d->action, "delete");
  auto serve = ParseFlags({"-namespace", "n", "-id", "x", "-address", "a"});
  ASSERT_TRUE(serve);
  EXPECT_EQ(serve->action, "");
  EXPECT_TRUE(ParseFlags({"-v"})->version);
  EXPECT_TRUE(ParseFlags({"-bogus", "x"}).error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(ParseFlags({"-id"}).error().Is(Errc::kInvalidArgument));
}

TEST(ManagerTest, SocketPathIsSha256OfAddressNamespaceGroup) {
  std::string p = SocketPath("/run/containerd/containerd.sock", "default", "c1");
  // printf %s /run/containerd/containerd.sock/default/c1 | sha256sum
  EXPECT_EQ(p, std::string(kSocketDir) +
                   "/d25aa4ef11a84e954e74a5bcff06557d0b6ea8d0c00243896f29826694bbd888");
  EXPECT_EQ(p.size(), std::string(kSocketDir).size() + 1 + 64);
}

TEST(ManagerTest, Sha256KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Two blocks of padding.
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(ManagerTest, RuncRootFollowsTheDaemonsStateDirectory) {
  EXPECT_EQ(RuncRootFor("/run/berth/io.containerd.runtime.v2.task/default/c1"), "/run/berth/runc");
  EXPECT_EQ(RuncRootFor("/tmp/x/state/io.containerd.runtime.v2.task/k8s.io/abc/"),
            "/tmp/x/state/runc");
  EXPECT_EQ(RuncRootFor("/run/containerd/io.containerd.runtime.v2.task/ns/id"),
            "/run/containerd/runc");
  // Anywhere else (a bundle made by hand, a relative path, the layout at /): the default.
  EXPECT_EQ(RuncRootFor("/tmp/bundle"), kDefaultRuncRoot);
  EXPECT_EQ(RuncRootFor("state/io.containerd.runtime.v2.task/ns/id"), kDefaultRuncRoot);
  EXPECT_EQ(RuncRootFor("/io.containerd.runtime.v2.task/ns/id"), kDefaultRuncRoot);
  EXPECT_EQ(RuncRootFor(""), kDefaultRuncRoot);
}

TEST(ManagerTest, GroupId) {
  EXPECT_EQ(GroupId(R"({"annotations":{"io.containerd.runc.v2.group":"g1",
                       "io.kubernetes.cri.sandbox-id":"sb"}})",
                    "c1"),
            "g1");
  EXPECT_EQ(GroupId(R"({"annotations":{"io.kubernetes.cri.sandbox-id":"sb"}})", "c1"), "sb");
  EXPECT_EQ(GroupId(R"({"process":{}})", "c1"), "c1");
  EXPECT_EQ(GroupId("not json", "c1"), "c1");
}

TEST(ManagerTest, KillAllOnExitUnlessOwnPidNamespace) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  std::string b = dir->Path();
  EXPECT_TRUE(ShouldKillAllOnExit(b));  // no spec
  ASSERT_TRUE(fs::WriteFileAtomic(b + "/config.json",
                                  R"({"linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}})"));
  EXPECT_FALSE(ShouldKillAllOnExit(b));
  ASSERT_TRUE(fs::WriteFileAtomic(
      b + "/config.json", R"({"linux":{"namespaces":[{"type":"pid","path":"/proc/1/ns/pid"}]}})"));
  EXPECT_TRUE(ShouldKillAllOnExit(b));
  ASSERT_TRUE(fs::WriteFileAtomic(b + "/config.json", R"({"linux":{"namespaces":[]}})"));
  EXPECT_TRUE(ShouldKillAllOnExit(b));
}

TEST(ManagerTest, OptionsJsonRoundTrip) {
  RuncOptions o;
  EXPECT_EQ(OptionsJson(o), "{}");
  o.set_binary_name("crun");
  o.set_root("/run/x");
  o.set_systemd_cgroup(true);
  std::string json = OptionsJson(o);
  EXPECT_NE(json.find("\"binary_name\":\"crun\""), std::string::npos) << json;
  auto back = ParseOptionsJson(json);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->binary_name(), "crun");
  EXPECT_TRUE(back->systemd_cgroup());
}

}  // namespace
}  // namespace berth::shim

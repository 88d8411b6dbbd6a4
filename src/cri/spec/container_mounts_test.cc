#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "cri/spec/internal.h"
#include "cri/spec/test_util.h"

namespace berth::cri::spec {
namespace {

using testing::MountAt;
using testing::MountGuard;
using testing::Strings;
using testing::TestOptions;
using json = nlohmann::json;

TEST(LookupMount, LongestStringPrefix) {
  const std::string info =
      "22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n"
      "30 22 0:30 / /data rw,relatime shared:5 - ext4 /dev/vdb rw\n"
      "31 30 0:31 / /data/sub\\040dir rw master:7 shared:9 - tmpfs tmpfs rw\n"
      "32 22 0:32 / /dat rw - tmpfs tmpfs rw\n";
  auto m = internal::LookupMount("/data/x/y", info);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->mountpoint, "/data");
  EXPECT_EQ(m->optional, "shared:5");
  m = internal::LookupMount("/data/sub dir/file", info);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->mountpoint, "/data/sub dir");  // octal escapes decoded
  EXPECT_EQ(m->optional, "master:7 shared:9");
  m = internal::LookupMount("/etc/../srv", info);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->mountpoint, "/");
  EXPECT_EQ(m->optional, "");
  // containerd compares plain string prefixes: /database is "on" /data.
  m = internal::LookupMount("/database", info);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->mountpoint, "/data");
  auto none = internal::LookupMount("relative", info);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().What(), "failed to find the mount info for \"relative\"");
}

TEST(ResolveSymbolicLink, OnlySymlinksAreResolved) {
  auto dir = fs::TempDir::Create("cri-spec-link-");
  ASSERT_TRUE(dir);
  std::filesystem::create_directories(dir->Path() + "/real");
  std::filesystem::create_symlink(dir->Path() + "/real", dir->Path() + "/link");
  auto r = internal::ResolveSymbolicLink(dir->Path() + "/link");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, std::filesystem::canonical(dir->Path() + "/real").string());
  // Not a symlink: returned as given (even with a symlink above it).
  EXPECT_EQ(*internal::ResolveSymbolicLink(dir->Path() + "/real/."), dir->Path() + "/real/.");
  auto missing = internal::ResolveSymbolicLink(dir->Path() + "/nope");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound));
}

// Propagation checks against real mounts: shared and slave bind mounts made under a temp dir,
// detached again whatever happens.
class PropagationTest : public testing::SpecTest {
 protected:
  void SetUp() override {
    SpecTest::SetUp();
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to bind mount";
    shared_ = Path("shared");
    slave_ = Path("slave");
    private_ = Path("private");
    for (const auto& d : {shared_, slave_, private_}) std::filesystem::create_directories(d);
    // shared: a bind mount of itself in a peer group; slave: a bind of it, made a slave;
    // private: a bind of itself, private.
    ASSERT_TRUE(guard_.Bind(shared_, shared_)) << strerror(errno);
    ASSERT_TRUE(MountGuard::Propagation(shared_, MS_SHARED)) << strerror(errno);
    ASSERT_TRUE(guard_.Bind(shared_, slave_)) << strerror(errno);
    ASSERT_TRUE(MountGuard::Propagation(slave_, MS_SLAVE)) << strerror(errno);
    ASSERT_TRUE(guard_.Bind(private_, private_)) << strerror(errno);
    ASSERT_TRUE(MountGuard::Propagation(private_, MS_PRIVATE)) << strerror(errno);
  }

  ContainerSpecInput Input(const std::string& host_path, ::runtime::v1::MountPropagation p) {
    ContainerSpecInput in;
    in.id = "c1";
    in.sandbox_id = "s1";
    in.sandbox_pid = 1;
    in.config.add_command("/bin/true");
    in.hosts_path = sandbox_dir_ + "/hosts";
    in.resolv_conf_path = sandbox_dir_ + "/resolv.conf";
    in.shm_path = sandbox_dir_ + "/shm";
    auto* m = in.config.add_mounts();
    m->set_container_path("/mnt");
    m->set_host_path(host_path);
    m->set_propagation(p);
    return in;
  }

  MountGuard guard_;  // destroyed before the temp dir (declared after it in the base)
  std::string shared_;
  std::string slave_;
  std::string private_;
};

TEST_F(PropagationTest, HostToContainer) {
  for (const auto& src : {shared_, slave_ + "/sub"}) {
    auto s = ContainerSpec(Input(src, ::runtime::v1::PROPAGATION_HOST_TO_CONTAINER), TestOptions());
    ASSERT_TRUE(s) << s.error().ToString();
    EXPECT_EQ(Strings(MountAt(*s, "/mnt")["options"]),
              (std::vector<std::string>{"rbind", "rslave", "rw"}));
    EXPECT_EQ((*s)["linux"]["rootfsPropagation"], "rslave");
  }
  auto s = ContainerSpec(Input(private_ + "/x", ::runtime::v1::PROPAGATION_HOST_TO_CONTAINER),
                         TestOptions());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().What(), "path \"" + private_ + "/x\" is mounted on \"" + private_ +
                                  "\" but it is not a shared or slave mount");
}

TEST_F(PropagationTest, Bidirectional) {
  auto s = ContainerSpec(Input(shared_, ::runtime::v1::PROPAGATION_BIDIRECTIONAL), TestOptions());
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(Strings(MountAt(*s, "/mnt")["options"]),
            (std::vector<std::string>{"rbind", "rshared", "rw"}));
  EXPECT_EQ((*s)["linux"]["rootfsPropagation"], "rshared");
  // A slave is not enough.
  s = ContainerSpec(Input(slave_, ::runtime::v1::PROPAGATION_BIDIRECTIONAL), TestOptions());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().What(), "path \"" + slave_ + "\" is mounted on \"" + slave_ +
                                  "\" but it is not a shared mount");
}

TEST_F(PropagationTest, RsharedRootStaysWithLaterRslave) {
  auto in = Input(shared_, ::runtime::v1::PROPAGATION_BIDIRECTIONAL);
  auto* m = in.config.add_mounts();
  m->set_container_path("/mnt/deeper");
  m->set_host_path(slave_);
  m->set_propagation(::runtime::v1::PROPAGATION_HOST_TO_CONTAINER);
  auto s = ContainerSpec(in, TestOptions());
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ((*s)["linux"]["rootfsPropagation"], "rshared");
}

TEST_F(PropagationTest, Private) {
  auto s = ContainerSpec(Input(private_, ::runtime::v1::PROPAGATION_PRIVATE), TestOptions());
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(Strings(MountAt(*s, "/mnt")["options"]),
            (std::vector<std::string>{"rbind", "rprivate", "rw"}));
  EXPECT_FALSE((*s)["linux"].contains("rootfsPropagation"));
}

}  // namespace
}  // namespace berth::cri::spec

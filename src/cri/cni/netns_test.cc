#include "cri/cni/netns.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <regex>
#include <thread>

#include "common/fs.h"

namespace berth::cri::cni {
namespace {

ino_t Inode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

bool Mounted(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.find(" " + path + " ") != std::string::npos) return true;
  }
  return false;
}

// A temp dir and the netns made in it; both released even when a test fails.
class NetNsTest : public testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (unshare, mount)";
    auto dir = fs::TempDir::Create("berth-netns-");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
  }
  void TearDown() override {
    if (ns_) (void)ns_->Remove();
    ns_.reset();
    dir_.reset();  // after the unmount: RemoveAll does not cross mounts
  }
  std::optional<fs::TempDir> dir_;
  std::optional<NetNs> ns_;
};

TEST_F(NetNsTest, CreateClosedRemove) {
  std::string base = dir_->Path() + "/netns";  // created 0755
  auto ns = NetNs::Create(base);
  ASSERT_TRUE(ns) << ns.error().ToString();
  ns_ = *ns;
  struct stat st {};
  ASSERT_EQ(::stat(base.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  std::string name = ns->Path().substr(base.size() + 1);
  EXPECT_TRUE(std::regex_match(
      name, std::regex("cni-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")))
      << name;
  EXPECT_TRUE(Mounted(ns->Path()));
  ino_t pod = Inode(ns->Path());
  EXPECT_NE(pod, Inode("/proc/self/ns/net"));
  // No thread of ours stayed inside the new namespace.
  DIR* tasks = ::opendir("/proc/self/task");
  ASSERT_NE(tasks, nullptr);
  while (dirent* e = ::readdir(tasks)) {
    if (e->d_name[0] == '.') continue;
    EXPECT_NE(Inode(std::string("/proc/self/task/") + e->d_name + "/ns/net"), pod);
  }
  ::closedir(tasks);

  auto closed = ns->Closed();
  ASSERT_TRUE(closed);
  EXPECT_FALSE(*closed);

  auto second = NetNs::Create(base);
  ASSERT_TRUE(second);
  EXPECT_NE(second->Path(), ns->Path());
  EXPECT_NE(Inode(second->Path()), pod);
  EXPECT_TRUE(second->Remove());

  ASSERT_TRUE(ns->Remove());
  EXPECT_FALSE(Mounted(ns->Path()));
  EXPECT_NE(::access(ns->Path().c_str(), F_OK), 0);
  closed = ns->Closed();
  ASSERT_TRUE(closed);
  EXPECT_TRUE(*closed);
  EXPECT_TRUE(ns->Remove());  // idempotent
}

TEST_F(NetNsTest, DoRunsInsideTheNamespace) {
  auto ns = NetNs::Create(dir_->Path());
  ASSERT_TRUE(ns) << ns.error().ToString();
  ns_ = *ns;
  const ino_t ours = Inode("/proc/thread-self/ns/net");
  const ino_t pod = Inode(ns->Path());
  ino_t inside = 0;
  ino_t child_thread = 0;
  std::string links;
  Status st = ns->Do([&]() -> Status {
    inside = Inode("/proc/thread-self/ns/net");
    std::jthread([&] { child_thread = Inode("/proc/thread-self/ns/net"); }).join();
    auto dev = fs::ReadFile("/proc/thread-self/net/dev");  // a fresh netns: only lo
    if (dev) links = *dev;
    return Ok();
  });
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(inside, pod);
  EXPECT_EQ(child_thread, pod);
  EXPECT_NE(links.find("lo:"), std::string::npos) << links;
  EXPECT_EQ(links.find("eth0:"), std::string::npos) << links;
  EXPECT_NE(inside, ours);
  EXPECT_EQ(Inode("/proc/thread-self/ns/net"), ours);

  Status failed = ns->Do([] { return Status(NotFound("inner")); });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().ToString(), "inner: not found");
}

TEST_F(NetNsTest, PlainFilesAreClosed) {
  std::string path = dir_->Path() + "/cni-stale";
  std::ofstream(path) << "";
  NetNs stale = NetNs::Load(path);
  Status st = stale.Do([] { return Ok(); });
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kFailedPrecondition)) << st.error().ToString();
  auto closed = stale.Closed();
  ASSERT_TRUE(closed);
  EXPECT_TRUE(*closed);
  EXPECT_NE(::access(path.c_str(), F_OK), 0);  // the leftover file is gone

  NetNs missing = NetNs::Load(dir_->Path() + "/nope");
  EXPECT_TRUE(missing.Do([] { return Ok(); }).error().Is(Errc::kNotFound));
  EXPECT_TRUE(missing.Remove());
  EXPECT_TRUE(*missing.Closed());
}

}  // namespace
}  // namespace berth::cri::cni

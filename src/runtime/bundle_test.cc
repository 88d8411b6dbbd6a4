#include "runtime/bundle.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"

namespace berth::runtime {
namespace {

bool Exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

TEST(Bundle, CreateLayoutAndDelete) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  std::string root = dir->Path() + "/root", state = dir->Path() + "/state";
  auto b = Bundle::Create(root, state, "ns1", "c1", R"({"ociVersion":"1.0.2"})");
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(b->Path(), state + "/ns1/c1");
  struct stat st {};
  ASSERT_EQ(::stat(b->Path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::stat((state + "/ns1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_EQ(*fs::ReadFile(b->Path() + "/config.json"), R"({"ociVersion":"1.0.2"})");
  char buf[4096];
  ssize_t n = ::readlink((b->Path() + "/work").c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, n), root + "/ns1/c1");
  EXPECT_TRUE(Exists(b->Path() + "/rootfs"));

  EXPECT_TRUE(Bundle::Create(root, state, "ns1", "c1", "{}").error().Is(Errc::kAlreadyExists));

  ASSERT_TRUE(b->Delete());
  EXPECT_FALSE(Exists(b->Path()));
  EXPECT_FALSE(Exists(root + "/ns1/c1"));
  EXPECT_FALSE(Exists(state + "/ns1/.c1"));
  ASSERT_TRUE(b->Delete());  // idempotent
}

TEST(Bundle, RejectsBadIdAndSpec) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  EXPECT_TRUE(Bundle::Create(dir->Path() + "/r", dir->Path() + "/s", "ns", "../x", "{}")
                  .error()
                  .Is(Errc::kInvalidArgument));
  EXPECT_TRUE(Bundle::Create(dir->Path() + "/r", dir->Path() + "/s", "ns", "x", "not json")
                  .error()
                  .Is(Errc::kInvalidArgument));
  EXPECT_FALSE(Exists(dir->Path() + "/s/ns/x"));
}

TEST(Bundle, RemappedRootGroupOwnsBundle) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  auto b = Bundle::Create(
      dir->Path() + "/r", dir->Path() + "/s", "ns", "u",
      R"({"linux":{"gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]}})");
  ASSERT_TRUE(b) << b.error().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(b->Path().c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 100000u);
  EXPECT_EQ(st.st_mode & 07777, 0710u);
}

}  // namespace
}  // namespace berth::runtime

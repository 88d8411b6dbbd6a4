#include "snapshots/native/copy.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>

#include "common/fs.h"
#include "snapshots/testsuite/testsuite.h"

namespace berth::snapshots::native {
namespace {

struct stat Lstat(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

TEST(CopyDirTest, PreservesWhatContainerdPreserves) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (owners, device nodes)";
  auto tmp = fs::TempDir::Create("copy-");
  ASSERT_TRUE(tmp);
  const std::string src = tmp->Path() + "/src";
  const std::string dst = tmp->Path() + "/dst";
  ASSERT_EQ(::mkdir(src.c_str(), 0750), 0);
  ASSERT_EQ(::mkdir(dst.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((src + "/dir").c_str(), 0711), 0);
  std::string big(3 << 20, 'x');
  testsuite::WriteFile(src + "/dir/file", big);
  ASSERT_EQ(::chmod((src + "/dir/file").c_str(), 04755), 0);
  ASSERT_EQ(::chown((src + "/dir/file").c_str(), 1234, 5678), 0);
  ASSERT_EQ(::chmod((src + "/dir/file").c_str(), 04755), 0);  // chown cleared setuid
  ASSERT_EQ(::link((src + "/dir/file").c_str(), (src + "/hard").c_str()), 0);
  ASSERT_EQ(::symlink("dir/file", (src + "/sym").c_str()), 0);
  ASSERT_EQ(::lchown((src + "/sym").c_str(), 42, 43), 0);
  ASSERT_EQ(::mkfifo((src + "/fifo").c_str(), 0600), 0);
  ASSERT_EQ(::mknod((src + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::setxattr((src + "/dir/file").c_str(), "user.test", "value", 5, 0), 0)
      << "user xattrs on the test filesystem";
  ASSERT_EQ(::mkdir((src + "/sticky").c_str(), 01777), 0);
  ASSERT_EQ(::chmod((src + "/sticky").c_str(), 01777), 0);
  const struct timespec times[2] = {{1000, 1}, {2000, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (src + "/dir/file").c_str(), times, 0), 0);
  ASSERT_EQ(::utimensat(AT_FDCWD, (src + "/dir").c_str(), times, 0), 0);

  auto s = CopyDir(dst, src);
  ASSERT_TRUE(s) << s.error().ToString();

  EXPECT_EQ(Lstat(dst).st_mode & 07777, 0750u);
  EXPECT_EQ(testsuite::ReadFileOrDie(dst + "/dir/file"), big);
  auto f = Lstat(dst + "/dir/file");
  EXPECT_EQ(f.st_mode & 07777, 04755u);
  EXPECT_EQ(f.st_uid, 1234u);
  EXPECT_EQ(f.st_gid, 5678u);
  EXPECT_EQ(f.st_mtim.tv_sec, 2000);
  EXPECT_EQ(f.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(f.st_nlink, 2u);
  EXPECT_EQ(Lstat(dst + "/hard").st_ino, f.st_ino);
  auto d = Lstat(dst + "/dir");
  EXPECT_EQ(d.st_mode & 07777, 0711u);
  EXPECT_EQ(d.st_mtim.tv_sec, 2000);
  char value[16] = {};
  EXPECT_EQ(::getxattr((dst + "/dir/file").c_str(), "user.test", value, sizeof value), 5);
  EXPECT_EQ(std::string(value), "value");
  auto sym = Lstat(dst + "/sym");
  EXPECT_TRUE(S_ISLNK(sym.st_mode));
  EXPECT_EQ(sym.st_uid, 42u);
  char target[64] = {};
  ASSERT_GT(::readlink((dst + "/sym").c_str(), target, sizeof target), 0);
  EXPECT_EQ(std::string(target), "dir/file");
  EXPECT_TRUE(S_ISFIFO(Lstat(dst + "/fifo").st_mode));
  auto null = Lstat(dst + "/null");
  EXPECT_TRUE(S_ISCHR(null.st_mode));
  EXPECT_EQ(null.st_rdev, makedev(1, 3));
  EXPECT_EQ(Lstat(dst + "/sticky").st_mode & 07777, 01777u);

  // Source untouched, copy independent.
  testsuite::WriteFile(dst + "/dir/file", "changed");
  EXPECT_EQ(testsuite::ReadFileOrDie(src + "/dir/file"), big);
}

TEST(CopyDirTest, MissingSourceIsNotFound) {
  auto tmp = fs::TempDir::Create("copy-");
  ASSERT_TRUE(tmp);
  auto s = CopyDir(tmp->Path(), tmp->Path() + "/nope");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kNotFound));
}

}  // namespace
}  // namespace berth::snapshots::native

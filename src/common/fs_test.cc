#include "common/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace berth::fs {
namespace {

TEST(FsTest, TempDirIsRemoved) {
  std::string path;
  {
    auto dir = TempDir::Create("fs-test-");
    ASSERT_TRUE(dir);
    path = dir->Path();
    ASSERT_TRUE(MkdirAll(path + "/a/b/c", 0755));
    ASSERT_TRUE(WriteFileAtomic(path + "/a/b/c/f", "data"));
    ASSERT_EQ(::symlink("/etc", (path + "/a/link").c_str()), 0);
  }
  struct stat st {};
  EXPECT_NE(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(::access("/etc/passwd", F_OK) == 0) << "symlink target must survive";
}

TEST(FsTest, WriteFileAtomicReplaces) {
  auto dir = TempDir::Create("fs-test-");
  ASSERT_TRUE(dir);
  std::string f = dir->Path() + "/file";
  ASSERT_TRUE(WriteFileAtomic(f, "one"));
  ASSERT_TRUE(WriteFileAtomic(f, "two", 0600));
  EXPECT_EQ(*ReadFile(f), "two");
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(FsTest, ReplaceFileReplacesWithoutLeavingTempFiles) {
  auto dir = TempDir::Create("fs-test-");
  ASSERT_TRUE(dir);
  std::string f = dir->Path() + "/status";
  ASSERT_TRUE(ReplaceFile(f, "one", 0600));
  ASSERT_TRUE(ReplaceFile(f, "two", 0600));
  EXPECT_EQ(*ReadFile(f), "two");
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto missing = ReplaceFile(dir->Path() + "/no/such/dir/file", "x");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound));
  DIR* d = ::opendir(dir->Path().c_str());
  ASSERT_NE(d, nullptr);
  int entries = 0;
  while (dirent* e = ::readdir(d)) entries += e->d_name[0] != '.';
  ::closedir(d);
  EXPECT_EQ(entries, 1);  // no temp file left
}

TEST(FsTest, ReadMissingIsNotFound) {
  auto r = ReadFile("/nonexistent/berth/file");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kNotFound));
  EXPECT_NE(r.error().ToString().find("/nonexistent/berth/file"), std::string::npos);
}

TEST(FsTest, EnsureDirSetsMode) {
  auto dir = TempDir::Create("fs-test-");
  ASSERT_TRUE(dir);
  std::string d = dir->Path() + "/x/y";
  ASSERT_TRUE(EnsureDir(d, 0711));
  struct stat st {};
  ASSERT_EQ(::stat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0711u);
}

TEST(FsTest, MkdirAllOverFileFails) {
  auto dir = TempDir::Create("fs-test-");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(WriteFileAtomic(dir->Path() + "/f", "x"));
  EXPECT_FALSE(MkdirAll(dir->Path() + "/f", 0755));
}

TEST(FsTest, FileLockIsExclusiveAcrossOpenFiles) {
  auto dir = TempDir::Create("fs-test-");
  ASSERT_TRUE(dir);
  std::string path = dir->Path() + "/lock";
  {
    auto first = FileLock::TryAcquire(path);
    ASSERT_TRUE(first);
    auto second = FileLock::TryAcquire(path);
    ASSERT_FALSE(second);
    EXPECT_TRUE(second.error().Is(Errc::kUnavailable));
  }
  EXPECT_TRUE(FileLock::TryAcquire(path)) << "released when the holder is destroyed";
}

TEST(FsTest, UniqueFdCloses) {
  int raw = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(raw, 0);
  { UniqueFd fd(raw); }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
}

}  // namespace
}  // namespace berth::fs

// common/mount.cc against the kernel: bind (rw, ro, rbind), overlay, temp mounts, cleanup.
#include <sys/statvfs.h>

#include "common/mount.h"
#include "diff/test_util.h"

namespace berth::diff::test {
namespace {

using mount::Mount;

TEST(MountOptions, ParsedAsContainerd) {
  auto p = mount::ParseOptions({"ro", "nosuid", "nodev", "noexec", "relatime", "rbind",
                                "lowerdir=/a:/b", "index=off", "rprivate"});
  EXPECT_EQ(p.flags, static_cast<unsigned long>(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC |
                                                MS_RELATIME | MS_BIND | MS_REC));
  EXPECT_EQ(p.data, "lowerdir=/a:/b,index=off");
  EXPECT_EQ(p.propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_FALSE(p.loop);
  // Later words win; "rw" clears "ro"; "defaults" is nothing.
  p = mount::ParseOptions({"ro", "rw", "suid", "defaults", "loop"});
  EXPECT_EQ(p.flags, 0u);
  EXPECT_EQ(p.data, "");
  EXPECT_TRUE(p.loop);
}

TEST(MountOptions, ReadonlyMounts) {
  auto ro = mount::ReadonlyMounts(
      {{.type = "overlay",
        .source = "overlay",
        .options = {"index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2"}},
       {.type = "bind", .source = "/x", .options = {"rw", "rbind"}}});
  EXPECT_EQ(ro[0].options, (std::vector<std::string>{"index=off", "lowerdir=/u:/l1:/l2"}));
  EXPECT_EQ(ro[1].options, (std::vector<std::string>{"rbind", "ro"}));
}

class MountTest : public DiffTest {};

TEST_F(MountTest, BindReadWriteAndReadOnly) {
  std::string src = MakeDir("src");
  std::string target = MakeDir("target");
  WriteFile(src + "/f", "hello");
  {
    MountGuard guard(target);
    ASSERT_TRUE(
        mount::MountAll({{.type = "bind", .source = src, .options = {"rw", "rbind"}}}, target));
    EXPECT_EQ(ReadAll(target + "/f"), "hello");
    WriteFile(target + "/g", "through");
    EXPECT_EQ(ReadAll(src + "/g"), "through");
    ASSERT_TRUE(mount::UnmountAll(target));
    EXPECT_FALSE(Exists(target + "/f"));
  }
  {
    MountGuard guard(target);
    ASSERT_TRUE(
        mount::MountAll({{.type = "bind", .source = src, .options = {"ro", "rbind"}}}, target));
    struct statvfs sv {};
    ASSERT_EQ(::statvfs(target.c_str(), &sv), 0);
    EXPECT_TRUE(sv.f_flag & ST_RDONLY) << "a read-only bind needs the remount";
    EXPECT_NE(::open((target + "/new").c_str(), O_CREAT | O_WRONLY, 0644), 0);
    EXPECT_EQ(errno, EROFS);
    // The source stays writable.
    struct statvfs sv_src {};
    ASSERT_EQ(::statvfs(src.c_str(), &sv_src), 0);
    EXPECT_FALSE(sv_src.f_flag & ST_RDONLY);
  }
  EXPECT_TRUE(mount::UnmountAll(target)) << "not a mount point any more: fine";
  EXPECT_TRUE(mount::UnmountAll(Path("does-not-exist")));
}

TEST_F(MountTest, OverlayWithFlags) {
  std::string lower = MakeDir("lower"), upper = MakeDir("upper"), work = MakeDir("work");
  std::string merged = MakeDir("merged");
  WriteFile(lower + "/a", "from lower");
  WriteFile(upper + "/b", "from upper");
  MountGuard guard(merged);
  ASSERT_TRUE(mount::MountAll({{.type = "overlay",
                                .source = "overlay",
                                .options = {"nosuid", "nodev", "workdir=" + work,
                                            "upperdir=" + upper, "lowerdir=" + lower}}},
                              merged));
  EXPECT_EQ(ReadAll(merged + "/a"), "from lower");
  EXPECT_EQ(ReadAll(merged + "/b"), "from upper");
  struct statvfs sv {};
  ASSERT_EQ(::statvfs(merged.c_str(), &sv), 0);
  EXPECT_TRUE(sv.f_flag & ST_NOSUID);
  EXPECT_TRUE(sv.f_flag & ST_NODEV);
  WriteFile(merged + "/c", "new");
  EXPECT_EQ(ReadAll(upper + "/c"), "new");
}

TEST_F(MountTest, ErrorsNameTheMountAndReason) {
  std::string target = MakeDir("target");
  MountGuard guard(target);
  auto s =
      mount::MountAll({{.type = "bind", .source = Path("missing"), .options = {"rbind"}}}, target);
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kNotFound)) << s.error().ToString();
  EXPECT_NE(s.error().What().find("mount bind " + Path("missing") + " on " + target),
            std::string::npos)
      << s.error().ToString();

  std::string lower = MakeDir("l");
  s = mount::MountAll({{.type = "overlay",
                        .source = "overlay",
                        .options = {"lowerdir=" + lower + ":" + std::string(5000, 'x')}}},
                      target);
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kInvalidArgument));
  EXPECT_NE(s.error().What().find("mount options is too long"), std::string::npos);

  // A failure after a successful first mount undoes the first one.
  std::string src = MakeDir("src");
  WriteFile(src + "/f", "x");
  s = mount::MountAll({{.type = "bind", .source = src, .options = {"rbind"}},
                       {.type = "overlay", .source = "overlay", .options = {"lowerdir=/nope"}}},
                      target);
  ASSERT_FALSE(s);
  EXPECT_FALSE(Exists(target + "/f"));
}

TEST_F(MountTest, WithTempMountAlwaysCleansUp) {
  std::string src = MakeDir("src");
  WriteFile(src + "/f", "data");
  std::string tmp_root = Path("tmpmounts");
  std::string seen;
  auto s = mount::WithTempMount({{.type = "bind", .source = src, .options = {"ro", "rbind"}}},
                                tmp_root, [&](const std::string& root) -> Status {
                                  seen = root;
                                  EXPECT_EQ(ReadAll(root + "/f"), "data");
                                  return FailedPrecondition("callback fails");
                                });
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().Is(Errc::kFailedPrecondition));
  EXPECT_NE(s.error().What().find("mount callback failed on " + seen), std::string::npos);
  EXPECT_FALSE(Exists(seen)) << "temp mount point removed";
  EXPECT_EQ(ReadAll(src + "/f"), "data") << "never removed recursively";

  s = mount::WithTempMount({}, tmp_root, [&](const std::string& root) -> Status {
    seen = root;
    return Ok();
  });
  EXPECT_TRUE(s);
  EXPECT_FALSE(Exists(seen));
}

TEST_F(MountTest, CleanupTempMounts) {
  std::string src = MakeDir("src");
  WriteFile(src + "/f", "keep");
  std::string tmp_root = MakeDir("tmpmounts");
  std::string a = MakeDir("tmpmounts/berth-mount-a");
  MountGuard guard(a);
  ASSERT_TRUE(mount::MountAll({{.type = "bind", .source = src, .options = {"rbind"}}}, a));
  ASSERT_TRUE(mount::MountAll({{.type = "bind", .source = src, .options = {"ro", "rbind"}}}, a));
  ASSERT_TRUE(mount::CleanupTempMounts(tmp_root));
  EXPECT_FALSE(Exists(a));
  EXPECT_EQ(ReadAll(src + "/f"), "keep");
}

}  // namespace
}  // namespace berth::diff::test

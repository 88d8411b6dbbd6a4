// OCI whiteouts: real deletes (plain mode), overlayfs conversion (upperdir fast path), and an
// end-to-end stack of two layers seen through a real overlay mount.
#include "diff/apply_tar.h"
#include "diff/test_util.h"

namespace berth::diff::test {
namespace {

constexpr const char* kTar = "application/vnd.oci.image.layer.v1.tar";
constexpr const char* kTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

class WhiteoutTest : public DiffTest {
 protected:
  // The tree a lower layer left.
  std::string Populate(const std::string& name) {
    std::string root = MakeDir(name);
    for (const char* d : {"a", "dir/x", "opq/sub", "opq2", "keep"}) MakeDir(name + "/" + d);
    for (const char* f :
         {"a/file1", "a/file2", "dir/x/y", "opq/old1", "opq/sub/old2", "opq2/old", "keep/k"}) {
      WriteFile(root + "/" + f, f);
    }
    return root;
  }

  static std::vector<TarEntry> WhiteoutLayer() {
    TarEntry wh = Whiteout("a/.wh.file1");
    wh.uid = 1000;
    wh.gid = 1001;
    return {wh,
            Whiteout(".wh.dir"),
            Whiteout("a/.wh.never-existed"),
            Dir("opq"),
            File("opq/new", "new"),
            Dir("opq/sub"),
            File("opq/sub/new2", "new2"),
            Whiteout("opq/.wh..wh..opq"),   // after this layer's own entries
            Whiteout("opq2/.wh..wh..opq"),  // before them
            File("opq2/fresh", "fresh")};
  }
};

TEST_F(WhiteoutTest, PlainModeDeletes) {
  std::string root = Populate("root");
  auto applied = ApplyBind(BuildTar(WhiteoutLayer()), kTar, root);
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_FALSE(Exists(root + "/a/file1"));
  EXPECT_EQ(ReadAll(root + "/a/file2"), "a/file2");
  EXPECT_FALSE(Exists(root + "/dir")) << "a directory whiteout removes the whole tree";
  EXPECT_EQ(ReadAll(root + "/opq/new"), "new");
  EXPECT_EQ(ReadAll(root + "/opq/sub/new2"), "new2");
  EXPECT_FALSE(Exists(root + "/opq/old1"));
  EXPECT_FALSE(Exists(root + "/opq/sub/old2")) << "opaque: recursive below kept directories";
  EXPECT_FALSE(Exists(root + "/opq2/old"));
  EXPECT_EQ(ReadAll(root + "/opq2/fresh"), "fresh");
  EXPECT_EQ(ReadAll(root + "/keep/k"), "keep/k");
  for (const char* marker : {"a/.wh.file1", ".wh.dir", "opq/.wh..wh..opq"}) {
    EXPECT_FALSE(Exists(root + "/" + marker)) << marker;
  }
  EXPECT_TRUE(ReadDirNamesOf(Path("tmpmounts")).empty()) << "temp mount removed";
}

TEST_F(WhiteoutTest, OverlayUpperdirConversion) {
  std::string lower = Populate("lower");
  ASSERT_EQ(::chmod((lower + "/a").c_str(), 0750), 0);
  ASSERT_EQ(::chown((lower + "/a").c_str(), 42, 43), 0);
  ASSERT_EQ(::lsetxattr((lower + "/a").c_str(), "user.origin", "lower", 5, 0), 0);
  ASSERT_EQ(::lsetxattr((lower + "/a").c_str(), "trusted.private", "x", 1, 0), 0);
  std::string upper = MakeDir("upper"), work = MakeDir("work");
  auto applied = differ_->Apply(
      ctx_, Put(Gzip(BuildTar(WhiteoutLayer())), kTarGzip),
      {{.type = "overlay",
        .source = "overlay",
        .options = {"index=off", "workdir=" + work, "upperdir=" + upper, "lowerdir=" + lower}}});
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_FALSE(Exists(Path("tmpmounts"))) << "the fast path mounts nothing";

  struct stat st = Lstat(upper + "/a/file1");
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(st.st_uid, 1000u) << "chowned to the header's uid/gid";
  EXPECT_EQ(st.st_gid, 1001u);
  EXPECT_TRUE(S_ISCHR(Lstat(upper + "/dir").st_mode));
  EXPECT_TRUE(S_ISCHR(Lstat(upper + "/a/never-existed").st_mode));
  EXPECT_EQ(XattrOf(upper + "/opq", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(XattrOf(upper + "/opq2", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(XattrOf(upper + "/opq/sub", "trusted.overlay.opaque"), "<none>");
  EXPECT_EQ(ReadAll(upper + "/opq/new"), "new");
  EXPECT_FALSE(Exists(upper + "/a/file2")) << "lowers are never copied";
  // The parent made for a/.wh.file1 copies the lower's directory metadata.
  st = Lstat(upper + "/a");
  EXPECT_EQ(st.st_mode, S_IFDIR | 0750);
  EXPECT_EQ(st.st_uid, 42u);
  EXPECT_EQ(st.st_gid, 43u);
  EXPECT_EQ(XattrOf(upper + "/a", "user.origin"), "lower");
  EXPECT_EQ(XattrOf(upper + "/a", "trusted.private"), "<none>");
  EXPECT_FALSE(Exists(upper + "/.wh.dir"));
}

// Two layers as unpack does them: the first onto a bind-mounted empty snapshot, the second
// through the overlay fast path; the merged view is checked through a real overlay mount, and
// once more with plain-mode real deletes through a mounted overlay.
TEST_F(WhiteoutTest, EndToEndOverlayStack) {
  std::vector<TarEntry> layer1 = {Dir("etc"),
                                  File("etc/passwd", "root:x:0:0"),
                                  File("etc/shadow", "secret"),
                                  Dir("opt"),
                                  Dir("opt/app"),
                                  File("opt/app/a", "a"),
                                  File("opt/app/b", "b"),
                                  Dir("opt/keep"),
                                  File("opt/keep/c", "c"),
                                  Dir("bin"),
                                  File("bin/sh", "#!", 0755)};
  std::vector<TarEntry> layer2 = {
      Whiteout("etc/.wh.shadow"),       File("etc/hosts", "127.0.0.1"), Dir("opt/app"),
      Whiteout("opt/app/.wh..wh..opq"), File("opt/app/new", "new"),     Whiteout("opt/.wh.keep")};
  std::string fs1 = MakeDir("snapshots/1/fs");
  auto r = ApplyBind(Gzip(BuildTar(layer1)), kTarGzip, fs1);
  ASSERT_TRUE(r) << r.error().ToString();

  std::string fs2 = MakeDir("snapshots/2/fs"), work2 = MakeDir("snapshots/2/work");
  r = differ_->Apply(ctx_, Put(Gzip(BuildTar(layer2)), kTarGzip),
                     {{.type = "overlay",
                       .source = "overlay",
                       .options = {"workdir=" + work2, "upperdir=" + fs2, "lowerdir=" + fs1}}});
  ASSERT_TRUE(r) << r.error().ToString();

  auto check = [&](const std::string& merged) {
    EXPECT_EQ(ReadAll(merged + "/etc/passwd"), "root:x:0:0");
    EXPECT_FALSE(Exists(merged + "/etc/shadow"));
    EXPECT_EQ(ReadAll(merged + "/etc/hosts"), "127.0.0.1");
    EXPECT_EQ(ReadDirNamesOf(merged + "/opt/app"), std::vector<std::string>{"new"});
    EXPECT_FALSE(Exists(merged + "/opt/keep"));
    EXPECT_EQ(ReadAll(merged + "/bin/sh"), "#!");
  };
  {
    std::string merged = MakeDir("merged");
    MountGuard guard(merged);
    ASSERT_TRUE(mount::MountAll({{.type = "overlay",
                                  .source = "overlay",
                                  .options = {"ro", "lowerdir=" + fs2 + ":" + fs1}}},
                                merged));
    check(merged);
  }
  {
    // Plain mode onto a mounted overlay: the kernel turns the real deletes into its whiteouts.
    std::string fs3 = MakeDir("snapshots/3/fs"), work3 = MakeDir("snapshots/3/work");
    std::string merged = MakeDir("merged3");
    MountGuard guard(merged);
    ASSERT_TRUE(
        mount::MountAll({{.type = "overlay",
                          .source = "overlay",
                          .options = {"workdir=" + work3, "upperdir=" + fs3, "lowerdir=" + fs1}}},
                        merged));
    std::string tar = BuildTar(layer2);
    struct StringReader : Reader {
      std::string_view s;
      Result<size_t> Read(char* buf, size_t n) override {
        n = std::min(n, s.size());
        std::memcpy(buf, s.data(), n);
        s.remove_prefix(n);
        return n;
      }
    } src;
    src.s = tar;
    ASSERT_TRUE(ApplyTar(merged, src));
    check(merged);
    EXPECT_TRUE(S_ISCHR(Lstat(fs3 + "/etc/shadow").st_mode)) << "a kernel-made whiteout";
  }
}

}  // namespace
}  // namespace berth::diff::test

// Compare: layers computed from two mounted trees, round-tripped through Apply.
#include <sys/socket.h>
#include <sys/un.h>

#include "diff/test_util.h"

namespace berth::diff::test {
namespace {

constexpr const char* kTar = "application/vnd.oci.image.layer.v1.tar";
constexpr const char* kTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";

// Entry names of a tar, in order ("name" for files, "name/" for directories as written).
std::vector<std::string> ListTar(const std::string& tar) {
  std::vector<std::string> names;
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_format_empty(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string n = archive_entry_pathname(e);
    if (const char* l = archive_entry_hardlink(e)) n += " => " + std::string(l);
    names.push_back(n);
  }
  archive_read_free(a);
  return names;
}

class CompareTest : public DiffTest {
 protected:
  std::string Blob(const Descriptor& d) {
    return ReadAll(Path("content/blobs/sha256/") + std::string(d.digest.Encoded()));
  }
  // Applies the base tar into `dir`. Its `dev/` has no entry of its own, so applying makes it
  // with the time of the apply, which differs between two trees when a second boundary falls in
  // between (seen once under ASan): one fixed time keeps it an unchanged directory.
  void ApplyBase(const std::string& base_tar, const std::string& dir) {
    ASSERT_TRUE(ApplyBind(base_tar, kTar, dir));
    struct timespec times[2] = {{1600000000, 0}, {1600000000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir + "/dev").c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  }
  static std::vector<mount::Mount> Bind(const std::string& dir) {
    return {{.type = "bind", .source = dir, .options = {"rw", "rbind"}}};
  }
  std::vector<TarEntry> Base() {
    TarEntry capped = File("bin/ping", "ping", 0755);
    std::string cap(20, '\0');
    cap[0] = 0x01;
    cap[3] = 0x02;
    cap[5] = 0x04;
    capped.xattrs = {{"security.capability", cap}};
    TarEntry owned = File("home/u/f", "owned", 0640);
    owned.uid = 1000;
    owned.gid = 1000;
    return {Dir("bin"),
            File("bin/sh", "sh", 04755),
            capped,
            Hardlink("bin/sh2", "bin/sh"),
            Dir("tmp", 01777),
            Dir("home"),
            Dir("home/u", 0700),
            owned,
            Symlink("home/u/link", "f"),
            TarEntry{
                .name = "dev/null", .type = AE_IFCHR, .perm = 0666, .dev_major = 1, .dev_minor = 3},
            TarEntry{.name = "fifo", .type = AE_IFIFO, .perm = 0600},
            Dir("a"),
            File("a/keep", "keep"),
            File("a/mod", "old"),
            File("a/gone", "gone"),
            Dir("b"),
            File("b/inner", "inner"),
            Dir("c"),
            File("c/unchanged", "same"),
            Symlink("link", "t1"),
            File("perm-file", "p"),
            File("caf\xc3\xa9", "utf-8 name"),
            File("raw-\xff", "not utf-8")};
  }
};

TEST_F(CompareTest, RoundTripAgainstEmpty) {
  std::string a = MakeDir("a");
  ASSERT_TRUE(ApplyBind(Gzip(BuildTar(Base())), kTarGzip, a));
  // Sockets are skipped.
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::string sock_path = a + "/sock";
  std::strncpy(addr.sun_path, sock_path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(sock, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr), 0);
  ::close(sock);
  auto desc = differ_->Compare(ctx_, {}, Bind(a), {.labels = {{"x", "y"}}});
  ASSERT_EQ(::unlink(sock_path.c_str()), 0);
  ASSERT_TRUE(desc) << desc.error().ToString();
  EXPECT_EQ(desc->media_type, kTarGzip);
  std::string blob = Blob(*desc);
  EXPECT_EQ(Digest::FromBytes(blob), desc->digest);
  EXPECT_EQ(static_cast<int64_t>(blob.size()), desc->size);
  std::string tar = Gunzip(blob);
  auto& labels = store_->labels_[desc->digest];
  EXPECT_EQ(labels["containerd.io/uncompressed"], Digest::FromBytes(tar).String());
  EXPECT_EQ(labels["x"], "y");
  auto names = ListTar(tar);
  EXPECT_EQ(names.front(), "a/");
  EXPECT_NE(std::find(names.begin(), names.end(), "bin/sh2 => bin/sh"), names.end());
  EXPECT_EQ(tar.size() % 512, 0u);
  EXPECT_EQ(tar.substr(tar.size() - 1024), std::string(1024, '\0')) << "no block padding";

  std::string b = MakeDir("b");
  auto applied = differ_->Apply(ctx_, *desc, Bind(b));
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(applied->digest, Digest::FromBytes(tar));
  EXPECT_EQ(Describe(b), Describe(a));
  EXPECT_EQ(Lstat(b + "/bin/sh2").st_ino, Lstat(b + "/bin/sh").st_ino);
  EXPECT_TRUE(ReadDirNamesOf(Path("tmpmounts")).empty());

  // Same trees again: the same blob; already stored is fine.
  auto again = differ_->Compare(ctx_, {}, Bind(a), {.ref = "my-ref"});
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->digest, desc->digest);
}

TEST_F(CompareTest, ChangesBecomeEntriesAndWhiteouts) {
  std::string base_tar = BuildTar(Base());
  std::string lower = MakeDir("lower"), upper = MakeDir("upper"), target = MakeDir("target");
  for (const auto& d : {lower, upper, target}) ApplyBase(base_tar, d);
  // Changes in upper.
  WriteFile(upper + "/a/mod", "new content");
  struct timespec times[2] = {{1700000000, 0}, {1700000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (upper + "/a/mod").c_str(), times, 0), 0);
  WriteFile(upper + "/a/new", "added");
  ASSERT_EQ(::unlink((upper + "/a/gone").c_str()), 0);
  ASSERT_TRUE(fs::RemoveAll(upper + "/b"));
  ASSERT_EQ(::unlink((upper + "/link").c_str()), 0);
  ASSERT_EQ(::symlink("t2", (upper + "/link").c_str()), 0);
  ASSERT_EQ(::chmod((upper + "/perm-file").c_str(), 0600), 0);

  auto desc = differ_->Compare(ctx_, Bind(lower), Bind(upper), {.media_type = kTar});
  ASSERT_TRUE(desc) << desc.error().ToString();
  EXPECT_EQ(desc->media_type, kTar);
  std::string tar = Blob(*desc);
  EXPECT_EQ(store_->labels_[desc->digest]["containerd.io/uncompressed"], desc->digest.String());
  EXPECT_EQ(ListTar(tar), (std::vector<std::string>{"a/", "a/.wh.gone", "a/mod", "a/new", ".wh.b",
                                                    "link", "perm-file"}));

  auto applied = differ_->Apply(ctx_, *desc, Bind(target));
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(Describe(target), Describe(upper));
}

TEST_F(CompareTest, OverlayUpperAgainstItsLower) {
  std::string lower = MakeDir("lower"), upper = MakeDir("upper"), work = MakeDir("work");
  std::string target = MakeDir("target");
  std::string base_tar = BuildTar(Base());
  ApplyBase(base_tar, lower);
  ApplyBase(base_tar, target);
  std::vector<mount::Mount> active = {
      {.type = "overlay",
       .source = "overlay",
       .options = {"workdir=" + work, "upperdir=" + upper, "lowerdir=" + lower}}};
  std::string merged = MakeDir("merged");
  {
    MountGuard guard(merged);
    ASSERT_TRUE(mount::MountAll(active, merged));
    ASSERT_TRUE(fs::RemoveAll(merged + "/b"));
    ASSERT_EQ(::unlink((merged + "/a/gone").c_str()), 0);
    WriteFile(merged + "/c/added", "via overlay");
    ASSERT_TRUE(mount::UnmountAll(merged));
  }
  auto desc = differ_->Compare(ctx_, Bind(lower), active, {});
  ASSERT_TRUE(desc) << desc.error().ToString();
  auto names = ListTar(Gunzip(Blob(*desc)));
  EXPECT_EQ(names, (std::vector<std::string>{"a/", "a/.wh.gone", ".wh.b", "c/", "c/added"}));
  ASSERT_TRUE(differ_->Apply(ctx_, *desc, Bind(target)));
  MountGuard guard(merged);
  ASSERT_TRUE(mount::MountAll(mount::ReadonlyMounts(active), merged));
  EXPECT_EQ(Describe(target), Describe(merged));
}

TEST_F(CompareTest, MediaTypesAndFailures) {
  std::string a = MakeDir("a");
  auto r = differ_->Compare(ctx_, {}, Bind(a),
                            {.media_type = "application/vnd.oci.image.layer.v1.tar+zstd"});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kNotImplemented));
  EXPECT_EQ(r.error().What(),
            "unsupported diff media type: application/vnd.oci.image.layer.v1.tar+zstd");
  r = differ_->Compare(ctx_, {},
                       {{.type = "bind", .source = Path("missing"), .options = {"rbind"}}}, {});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kNotFound)) << r.error().ToString();
  EXPECT_TRUE(ReadDirNamesOf(Path("tmpmounts")).empty());
  // An empty diff is an empty tar (just the end marker).
  auto empty = differ_->Compare(ctx_, Bind(a), Bind(a), {.media_type = kTar});
  ASSERT_TRUE(empty) << empty.error().ToString();
  EXPECT_EQ(Blob(*empty), std::string(1024, '\0'));
}

}  // namespace
}  // namespace berth::diff::test

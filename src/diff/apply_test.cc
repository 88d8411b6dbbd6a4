// Apply: entry types and metadata, tar formats, compression and media types, digests.
#include <fmt/format.h>

#include <regex>

#include "common/log.h"
#include "diff/apply_tar.h"
#include "diff/compression.h"
#include "diff/test_util.h"

namespace berth::diff::test {
namespace {

constexpr const char* kTar = "application/vnd.oci.image.layer.v1.tar";
constexpr const char* kTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr const char* kTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
constexpr const char* kDockerTar = "application/vnd.docker.image.rootfs.diff.tar";
constexpr const char* kDockerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

// A v2 file capability (cap_net_bind_service+ep), as setcap writes it: magic_etc =
// VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, permitted = 1 << 10, little endian.
std::string Capability() {
  std::string v(20, '\0');
  v[0] = 0x01;
  v[3] = 0x02;
  v[5] = 0x04;
  return v;
}

class ApplyTest : public DiffTest {};

TEST_F(ApplyTest, EntryTypesAndMetadata) {
  std::string big(300000, 'b');
  TarEntry setuid = File("bin/su", "su", 04755);
  setuid.uid = 0;
  TarEntry owned = File("home/user/file", "mine", 0600);
  owned.uid = 1234;
  owned.gid = 5678;
  TarEntry capped = File("bin/ping", "ping", 0755);
  capped.xattrs = {{"security.capability", Capability()},
                   {"user.note", "hello"},
                   {"trusted.overlay.opaque", "y"}};  // admin xattrs from archives are ignored
  TarEntry chr{.name = "dev/null", .type = AE_IFCHR, .perm = 0666, .dev_major = 1, .dev_minor = 3};
  TarEntry blk{.name = "dev/loop0", .type = AE_IFBLK, .perm = 0660, .dev_major = 7, .dev_minor = 0};
  TarEntry fifo{.name = "run/fifo", .type = AE_IFIFO, .perm = 0620};
  TarEntry link_owned = Symlink("home/user/link", "file");
  link_owned.uid = 1234;
  TarEntry old = File("old", "before 1970");
  old.mtime = -1000;
  TarEntry accessed = File("accessed", "a");
  accessed.mtime = 1500000000;
  accessed.atime = 1700000000;
  TarEntry stale_atime = File("stale", "s");
  stale_atime.mtime = 1500000000;
  stale_atime.atime = 1000;
  TarEntry tmp = Dir("tmp", 01777);
  tmp.mtime = 1234567890;
  TarEntry sgid = Dir("srv", 02775);
  sgid.gid = 50;
  std::string tar = BuildTar(
      {
          Dir("bin"),
          setuid,
          capped,
          File("bin/big", big),
          Hardlink("bin/su-link", "bin/su", 04755),
          owned,
          link_owned,
          Symlink("abs", "/usr/bin/../lib/x"),
          Symlink("dangling", "nowhere"),
          chr,
          blk,
          fifo,
          old,
          accessed,
          stale_atime,
          tmp,
          sgid,
          File("tmp/child", "changes tmp"),
      },
      TarFormat::kPaxFull);
  std::string root = MakeDir("root");
  auto applied = ApplyBind(tar, kTar, root);
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(applied->media_type, kTar);
  EXPECT_EQ(applied->digest, Digest::FromBytes(tar));
  EXPECT_EQ(applied->size, static_cast<int64_t>(tar.size()));

  EXPECT_EQ(Lstat(root + "/bin/su").st_mode, S_IFREG | 04755);
  EXPECT_EQ(ReadAll(root + "/bin/big"), big);
  EXPECT_EQ(Lstat(root + "/bin/su-link").st_ino, Lstat(root + "/bin/su").st_ino);
  EXPECT_EQ(Lstat(root + "/bin/su").st_nlink, 2u);
  struct stat st = Lstat(root + "/home/user/file");
  EXPECT_EQ(st.st_mode, S_IFREG | 0600);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(Lstat(root + "/home").st_mode, S_IFDIR | 0755) << "missing parents: 0755";
  EXPECT_EQ(Lstat(root + "/home/user/link").st_uid, 1234u) << "lchown, not chown";
  EXPECT_EQ(Readlink(root + "/home/user/link"), "file");
  EXPECT_EQ(Readlink(root + "/abs"), "/usr/bin/../lib/x") << "target verbatim";
  EXPECT_EQ(Readlink(root + "/dangling"), "nowhere");
  EXPECT_EQ(XattrOf(root + "/bin/ping", "security.capability"), Capability());
  EXPECT_EQ(XattrOf(root + "/bin/ping", "user.note"), "hello");
  EXPECT_EQ(XattrOf(root + "/bin/ping", "trusted.overlay.opaque"), "<none>");
  st = Lstat(root + "/dev/null");
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  st = Lstat(root + "/dev/loop0");
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(7, 0));
  st = Lstat(root + "/run/fifo");
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0620u);
  EXPECT_EQ(Lstat(root + "/old").st_mtim.tv_sec, 0) << "before 1970: the epoch";
  st = Lstat(root + "/accessed");
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_atim.tv_sec, 1700000000);
  EXPECT_EQ(Lstat(root + "/stale").st_atim.tv_sec, 1500000000) << "atime = max(atime, mtime)";
  st = Lstat(root + "/tmp");
  EXPECT_EQ(st.st_mode, S_IFDIR | 01777);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234567890) << "directory times are set after their entries";
  st = Lstat(root + "/srv");
  EXPECT_EQ(st.st_mode, S_IFDIR | 02775);
  EXPECT_EQ(st.st_gid, 50u);
  EXPECT_EQ(Lstat(root + "/bin/ping").st_mtim.tv_sec, 1600000000);
}

TEST_F(ApplyTest, LongNamesAndSparseFiles) {
  std::string deep;
  for (int i = 0; i < 12; ++i) deep += "directory-with-a-long-name-" + std::to_string(i) + "/";
  std::string long_name = deep + std::string(180, 'f');
  std::string long_target = std::string(200, 't');
  for (TarFormat format : {TarFormat::kPax, TarFormat::kGnu}) {
    std::string tar = BuildTar(
        {File(long_name, "long"), Symlink("s", long_target), Hardlink("h", long_name)}, format);
    std::string root = MakeDir("format-" + std::to_string(static_cast<int>(format)));
    auto applied = ApplyBind(tar, kTar, root);
    ASSERT_TRUE(applied) << applied.error().ToString();
    const std::string long_path = fmt::format("{}/{}", root, long_name);
    EXPECT_EQ(ReadAll(long_path), "long");
    EXPECT_EQ(Readlink(root + "/s"), long_target);
    EXPECT_EQ(Lstat(root + "/h").st_ino, Lstat(long_path).st_ino);
  }

  const size_t size = 3 << 20;
  std::string a(4096, 'A'), b(8192, 'B');
  std::string tar = SparseEntry("sparse", size, {{0, a}, {2 << 20, b}}) +
                    SparseEntry("ends-in-hole", size, {{4096, a}}) + BuildTar({File("after", "x")});
  std::string logical(size, '\0');
  logical.replace(0, a.size(), a);
  logical.replace(2 << 20, b.size(), b);
  std::string root = MakeDir("sparse");
  auto applied = ApplyBind(Gzip(tar), kTarGzip, root);
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(ReadAll(root + "/sparse"), logical);
  EXPECT_LT(Lstat(root + "/sparse").st_blocks * 512, 1 << 20) << "holes stay holes";
  struct stat st = Lstat(root + "/ends-in-hole");
  EXPECT_EQ(st.st_size, static_cast<off_t>(size)) << "a trailing hole keeps the size";
  EXPECT_EQ(ReadAll(root + "/ends-in-hole").substr(4096, 4096), a);
  EXPECT_EQ(ReadAll(root + "/after"), "x");
  EXPECT_EQ(ReadDirNamesOf(root), (std::vector<std::string>{"after", "ends-in-hole", "sparse"}));
}

TEST_F(ApplyTest, PaxGlobalHeaderAndUtf8Names) {
  // A PAX global header ('g') as `git archive` writes, then an entry with a UTF-8 path record.
  std::string record = PaxRecord("comment", "0123456789abcdef0123456789abcdef01234567");
  std::string global = TarHeader("pax_global_header", 'g', record.size()) + Pad512(record);
  std::string path = PaxRecord("path", "caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac");
  std::string utf8 = TarHeader("PaxHeaders/x", 'x', path.size()) + Pad512(path) +
                     TarHeader("ascii-placeholder", '0', 4) + Pad512("utf8");
  std::string full = global + utf8 + BuildTar({File("raw-\xff-byte", "raw")});
  std::string root = MakeDir("root");
  auto applied = ApplyBind(full, kTar, root);
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(ReadAll(root + "/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac"), "utf8");
  EXPECT_EQ(ReadAll(root + "/raw-\xff-byte"), "raw") << "non-UTF-8 names are bytes";
  EXPECT_FALSE(Exists(root + "/pax_global_header"));
  EXPECT_FALSE(Exists(root + "/ascii-placeholder"));
}

TEST_F(ApplyTest, ExistingPathsReplacedUnlessDirOverDir) {
  std::string root = MakeDir("root");
  MakeDir("root/was-dir/sub");
  WriteFile(root + "/was-dir/sub/f", "x");
  WriteFile(root + "/was-file", "x");
  MakeDir("root/kept");
  WriteFile(root + "/kept/inside", "stays");
  ASSERT_EQ(::symlink("/etc", (root + "/was-link").c_str()), 0);
  std::string tar = BuildTar({File("was-dir", "now a file"), Dir("was-file", 0700),
                              Dir("kept", 0711), File("was-link", "replaces the link")});
  ASSERT_TRUE(ApplyBind(tar, kTar, root));
  EXPECT_EQ(ReadAll(root + "/was-dir"), "now a file");
  EXPECT_EQ(Lstat(root + "/was-file").st_mode, S_IFDIR | 0700);
  EXPECT_EQ(Lstat(root + "/kept").st_mode, S_IFDIR | 0711);
  EXPECT_EQ(ReadAll(root + "/kept/inside"), "stays");
  EXPECT_EQ(ReadAll(root + "/was-link"), "replaces the link");
  EXPECT_NE(ReadAll("/etc/hostname"), "replaces the link");
}

TEST_F(ApplyTest, CompressionByMediaTypeAndMagic) {
  std::string tar = BuildTar({Dir("d"), File("d/f", std::string(100000, 'z'))});
  Digest diff_id = Digest::FromBytes(tar);
  struct Case {
    std::string name, blob, media_type;
  };
  std::vector<Case> cases = {
      {"plain", tar, kTar},
      {"gzip", Gzip(tar), kTarGzip},
      {"gzip-multimember", Gzip(tar, 3), kTarGzip},
      {"zstd", Zstd(tar), kTarZstd},
      {"docker-gzip", Gzip(tar), kDockerGzip},
      {"docker-plain-but-gzip", Gzip(tar), kDockerTar},  // sniffed
      {"docker-plain", tar, kDockerTar},
      {"oci-gzip-but-plain", tar, kTarGzip},  // containerd: the magic decides
      {"nondistributable", Gzip(tar),
       "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"},
  };
  for (const auto& c : cases) {
    std::string root = MakeDir(c.name);
    auto applied = ApplyBind(c.blob, c.media_type, root);
    ASSERT_TRUE(applied) << c.name << ": " << applied.error().ToString();
    EXPECT_EQ(applied->digest, diff_id) << c.name;
    EXPECT_EQ(applied->size, static_cast<int64_t>(tar.size())) << c.name;
    EXPECT_EQ(ReadAll(root + "/d/f"), std::string(100000, 'z')) << c.name;
  }
}

TEST_F(ApplyTest, GzipImplementationsAgree) {
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7919) % 251);
  std::string gz = Gzip(data, 2);
  for (GzipImpl impl : {GzipImpl::kDefault, GzipImpl::kZlib}) {
    struct StringReader : Reader {
      std::string_view s;
      Result<size_t> Read(char* buf, size_t n) override {
        n = std::min({n, s.size(), size_t{7777}});
        std::memcpy(buf, s.data(), n);
        s.remove_prefix(n);
        return n;
      }
    } src;
    src.s = gz;
    auto r = Decompress(Compression::kGzip, src, impl);
    ASSERT_TRUE(r);
    std::string out;
    std::vector<char> buf(65536);
    for (;;) {
      auto n = (*r)->Read(buf.data(), buf.size());
      ASSERT_TRUE(n) << n.error().ToString();
      if (*n == 0) break;
      out.append(buf.data(), *n);
    }
    EXPECT_EQ(out, data);

    // And compression: ISA-L / zlib output is valid gzip.
    struct StringSink : Sink {
      std::string s;
      Status Write(std::string_view d) override {
        s.append(d);
        return Ok();
      }
    } sink;
    auto gw = GzipWriter::Create(sink, impl);
    ASSERT_TRUE(gw);
    ASSERT_TRUE((*gw)->Write(data));
    ASSERT_TRUE((*gw)->Close());
    EXPECT_EQ(sink.s.substr(0, 2), "\x1f\x8b");
    EXPECT_EQ(Gunzip(sink.s), data);
  }
}

TEST_F(ApplyTest, CorruptStreamsAndUnknownTypesRefused) {
  std::string noise(50000, '\0');
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::string tar = BuildTar({File("f", noise)});
  std::string root = MakeDir("root");

  auto r = ApplyBind(tar, "application/vnd.oci.image.layer.v1.tar+lz4", root);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kNotImplemented));
  EXPECT_EQ(r.error().What(),
            "failed to get stream processor for application/vnd.oci.image.layer.v1.tar+lz4: "
            "no processor for media-type");
  r = ApplyBind(tar, "application/vnd.oci.image.layer.v1.tar+encrypted", root);
  EXPECT_TRUE(!r && r.error().Is(Errc::kNotImplemented));
  r = ApplyBind(tar, "application/json", root);
  EXPECT_TRUE(!r && r.error().Is(Errc::kNotImplemented));

  std::string gz = Gzip(tar);
  std::string truncated = gz.substr(0, gz.size() / 2);
  r = ApplyBind(truncated, kTarGzip, root);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << r.error().ToString();
  EXPECT_NE(r.error().What().find("gzip"), std::string::npos) << r.error().ToString();

  std::string garbage_after = gz + "not gzip";
  r = ApplyBind(garbage_after, kTarGzip, root);
  EXPECT_FALSE(r) << "data after the last gzip member";

  r = ApplyBind(Zstd(tar).substr(0, 100), kTarZstd, root);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().What().find("zstd"), std::string::npos) << r.error().ToString();

  r = ApplyBind(std::string(2048, 'x'), kTar, root);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << r.error().ToString();

  r = ApplyBind("", kTar, root);
  EXPECT_TRUE(r) << "an empty stream is an empty layer: " << r.error().ToString();
}

// An entry type containerd does not apply (issue 13, point 5): libarchive would write it as a
// regular file; the apply fails naming it, before the entry and what follows it.
TEST_F(ApplyTest, UnhandledEntryTypeRefused) {
  std::string tar = TarHeader("a", '0', 1) + Pad512("a") + TarHeader("zz", 'Z', 4) +
                    Pad512("zzzz") + TarHeader("b", '0', 1) + Pad512("b") + std::string(1024, '\0');
  for (const auto& [blob, media_type] : std::vector<std::pair<std::string, std::string>>{
           {tar, std::string(kTar)}, {Gzip(tar), std::string(kTarGzip)}}) {
    std::string root = MakeDir("unhandled-" + std::to_string(blob.size()));
    auto r = ApplyBind(blob, media_type, root);
    ASSERT_FALSE(r) << "a 'Z' entry was applied";
    EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << r.error().ToString();
    EXPECT_NE(r.error().What().find("tar entry \"zz\": unhandled tar header type 'Z'"),
              std::string::npos)
        << r.error().ToString();
    struct stat st {};
    EXPECT_NE(::lstat((root + "/zz").c_str(), &st), 0);
    EXPECT_NE(::lstat((root + "/b").c_str(), &st), 0);
  }
}

// At debug level every Apply logs where its time went (bench/run.sh berth_pull sums these).
TEST_F(ApplyTest, DebugLogBreaksDownTheTime) {
  std::string tar = BuildTar({Dir("d"), File("d/f", std::string(200000, 'q'))});
  std::string gz = Gzip(tar);
  std::string root = MakeDir("root");
  const log::Level before = log::GetLevel();
  log::SetLevel(log::Level::kDebug);
  testing::internal::CaptureStderr();
  auto applied = ApplyBind(gz, kTarGzip, root);
  std::string out = testing::internal::GetCapturedStderr();
  log::SetLevel(before);
  ASSERT_TRUE(applied) << applied.error().ToString();
  size_t at = out.find("msg=\"diff applied\"");
  ASSERT_NE(at, std::string::npos) << out;
  std::string line = out.substr(at, out.find('\n', at) - at);
  EXPECT_NE(line.find("compression=gzip"), std::string::npos) << line;
  EXPECT_NE(line.find(fmt::format(" size={} ", gz.size())), std::string::npos) << line;
  EXPECT_NE(line.find(fmt::format(" uncompressed={} ", tar.size())), std::string::npos) << line;
  for (const char* key :
       {"total_s", "cpu_s", "read_s", "verify_s", "decompress_s", "diffid_s", "write_s"}) {
    std::string want = fmt::format(" {}=", key);
    size_t k = line.find(want);
    ASSERT_NE(k, std::string::npos) << key << " missing: " << line;
    // Seconds with 6 decimals, never negative.
    std::string value =
        line.substr(k + want.size(), line.find(' ', k + want.size()) - k - want.size());
    EXPECT_TRUE(std::regex_match(value, std::regex("[0-9]+\\.[0-9]{6}"))) << key << "=" << value;
  }
  // Runqueue wait: a number too, unless this kernel keeps no schedstat.
  EXPECT_TRUE(std::regex_search(line, std::regex(" runq_s=([0-9]+\\.[0-9]{6}|n/a) "))) << line;
}

TEST_F(ApplyTest, DigestMismatchRefused) {
  std::string tar = BuildTar({File("f", "content")});
  std::string other = BuildTar({File("f", "tampered")});
  Descriptor good = Put(tar, kTar);
  // The blob stored under `good.digest` is replaced by different bytes (a corrupted store).
  std::string blob_path = Path("content/blobs/sha256/") + std::string(good.digest.Encoded());
  ASSERT_EQ(::chmod(blob_path.c_str(), 0644), 0);
  WriteFile(blob_path, other);
  std::string root = MakeDir("root");
  auto r = differ_->Apply(ctx_, good, {{.type = "bind", .source = root, .options = {"rbind"}}});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kFailedPrecondition)) << r.error().ToString();
  EXPECT_NE(r.error().What().find("content digest mismatch"), std::string::npos);
  EXPECT_NE(r.error().What().find(good.digest.String()), std::string::npos);
}

TEST_F(ApplyTest, ReaderErrorsSurface) {
  std::string root = MakeDir("root");
  Descriptor missing{.media_type = kTar, .digest = Digest::FromBytes("nothing"), .size = 7};
  auto r = differ_->Apply(ctx_, missing, {{.type = "bind", .source = root, .options = {"rbind"}}});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kNotFound)) << r.error().ToString();
  // Bad mounts: the mount error, and no temp mount point left behind.
  r = differ_->Apply(ctx_, Put(BuildTar({}), kTar),
                     {{.type = "bind", .source = Path("nope"), .options = {"rbind"}}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().What().find("failed to mount"), std::string::npos) << r.error().ToString();
  auto names = ReadDirNamesOf(Path("tmpmounts"));
  EXPECT_TRUE(names.empty());
}

}  // namespace
}  // namespace berth::diff::test

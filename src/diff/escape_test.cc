// Malicious layers: every way out of the root is refused with a clear error naming the entry,
// in plain and overlay mode, and nothing outside the root changes (a canary directory beside it,
// /etc/passwd).
#include "diff/apply_tar.h"
#include "diff/test_util.h"

namespace berth::diff::test {
namespace {

struct StringReader : Reader {
  explicit StringReader(std::string data) : s(std::move(data)), rest(s) {}
  Result<size_t> Read(char* buf, size_t n) override {
    n = std::min(n, rest.size());
    std::memcpy(buf, rest.data(), n);
    rest.remove_prefix(n);
    return n;
  }
  std::string s;
  std::string_view rest;
};

struct EscapeCase {
  std::string name;
  // Builds the layer; `canary` is the absolute path of the canary directory.
  std::function<std::vector<TarEntry>(const std::string& canary)> layer;
  std::string refused_entry;      // "" = must apply (and still touch nothing outside)
  bool existing_symlink = false;  // root/evil -> canary exists before the layer
};

std::vector<EscapeCase> Cases() {
  return {
      {"dotdot", [](auto&) { return std::vector<TarEntry>{File("../escaped", "x")}; },
       "../escaped"},
      {"dotdot-nested",
       [](auto&) {
         return std::vector<TarEntry>{Dir("a"), File("a/../../escaped", "x")};
       },
       "a/../../escaped"},
      {"absolute", [](auto& c) { return std::vector<TarEntry>{File(c + "/pwned", "x")}; }, "*abs"},
      {"absolute-dir", [](auto&) { return std::vector<TarEntry>{Dir("/")}; }, "/"},
      {"symlink-absolute-then-write",
       [](auto& c) {
         return std::vector<TarEntry>{Symlink("evil", c), File("evil/pwned", "x")};
       },
       "evil/pwned"},
      {"symlink-relative-then-write",
       [](auto&) {
         return std::vector<TarEntry>{Symlink("evil", "../canary"), File("evil/pwned", "x")};
       },
       "evil/pwned"},
      {"symlink-deep-then-write",
       [](auto&) {
         return std::vector<TarEntry>{Dir("d"), Symlink("d/evil", "../../canary"),
                                      File("d/evil/pwned", "x")};
       },
       "d/evil/pwned"},
      {"symlink-to-root-then-write",
       [](auto&) {
         return std::vector<TarEntry>{Symlink("evil", "/"), File("evil/etc/passwd", "x")};
       },
       "evil/etc/passwd"},
      {"symlink-then-mkdir",
       [](auto& c) {
         return std::vector<TarEntry>{Symlink("evil", c), Dir("evil/sub")};
       },
       "evil/sub/"},  // the raw name, as the archive has it
      {"symlink-then-whiteout",
       [](auto& c) {
         return std::vector<TarEntry>{Symlink("evil", c), Whiteout("evil/.wh.file")};
       },
       "evil/.wh.file"},
      {"symlink-then-opaque",
       [](auto& c) {
         return std::vector<TarEntry>{Symlink("evil", c), Whiteout("evil/.wh..wh..opq")};
       },
       "evil/.wh..wh..opq"},
      {"existing-symlink-then-write",
       [](auto&) { return std::vector<TarEntry>{File("evil/pwned", "x")}; }, "evil/pwned", true},
      {"hardlink-dotdot",
       [](auto&) { return std::vector<TarEntry>{Hardlink("passwd", "../../etc/passwd")}; },
       "passwd"},
      {"hardlink-absolute",
       [](auto& c) { return std::vector<TarEntry>{Hardlink("stolen", c + "/file")}; }, "stolen"},
      {"hardlink-through-symlink",
       [](auto& c) {
         return std::vector<TarEntry>{Symlink("evil", c), Hardlink("stolen", "evil/file")};
       },
       "stolen"},
      {"whiteout-dotdot", [](auto&) { return std::vector<TarEntry>{Whiteout(".wh...")}; },
       ".wh..."},
      {"whiteout-dotdot-in-dir",
       [](auto&) {
         return std::vector<TarEntry>{Dir("sub"), Whiteout("sub/.wh...")};
       },
       "sub/.wh..."},
      {"whiteout-dot", [](auto&) { return std::vector<TarEntry>{Whiteout(".wh..")}; }, ".wh.."},
      {"whiteout-empty", [](auto&) { return std::vector<TarEntry>{Whiteout("x/.wh.")}; }, "x/.wh."},
      // Allowed, but must not write through the links they replace or name.
      {"file-replaces-symlink",
       [](auto&) { return std::vector<TarEntry>{File("evil", "replaced")}; }, "", true},
      {"hardlink-to-outward-symlink",
       [](auto& c) {
         TarEntry h = Hardlink("h", "evil");
         h.perm = 0777;
         h.uid = 4321;
         return std::vector<TarEntry>{Symlink("evil", c + "/file"), h};
       },
       ""},
  };
}

class EscapeTest : public DiffTest, public ::testing::WithParamInterface<bool> {};

TEST_P(EscapeTest, RefusedAndNothingOutsideTouched) {
  const bool overlay = GetParam();
  const struct stat passwd_before = Lstat("/etc/passwd");
  for (const auto& c : Cases()) {
    SCOPED_TRACE(c.name);
    std::string sandbox = MakeDir(c.name);
    std::string root = MakeDir(c.name + "/root");
    std::string canary = MakeDir(c.name + "/canary");
    WriteFile(canary + "/file", "canary");
    if (c.existing_symlink) {
      ASSERT_EQ(::symlink(canary.c_str(), (root + "/evil").c_str()), 0);
    }
    const auto canary_before = Describe(canary);
    const auto sandbox_before = ReadDirNamesOf(sandbox);

    StringReader src(BuildTar(c.layer(canary)));
    Status s = ApplyTar(root, src, {.overlay = overlay});
    if (c.refused_entry.empty()) {
      EXPECT_TRUE(s) << s.error().ToString();
    } else {
      ASSERT_FALSE(s) << "applied";
      EXPECT_TRUE(s.error().Is(Errc::kInvalidArgument)) << s.error().ToString();
      std::string named = c.refused_entry == "*abs" ? "tar entry \"" + canary + "/pwned\""
                                                    : "tar entry \"" + c.refused_entry + "\"";
      EXPECT_NE(s.error().What().find(named), std::string::npos) << s.error().ToString();
    }
    EXPECT_EQ(Describe(canary), canary_before);
    EXPECT_EQ(ReadDirNamesOf(sandbox), sandbox_before);
    EXPECT_EQ(ReadAll(canary + "/file"), "canary");
    EXPECT_FALSE(Exists(Path("escaped")));
    EXPECT_FALSE(Exists(Path(c.name + "/escaped")));
  }
  const struct stat passwd_after = Lstat("/etc/passwd");
  EXPECT_EQ(passwd_after.st_nlink, passwd_before.st_nlink);
  EXPECT_EQ(passwd_after.st_mtim.tv_sec, passwd_before.st_mtim.tv_sec);
  EXPECT_EQ(passwd_after.st_size, passwd_before.st_size);
}

INSTANTIATE_TEST_SUITE_P(Modes, EscapeTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Overlay" : "Plain"; });

TEST_F(DiffTest, EscapeThroughTheDifferIsRefusedWithItsClass) {
  std::string sandbox = MakeDir("sandbox");
  std::string root = MakeDir("sandbox/root");
  std::string canary = MakeDir("sandbox/canary");
  std::string tar = BuildTar(
      {Dir("ok"), File("ok/file", "fine"), Symlink("evil", canary), File("evil/pwned", "x")});
  auto r = ApplyBind(Gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip", root);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << r.error().ToString();
  EXPECT_NE(r.error().ToString().find("tar entry \"evil/pwned\""), std::string::npos)
      << r.error().ToString();
  EXPECT_TRUE(ReadDirNamesOf(canary).empty());
  EXPECT_TRUE(ReadDirNamesOf(Path("tmpmounts")).empty()) << "unmounted on failure";
}

}  // namespace
}  // namespace berth::diff::test

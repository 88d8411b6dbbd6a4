#include "runtime/binary.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "common/fs.h"

namespace berth::runtime {
namespace {

TEST(BinaryName, LastTwoParts) {
  EXPECT_EQ(BinaryName("io.containerd.runc.v2"), "containerd-shim-runc-v2");
  EXPECT_EQ(BinaryName("io.containerd.berth.v2"), "containerd-shim-berth-v2");
  EXPECT_EQ(BinaryName("runc.v1"), "containerd-shim-runc-v1");
  EXPECT_EQ(BinaryName("runc"), "");
}

void MakeExe(const std::string& path) {
  std::ofstream(path) << "#!/bin/sh\n";
  ::chmod(path.c_str(), 0755);
}

TEST(ShimResolver, ConfiguredDerivedAndAbsolute) {
  auto daemon = fs::TempDir::Create();
  auto pathdir = fs::TempDir::Create();
  ASSERT_TRUE(daemon && pathdir);
  MakeExe(daemon->Path() + "/containerd-shim-berth-v2");
  MakeExe(pathdir->Path() + "/containerd-shim-berth-v2");  // daemon dir wins for configured
  MakeExe(pathdir->Path() + "/containerd-shim-foo-v1");
  MakeExe(daemon->Path() + "/containerd-shim-bar-v1");  // found after $PATH
  MakeExe(pathdir->Path() + "/custom");

  std::map<std::string, std::string> shims = {{"io.containerd.runc.v2", "containerd-shim-berth-v2"},
                                              {"abs", pathdir->Path() + "/custom"},
                                              {"missing", "/nonexistent/shim"}};
  ShimResolver r(shims, daemon->Path(), pathdir->Path());
  EXPECT_EQ(*r.Resolve("io.containerd.runc.v2"), daemon->Path() + "/containerd-shim-berth-v2");
  EXPECT_EQ(*r.Resolve("abs"), pathdir->Path() + "/custom");
  EXPECT_EQ(*r.Resolve("x.foo.v1"), pathdir->Path() + "/containerd-shim-foo-v1");
  EXPECT_EQ(*r.Resolve("x.bar.v1"), daemon->Path() + "/containerd-shim-bar-v1");
  EXPECT_EQ(*r.Resolve(pathdir->Path() + "/custom"), pathdir->Path() + "/custom");
  EXPECT_TRUE(r.Resolve("missing").error().Is(Errc::kNotFound));
  EXPECT_TRUE(r.Resolve("x.none.v9").error().Is(Errc::kNotFound));
  EXPECT_TRUE(r.Resolve("/nonexistent").error().Is(Errc::kNotFound));
  EXPECT_TRUE(r.Resolve("runc").error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(r.Resolve("").error().Is(Errc::kInvalidArgument));
}

// A runtime name is a name, never a path below $PATH or the daemon's directory: the shim it
// would name exists here, and is still refused.
TEST(ShimResolver, RuntimeNameCannotReachIntoSubdirectories) {
  auto pathdir = fs::TempDir::Create();
  ASSERT_TRUE(pathdir);
  ASSERT_TRUE(fs::MkdirAll(pathdir->Path() + "/containerd-shim-x", 0755));
  MakeExe(pathdir->Path() + "/containerd-shim-x/evil-v2");
  ShimResolver r({}, "", pathdir->Path());
  auto got = r.Resolve("io.containerd.x/evil.v2");
  ASSERT_FALSE(got) << *got;
  EXPECT_TRUE(got.error().Is(Errc::kInvalidArgument)) << got.error().ToString();
  EXPECT_NE(got.error().ToString().find("io.containerd.x/evil.v2"), std::string::npos);
  EXPECT_FALSE(r.Resolve(std::string("io.containerd.x\0y.v2", 20)));
}

TEST(RunCommand, StdioCwdAndStatus) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  auto r = RunCommand({"/bin/sh", "-c", "pwd; cat; echo err >&2; exit 3"}, {"PATH=/bin"},
                      dir->Path(), "input", /*combine=*/false);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 3);
  EXPECT_EQ(r->out, dir->Path() + "\ninput");
  EXPECT_EQ(r->err, "err\n");
}

TEST(RunCommand, DaemonizedGrandchildDoesNotHoldItUp) {
  // The grandchild keeps stdout open for a long time; we return once the child exits.
  auto r = RunCommand({"/bin/sh", "-c", "echo addr; (sleep 30 &) ; exit 0"}, {"PATH=/bin"}, "", "",
                      /*combine=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 0);
  EXPECT_EQ(r->out, "addr\n");
}

TEST(RunCommand, KilledAfterTimeout) {
  auto r = RunCommand({"/bin/sh", "-c", "exec sleep 100"}, {"PATH=/bin"}, "", "",
                      /*combine=*/true, std::chrono::milliseconds(200));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kDeadlineExceeded)) << r.error().ToString();
}

TEST(ShimEnv, SetsTtrpcAddress) {
  ShimCommand cmd{.ttrpc_address = "/run/x.ttrpc"};
  auto env = ShimEnv(cmd);
  EXPECT_NE(std::find(env.begin(), env.end(), "TTRPC_ADDRESS=/run/x.ttrpc"), env.end());
  EXPECT_NE(std::find(env.begin(), env.end(), "GOMAXPROCS=2"), env.end());
}

}  // namespace
}  // namespace berth::runtime

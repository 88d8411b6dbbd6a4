// Interop: a runtime name mapped in the config to Debian's real containerd-shim-runc-v2 runs
// containers through `ctr run --runtime <name>`, next to the default mapping to our shim; and
// Tasks.Create's runtime_path (ctr --runtime with an absolute path) is honoured.
#include <gtest/gtest.h>

#include "task_fixture.h"

namespace berth::testing {
namespace {

class InteropIT : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(f_.Setup(std::string("\"berth.test.realrunc.v2\" = \"") + kRuncShim + "\"\n"))
        << (f_.D() ? f_.D()->Log() : "");
  }
  void TearDown() override {
    f_.Cleanup();
    if (HasFailure() && f_.D()) std::cerr << "berthd log:\n" << f_.D()->Log() << "\n";
  }
  TaskFixture f_;
};

TEST_F(InteropIT, ConfiguredRuntimeNameRunsTheRealRuncShim) {
  auto r = f_.Ctr({"run", "--rm", "--runtime", "berth.test.realrunc.v2", kImage, "i1", "sh", "-c",
                   "echo interop; exit 4"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_EQ(r.out, "interop\n");

  f_.Ok({"run", "-d", "--runtime", "berth.test.realrunc.v2", kImage, "i2", "sleep", "1000"});
  EXPECT_EQ(f_.StatusOf("i2"), "RUNNING");
  // The bundle records the shim binary, for restarts.
  EXPECT_EQ(ReadText(f_.BundleDir("i2") + "/shim-binary-path"), kRuncShim);
  EXPECT_EQ(f_.Ok({"containers", "ls"}).out.find("berth.test.realrunc.v2") == std::string::npos,
            false);
  f_.Ok({"tasks", "kill", "-s", "SIGKILL", "i2"});
  ASSERT_TRUE(f_.WaitStatus("i2", "STOPPED"));
  f_.Ok({"tasks", "rm", "i2"});
  f_.Ok({"containers", "rm", "i2"});
}

TEST_F(InteropIT, UnknownRuntimeIsAClearError) {
  auto r = f_.Ctr({"run", "--rm", "--runtime", "io.containerd.nosuch.v9", kImage, "u1", "true"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("containerd-shim-nosuch-v9"), std::string::npos) << r.err;
  EXPECT_TRUE(f_.Tasks().empty());
  f_.Ctr({"containers", "rm", "u1"});
}

TEST_F(InteropIT, AbsoluteRuntimePathIsUsedAsIs) {
  auto r = f_.Ctr({"run", "--rm", "--runtime", kRuncShim, kImage, "p1", "echo", "by path"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "by path\n");
}

}  // namespace
}  // namespace berth::testing

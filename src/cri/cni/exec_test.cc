#include "cri/cni/exec.h"

#include <gtest/gtest.h>

#include <string>

namespace berth::cri::cni::internal {
namespace {

using std::chrono::seconds;

TEST(Exec, PluginThatIgnoresItsStdinDoesNotKillUs) {
  // 1 MiB is far beyond a pipe's buffer: the write meets EPIPE once the child has exited.
  auto r = Exec("/bin/true", {}, std::string(1 << 20, 'x'), seconds(30));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 0);
}

TEST(Exec, StdioStatusAndExactEnvironment) {
  // /bin/sh gets only what is passed: no PATH, so use builtins.
  auto r = Exec("/bin/sh", {"FOO=bar"}, "", seconds(30));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 0);  // sh with empty stdin exits 0

  // A script on stdin: sh reads it, echoes env and its input's rest.
  auto s = Exec("/bin/sh", {"FOO=bar"}, "echo \"out $FOO\"; echo err >&2; exit 7\n", seconds(30));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 7);
  EXPECT_EQ(s->out, "out bar\n");
  EXPECT_EQ(s->err, "err\n");
}

TEST(Exec, MissingBinary) {
  auto r = Exec("/nonexistent/plugin", {}, "", seconds(30));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kNotFound)) << r.error().ToString();
}

}  // namespace
}  // namespace berth::cri::cni::internal

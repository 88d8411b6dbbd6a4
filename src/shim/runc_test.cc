#include "shim/runc.h"

#include <gtest/gtest.h>

#include "common/fs.h"
#include "shim/spawn.h"

namespace berth::shim {
namespace {

using Args = std::vector<std::string>;

TEST(RuncTest, GlobalFlagsAsGoRunc) {
  Runc r(RuncConfig{.binary = "crun",
                    .root = "/run/berth/runc/default",
                    .log_path = "/b/log.json",
                    .systemd_cgroup = true});
  EXPECT_EQ(r.Args({"start", "c1"}),
            (Args{"crun", "--root", "/run/berth/runc/default", "--log", "/b/log.json",
                  "--log-format", "json", "--systemd-cgroup", "start", "c1"}));
  Runc plain(RuncConfig{.binary = ""});
  EXPECT_EQ(plain.Args({"pause", "x"}), (Args{"runc", "pause", "x"}));
}

TEST(RuncTest, Commands) {
  EXPECT_EQ(CreateCommand("c1", CreateOpts{.bundle = "/b", .pid_file = "/b/init.pid"}),
            (Args{"create", "--bundle", "/b", "--pid-file", "/b/init.pid", "c1"}));
  EXPECT_EQ(CreateCommand("c1", CreateOpts{.bundle = "/b",
                                           .pid_file = "/b/init.pid",
                                           .console_socket = "/tmp/pty/pty.sock",
                                           .no_pivot = true,
                                           .no_new_keyring = true}),
            (Args{"create", "--bundle", "/b", "--pid-file", "/b/init.pid", "--console-socket",
                  "/tmp/pty/pty.sock", "--no-pivot", "--no-new-keyring", "c1"}));
  EXPECT_EQ(ExecCommand("c1", ExecOpts{.process_file = "/b/p.json", .pid_file = "/b/e.pid"}),
            (Args{"exec", "--process", "/b/p.json", "--detach", "--pid-file", "/b/e.pid", "c1"}));
  EXPECT_EQ(KillCommand("c1", 9, true), (Args{"kill", "--all", "c1", "9"}));
  EXPECT_EQ(KillCommand("c1", 15, false), (Args{"kill", "c1", "15"}));
  EXPECT_EQ(DeleteCommand("c1", true), (Args{"delete", "--force", "c1"}));
  EXPECT_EQ(DeleteCommand("c1", false), (Args{"delete", "c1"}));
}

TEST(RuncTest, LastRuntimeErrorTakesTheLastErrorLine) {
  std::string log =
      R"({"level":"info","msg":"starting","time":"2026-11-23T10:00:00Z"})"
      "\n"
      R"({"level":"error","msg":"first failure","time":"2026-11-23T10:00:01Z"})"
      "\n"
      "not json at all\n"
      R"({"level":"error","msg":"container_linux.go:380: starting container process caused: exec: \"nope\": executable file not found in $PATH","time":"x"})"
      "\n"
      R"({"level":"warning","msg":"later warning"})"
      "\n";
  EXPECT_EQ(LastRuntimeError(log),
            "container_linux.go:380: starting container process caused: exec: \"nope\": "
            "executable file not found in $PATH");
  EXPECT_EQ(LastRuntimeError(""), "");
  EXPECT_EQ(LastRuntimeError(R"({"level":"info","msg":"x"})"), "");
}

TEST(RuncTest, PsOutput) {
  auto pids = ParsePsOutput("[12,34,5]\n");
  ASSERT_TRUE(pids) << pids.error().ToString();
  EXPECT_EQ(*pids, (std::vector<int>{12, 34, 5}));
  EXPECT_TRUE(ParsePsOutput("null").error().What().find("unexpected") != std::string::npos);
  EXPECT_FALSE(ParsePsOutput("[\"a\"]"));
}

TEST(RuncTest, PidFile) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  ASSERT_TRUE(fs::WriteFileAtomic(dir->Path() + "/init.pid", "4242"));
  EXPECT_EQ(*ReadPidFile(dir->Path() + "/init.pid"), 4242);
  ASSERT_TRUE(fs::WriteFileAtomic(dir->Path() + "/bad.pid", "x1"));
  EXPECT_TRUE(ReadPidFile(dir->Path() + "/bad.pid").error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(ReadPidFile(dir->Path() + "/none.pid").error().Is(Errc::kNotFound));
}

TEST(RuncTest, FailureUsesLogJsonMessage) {
  // A fake runtime that logs an error the way runc does and fails.
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  std::string fake = dir->Path() + "/fake-runc";
  ASSERT_TRUE(fs::WriteFileAtomic(fake,
                                  "#!/bin/sh\n"
                                  "while [ $# -gt 0 ]; do case $1 in --log) log=$2; shift;; esac;"
                                  " shift; done\n"
                                  "echo '{\"level\":\"error\",\"msg\":\"boom from runtime\"}' >> "
                                  "$log\necho some stderr >&2\nexit 3\n",
                                  0755));
  Runc r(RuncConfig{.binary = fake, .log_path = dir->Path() + "/log.json"});
  auto st = r.Start("c1");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().What(), "OCI runtime start failed: boom from runtime");
  // Without a log the output and exit status are the message.
  Runc nolog(RuncConfig{.binary = fake});
  auto out = nolog.Run({"x"}, "", nullptr, true);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->exit_code, 3);
}

TEST(RuncTest, UpdateFeedsStdin) {
  auto dir = fs::TempDir::Create();
  ASSERT_TRUE(dir);
  std::string fake = dir->Path() + "/fake-runc";
  ASSERT_TRUE(fs::WriteFileAtomic(
      fake, "#!/bin/sh\ncat > \"$0.stdin\"\necho \"$@\" > \"$0.args\"\n", 0755));
  Runc r(RuncConfig{.binary = fake});
  ASSERT_TRUE(r.Update("c1", R"({"pids":{"limit":10}})"));
  EXPECT_EQ(*fs::ReadFile(fake + ".stdin"), R"({"pids":{"limit":10}})");
  EXPECT_EQ(*fs::ReadFile(fake + ".args"), "update --resources - c1\n");
}

TEST(SpawnTest, ExitCodes) {
  EXPECT_EQ(ExitCodeFromWaitStatus(0), 0);
  EXPECT_EQ(ExitCodeFromWaitStatus(3 << 8), 3);
  EXPECT_EQ(ExitCodeFromWaitStatus(9), 137);   // killed by SIGKILL
  EXPECT_EQ(ExitCodeFromWaitStatus(15), 143);  // SIGTERM
}

TEST(SpawnTest, LookPath) {
  EXPECT_EQ(*LookPath("/bin/sh"), "/bin/sh");
  EXPECT_TRUE(LookPath("sh"));
  EXPECT_TRUE(LookPath("definitely-not-a-program-xyz").error().Is(Errc::kNotFound));
}

}  // namespace
}  // namespace berth::shim

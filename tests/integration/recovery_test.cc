// Restart recovery with the real ctr: tasks outlive berthd (SIGTERM or kill -9); on start it
// reconnects to live shims, reports exits that happened while it was down, and cleans up after
// shims that died meanwhile, leaking no mount, runc state or bundle.
#include <gtest/gtest.h>

#include "task_fixture.h"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;

class RecoveryIT : public ShimParamIT {};

TEST_P(RecoveryIT, KillNineWithTenRunningContainers) {
  constexpr int kN = 10;
  std::map<std::string, std::string> pids;
  for (int i = 0; i < kN; ++i) {
    std::string id = "r" + std::to_string(i);
    f_.Ok({"run", "-d", kImage, id, "sleep", "1000"});
  }
  // One more that will exit while berthd is down, and one whose shim will die meanwhile.
  f_.Ok({"run", "-d", kImage, "exits", "sleep", "1000"});
  f_.Ok({"run", "-d", kImage, "lost", "sleep", "1000"});
  auto before = f_.Tasks();
  ASSERT_EQ(before.size(), static_cast<size_t>(kN + 2));
  for (const auto& [id, row] : before) {
    EXPECT_EQ(row.second, "RUNNING") << id;
    pids[id] = row.first;
  }

  f_.D()->Kill9();
  // While berthd is down: the init of "exits" is killed (status 137); the shim of "lost" dies.
  ::kill(std::atoi(pids["exits"].c_str()), SIGKILL);
  auto lost = FindProcesses({"-address " + f_.D()->Socket(), "-id lost"});
  ASSERT_EQ(lost.size(), 1u);
  ::kill(lost[0], SIGKILL);
  ASSERT_TRUE(Eventually([&] { return !ProcessAlive(lost[0]); }));
  ASSERT_TRUE(Eventually([&] { return !ProcessAlive(std::atoi(pids["exits"].c_str())); }));

  ASSERT_TRUE(f_.D()->Start()) << f_.D()->Log();
  auto after = f_.Tasks();
  for (int i = 0; i < kN; ++i) {
    std::string id = "r" + std::to_string(i);
    ASSERT_TRUE(after.contains(id)) << id;
    EXPECT_EQ(after[id].second, "RUNNING") << id;
    EXPECT_EQ(after[id].first, pids[id]) << id;
  }
  // The exit that happened while down is reported.
  EXPECT_EQ(after["exits"].second, "STOPPED");
  auto rm = f_.Ctr({"tasks", "rm", "exits"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_NE(rm.err.find("137"), std::string::npos) << rm.err;
  // The dead shim was cleaned up: no task, no bundle, no rootfs mount.
  EXPECT_FALSE(after.contains("lost"));
  EXPECT_NE(::access(f_.BundleDir("lost").c_str(), F_OK), 0);

  // The recovered tasks are fully usable: exec, kill, wait, delete.
  auto ex = f_.Ok({"tasks", "exec", "--exec-id", "x", "r0", "echo", "still here"});
  EXPECT_EQ(ex.out, "still here\n");
  for (int i = 0; i < kN; ++i) {
    std::string id = "r" + std::to_string(i);
    f_.Ok({"tasks", "kill", "-s", "SIGKILL", id});
  }
  for (int i = 0; i < kN; ++i) {
    std::string id = "r" + std::to_string(i);
    ASSERT_TRUE(f_.WaitStatus(id, "STOPPED")) << id;
    f_.Ok({"tasks", "rm", id});
    f_.Ok({"containers", "rm", id});
  }
  f_.Ok({"containers", "rm", "exits"});
  f_.Ok({"containers", "rm", "lost"});
  EXPECT_TRUE(f_.Tasks().empty());
  EXPECT_TRUE(MountsUnder(f_.D()->Dir()).empty());
  // Every shim has exited (Shutdown after Delete), recovered ones included.
  EXPECT_TRUE(Eventually([&] { return FindProcesses({"-address " + f_.D()->Socket()}).empty(); }))
      << [&] {
           std::string s;
           for (pid_t p : FindProcesses({"-address " + f_.D()->Socket()})) {
             s += ReadText("/proc/" + std::to_string(p) + "/cmdline") + "\n";
           }
           return s;
         }();
}

TEST_P(RecoveryIT, CleanStopLeavesTasksRunning) {
  f_.Ok({"run", "-d", kImage, "keep", "sleep", "1000"});
  std::string pid = f_.Tasks()["keep"].first;
  // A client blocked in Tasks.Wait (a foreground `ctr run`) does not hold up the shutdown.
  auto waiting = Background::Start(
      {"ctr", "-a", f_.D()->Socket(), "-n", f_.Ns(), "run", kImage, "fg", "sleep", "1000"},
      f_.D()->Dir() + "/fg.out");
  ASSERT_TRUE(waiting);
  ASSERT_TRUE(f_.WaitStatus("fg", "RUNNING"));
  ASSERT_EQ(f_.D()->Stop(), 0) << f_.D()->Log();
  EXPECT_NE(waiting->Wait(std::chrono::seconds(60)), -1);
  EXPECT_TRUE(ProcessAlive(std::atoi(pid.c_str())));
  ASSERT_TRUE(f_.D()->Start()) << f_.D()->Log();
  EXPECT_EQ(f_.StatusOf("keep"), "RUNNING");
  f_.Ok({"tasks", "kill", "-s", "SIGKILL", "keep"});
  ASSERT_TRUE(f_.WaitStatus("keep", "STOPPED"));
  f_.Ok({"tasks", "rm", "keep"});
}

INSTANTIATE_TEST_SUITE_P(Shims, RecoveryIT,
                         ::testing::Values(ShimParam{"runc"}, ShimParam{"berth"}), ParamName);

}  // namespace
}  // namespace berth::testing

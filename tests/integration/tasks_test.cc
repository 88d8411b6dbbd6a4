// The Tasks service and the runtime with the real ctr, for each shim serving
// io.containerd.runc.v2: run/exit codes/stdin, a detached task's whole life (ls, ps, exec, pause,
// resume, metrics, kill, rm) with its events, the pty under tmux, --runc-binary, a shim killed
// under a running daemon.
#include <gtest/gtest.h>

#include <fstream>

#include "task_fixture.h"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;

class TasksIT : public ShimParamIT {};

TEST_P(TasksIT, RunPrintsAndExits) {
  auto r = f_.Ctr({"run", "--rm", kImage, "t1", "echo", "hello"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello\n");

  r = f_.Ctr({"run", "--rm", kImage, "t2", "sh", "-c", "exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.err;

  // --rm removed task, container and bundle.
  EXPECT_TRUE(f_.Tasks().empty());
  EXPECT_EQ(f_.Ok({"containers", "ls", "-q"}).out, "");
  EXPECT_NE(::access(f_.BundleDir("t1").c_str(), F_OK), 0);
}

TEST_P(TasksIT, StdinReachesTheProcess) {
  // Exec's input goes to ctr's stdin.
  auto r = Exec({"ctr", "-a", f_.D()->Socket(), "-n", f_.Ns(), "run", "--rm", kImage, "t3b", "sh",
                 "-c", "read l; echo got $l"},
                "x\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "got x\n");
}

TEST_P(TasksIT, DetachedTaskLifecycleAndEvents) {
  auto events = Watch::Start({"ctr", "-a", f_.D()->Socket(), "events"});
  ASSERT_TRUE(events);

  f_.Ok({"run", "-d", kImage, "t4", "sleep", "1000"});
  auto tasks = f_.Tasks();
  ASSERT_TRUE(tasks.contains("t4"));
  EXPECT_EQ(tasks["t4"].second, "RUNNING");
  pid_t pid = std::atoi(tasks["t4"].first.c_str());
  EXPECT_GT(pid, 0);
  EXPECT_TRUE(ProcessAlive(pid));

  // ps: the init pid is listed.
  auto ps = f_.Ok({"tasks", "ps", "t4"});
  EXPECT_NE(ps.out.find(std::to_string(pid)), std::string::npos) << ps.out;

  // exec in the running container.
  auto ex = f_.Ok({"tasks", "exec", "--exec-id", "e1", "t4", "cat", "/etc/passwd"});
  EXPECT_NE(ex.out.find("root:"), std::string::npos) << ex.out;
  auto ex2 = f_.Ctr({"tasks", "exec", "--exec-id", "e2", "t4", "sh", "-c", "exit 5"});
  EXPECT_EQ(ex2.exit_code, 5) << ex2.err;

  f_.Ok({"tasks", "pause", "t4"});
  EXPECT_EQ(f_.StatusOf("t4"), "PAUSED");
  f_.Ok({"tasks", "resume", "t4"});
  EXPECT_EQ(f_.StatusOf("t4"), "RUNNING");

  // metrics: the shim's cgroup statistics.
  auto m = f_.Ok({"tasks", "metrics", "t4"});
  EXPECT_NE(m.out.find("METRIC"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("memory"), std::string::npos) << m.out;
  auto mj = f_.Ok({"tasks", "metrics", "--format", "json", "t4"});
  EXPECT_NE(mj.out.find("pids"), std::string::npos) << mj.out;

  // A container with a live task cannot be removed (ctr checks through Tasks.Get).
  auto crm = f_.Ctr({"containers", "rm", "t4"});
  EXPECT_NE(crm.exit_code, 0);
  EXPECT_NE(crm.err.find("non stopped"), std::string::npos) << crm.err;
  // Nor can the running task be deleted.
  EXPECT_NE(f_.Ctr({"tasks", "rm", "t4"}).exit_code, 0);

  f_.Ok({"tasks", "kill", "-s", "SIGKILL", "t4"});
  ASSERT_TRUE(f_.WaitStatus("t4", "STOPPED"));
  EXPECT_TRUE(Eventually([&] { return !ProcessAlive(pid); }));
  auto rm = f_.Ctr({"tasks", "rm", "t4"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_NE(rm.err.find("137"), std::string::npos) << rm.err;  // "exit with non-zero exit code"
  f_.Ok({"containers", "rm", "t4"});
  EXPECT_NE(::access(f_.BundleDir("t4").c_str(), F_OK), 0);
  EXPECT_TRUE(MountsUnder(f_.D()->Dir()).empty());

  // Every task event, in order, from the shim (through the ttrpc events endpoint).
  for (const char* topic :
       {"/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started",
        "/tasks/paused", "/tasks/resumed", "/tasks/exit", "/tasks/delete", "/containers/delete"}) {
    EXPECT_TRUE(events->WaitFor(topic, 20s)) << topic << " missing from:\n" << events->Out();
  }
  std::string out = events->Out();
  EXPECT_LT(out.find("/tasks/create"), out.find("/tasks/start"));
  EXPECT_LT(out.find("/tasks/start"), out.find("/tasks/exec-added"));
  EXPECT_LT(out.find("/tasks/resumed"), out.rfind("/tasks/delete"));
}

TEST_P(TasksIT, TtyUnderTmuxFollowsPaneSize) {
  std::string sock = "berth-it-" + f_.Ns();
  auto tmux = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"tmux", "-L", sock});
    return Exec(args);
  };
  std::string cmd =
      "ctr -a " + f_.D()->Socket() + " -n " + f_.Ns() + " run -t --rm " + kImage + " tty1 sh";
  ASSERT_EQ(tmux({"new-session", "-d", "-x", "80", "-y", "24", "-s", "t", cmd}).exit_code, 0);
  struct KillServer {
    std::function<void()> fn;
    ~KillServer() { fn(); }
  } kill_server{[&] { tmux({"kill-server"}); }};

  auto screen = [&] { return tmux({"capture-pane", "-p", "-t", "t"}).out; };
  ASSERT_TRUE(Eventually([&] { return f_.StatusOf("tty1") == "RUNNING"; })) << screen();
  // Sizes travel ctr (console size, SIGWINCH) -> Tasks.ResizePty -> shim -> pty
  // asynchronously: ask again until the shell sees the expected one.
  int n = 0;
  auto shell_sees = [&](const std::string& rows_cols) {
    return Eventually([&] {
      std::string mark = "size-" + std::to_string(++n) + "-";  // the typed line shows $((n))
      tmux({"send-keys", "-t", "t",
            "clear; echo size-$((" + std::to_string(n) + "))-$(stty size | tr ' ' x)", "Enter"});
      return Eventually([&] { return screen().find(mark) != std::string::npos; }, 10s) &&
             screen().find(mark + rows_cols) != std::string::npos;
    });
  };
  EXPECT_TRUE(shell_sees("24x80")) << screen();
  tmux({"resize-window", "-t", "t", "-x", "100", "-y", "30"});
  EXPECT_TRUE(shell_sees("30x100")) << screen();

  tmux({"send-keys", "-t", "t", "exit", "Enter"});
  EXPECT_TRUE(Eventually([&] { return f_.Tasks().empty(); })) << screen();
}

TEST_P(TasksIT, RuncBinaryWrapperIsUsed) {
  auto dir = fs::TempDir::Create("berth-it-runc-");
  ASSERT_TRUE(dir);
  std::string log = dir->Path() + "/calls";
  std::string wrapper = dir->Path() + "/runc-wrapper";
  {
    std::ofstream w(wrapper);
    w << "#!/bin/sh\necho \"$@\" >> " << log << "\nexec runc \"$@\"\n";
  }
  ::chmod(wrapper.c_str(), 0755);
  auto r = f_.Ctr({"run", "--rm", "--runc-binary", wrapper, kImage, "rb", "echo", "wrapped"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "wrapped\n");
  std::string calls = ReadText(log);
  EXPECT_NE(calls.find("create"), std::string::npos) << calls;
  EXPECT_NE(calls.find("start"), std::string::npos) << calls;
  EXPECT_NE(calls.find("delete"), std::string::npos) << calls;
}

TEST_P(TasksIT, CrunWhereTheHostAcceptsIt) {
  if (HybridCgroups()) {
    GTEST_SKIP() << "crun 1.8 refuses this machine's hybrid cgroup v1/v2 layout";
  }
  auto r = f_.Ctr({"run", "--rm", "--runc-binary", "/usr/bin/crun", kImage, "cr", "echo", "crun"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "crun\n");
}

TEST_P(TasksIT, ShimKilledUnderRunningDaemonIsCleanedUp) {
  auto events = Watch::Start({"ctr", "-a", f_.D()->Socket(), "events"});
  ASSERT_TRUE(events);
  f_.Ok({"run", "-d", kImage, "dead", "sleep", "1000"});
  auto shims = FindProcesses({"-address " + f_.D()->Socket(), "-id dead"});
  ASSERT_EQ(shims.size(), 1u);
  ::kill(shims[0], SIGKILL);
  // berthd notices the lost connection, runs the shim's `delete` and forgets the task.
  ASSERT_TRUE(Eventually([&] { return !f_.Tasks().contains("dead"); })) << f_.D()->Log();
  EXPECT_TRUE(events->WaitFor("/tasks/delete", 20s)) << events->Out();
  EXPECT_TRUE(Eventually([&] { return ::access(f_.BundleDir("dead").c_str(), F_OK) != 0; }));
  f_.Ok({"containers", "rm", "dead"});
  EXPECT_TRUE(MountsUnder(f_.D()->Dir()).empty());
}

TEST_P(TasksIT, WaitersDoNotHoldDaemonThreads) {
  // More clients blocked in Tasks.Wait (foreground `ctr run`) than the daemon's pool has
  // threads: other calls still go through, and each waiter gets its task's exit status.
  constexpr int kWaiters = 6;
  std::vector<std::unique_ptr<Background>> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    std::string id = "w" + std::to_string(i);
    waiters.push_back(Background::Start(
        {"ctr", "-a", f_.D()->Socket(), "-n", f_.Ns(), "run", kImage, id, "sleep", "1000"},
        f_.D()->Dir() + "/" + id + ".out"));
    ASSERT_TRUE(waiters.back());
    ASSERT_TRUE(f_.WaitStatus(id, "RUNNING")) << id;
  }
  EXPECT_EQ(f_.Tasks().size(), static_cast<size_t>(kWaiters));
  for (int i = 0; i < kWaiters; ++i) {
    f_.Ok({"tasks", "kill", "-s", "SIGKILL", "w" + std::to_string(i)});
  }
  for (auto& w : waiters) EXPECT_EQ(w->Wait(std::chrono::seconds(60)), 137);
}

TEST_P(TasksIT, ErrorsAsContainerd) {
  auto r = f_.Ctr({"tasks", "start", "nosuch"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
  f_.Ok({"containers", "create", kImage, "c1"});
  r = f_.Ctr({"tasks", "kill", "c1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
  f_.Ok({"tasks", "start", "-d", "c1"});
  r = f_.Ctr({"tasks", "start", "-d", "c1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Shims, TasksIT, ::testing::Values(ShimParam{"runc"}, ShimParam{"berth"}),
                         ParamName);

}  // namespace
}  // namespace berth::testing

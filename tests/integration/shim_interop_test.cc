// Interop with a REAL containerd 1.6: containerd (Debian's) on a temp root/state/socket launches
// our containerd-shim-berth-v2 for the runtime io.containerd.berth.v2 (found in PATH, as it
// finds containerd-shim-runc-v2), and the real ctr runs containers through it. Cleaned up by
// PID and path: containerd is killed, mounts under its root are undone, our shims' sockets
// removed.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "common/mount.h"
#include "harness.h"

namespace berth::testing {
namespace {

constexpr const char* kImage = "docker.io/berth/busybox:latest";
constexpr const char* kRuntime = "io.containerd.berth.v2";

class ContainerdInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access("/usr/bin/containerd", X_OK), 0)
        << "containerd is missing (Debian package containerd): run make deps";
    auto dir = fs::TempDir::Create("berth-ctrd-");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    socket_ = dir_->Path() + "/containerd.sock";
    std::string config = dir_->Path() + "/config.toml";
    std::ostringstream cfg;
    cfg << "version = 2\n"
        << "root = \"" << dir_->Path() << "/root\"\n"
        << "state = \"" << dir_->Path() << "/state\"\n"
        << "disabled_plugins = [\"io.containerd.grpc.v1.cri\", "
           "\"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", "
           "\"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\", "
           "\"io.containerd.tracing.processor.v1.otlp\", \"io.containerd.internal.v1.tracing\"]\n"
        << "[grpc]\n  address = \"" << socket_ << "\"\n"
        << "[debug]\n  level = \"debug\"\n";
    ASSERT_TRUE(fs::WriteFileAtomic(config, cfg.str()));
    std::string bin_dir = BinPath("containerd-shim-berth-v2");
    bin_dir = bin_dir.substr(0, bin_dir.find_last_of('/'));
    const char* path = std::getenv("PATH");
    daemon_ = Background::Start(
        {"env",
         "PATH=" + bin_dir + ":" + (path != nullptr ? path : "/usr/sbin:/usr/bin:/sbin:/bin"),
         "containerd", "--config", config},
        dir_->Path() + "/containerd.log");
    ASSERT_TRUE(daemon_);
    bool ready = false;
    for (int i = 0; i < 300 && !ready; ++i) {
      ready = Ctr({"version"}).exit_code == 0;
      if (!ready) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    ASSERT_TRUE(ready) << ReadText(dir_->Path() + "/containerd.log");
    std::string fixtures = Fixtures();
    ASSERT_FALSE(fixtures.empty());
    auto imp = Ctr({"images", "import", fixtures + "/busybox-oci.tar"});
    ASSERT_EQ(imp.exit_code, 0) << imp.out << imp.err;
  }

  void TearDown() override {
    if (!dir_) {
      return;
    }
    // Containers first (through the daemon while it lives), then the daemon by PID.
    for (const auto& id : ids_) {
      Ctr({"tasks", "kill", "-s", "SIGKILL", id});
      Ctr({"tasks", "delete", "-f", id});
      Ctr({"containers", "delete", id});
    }
    if (daemon_) {
      ::kill(daemon_->Pid(), SIGTERM);
      if (daemon_->Wait(std::chrono::seconds(20)) < 0) {
        daemon_->Kill();
      }
    }
    // Any shim of ours still serving this daemon: its socket name is derived from our address.
    for (const auto& id : ids_) {
      // Our shim keeps runc's state under containerd's state directory (<state>/runc).
      Exec({"runc", "--root", dir_->Path() + "/state/runc/" + ns_, "delete", "--force", id});
    }
    // runc removes a container's cgroups, not the /<ns> parents ctr's cgroupsPath created.
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
      std::string nsdir = e.path().string() + "/" + ns_;
      for (const auto& id : ids_) ::rmdir((nsdir + "/" + id).c_str());
      ::rmdir(nsdir.c_str());
    }
    std::string mounts = ReadText("/proc/self/mountinfo");
    std::istringstream in(mounts);
    std::string line;
    std::vector<std::string> targets;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string f;
      for (int i = 0; i < 5 && ls >> f; ++i) {
      }
      if (f.rfind(dir_->Path(), 0) == 0) {
        targets.push_back(f);
      }
    }
    for (auto it = targets.rbegin(); it != targets.rend(); ++it) {
      (void)mount::UnmountAll(*it);
    }
  }

  RunResult Ctr(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"ctr", "-a", socket_, "-n", ns_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Exec(argv, "", std::chrono::seconds(120));
  }

  std::optional<fs::TempDir> dir_;
  // Our own namespace: its runc root and cgroup parents are removed afterwards.
  std::string ns_ = "berth-interop-" + std::to_string(::getpid());
  std::string socket_;
  std::unique_ptr<Background> daemon_;
  std::vector<std::string> ids_;
};

TEST_F(ContainerdInterop, RunEchoAndKillDetached) {
  ids_ = {"berth-echo", "berth-detached"};
  auto run = Ctr({"run", "--rm", "--runtime", kRuntime, kImage, "berth-echo", "echo", "hello"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << ReadText(dir_->Path() + "/containerd.log");
  EXPECT_EQ(run.out, "hello\n");

  // Detached, then killed with ctr tasks kill; ctr sees the exit through our events.
  auto detached =
      Ctr({"run", "-d", "--runtime", kRuntime, kImage, "berth-detached", "sleep", "1000"});
  ASSERT_EQ(detached.exit_code, 0) << detached.out << detached.err;
  auto ls = Ctr({"tasks", "ls"});
  EXPECT_NE(ls.out.find("berth-detached"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("RUNNING"), std::string::npos) << ls.out;
  auto exec =
      Ctr({"tasks", "exec", "--exec-id", "e1", "berth-detached", "sh", "-c", "echo in-exec"});
  EXPECT_EQ(exec.exit_code, 0) << exec.err;
  EXPECT_EQ(exec.out, "in-exec\n");
  // Stats and Pids as containerd decodes them.
  auto metrics = Ctr({"tasks", "metrics", "berth-detached"});
  EXPECT_EQ(metrics.exit_code, 0) << metrics.err;
  EXPECT_NE(metrics.out.find("memory.usage_in_bytes"), std::string::npos) << metrics.out;
  auto ps = Ctr({"tasks", "ps", "berth-detached"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_NE(ps.out.find("PID"), std::string::npos) << ps.out;
  auto pause = Ctr({"tasks", "pause", "berth-detached"});
  EXPECT_EQ(pause.exit_code, 0) << pause.err;
  EXPECT_NE(Ctr({"tasks", "ls"}).out.find("PAUSED"), std::string::npos);
  auto resume = Ctr({"tasks", "resume", "berth-detached"});
  EXPECT_EQ(resume.exit_code, 0) << resume.err;
  auto kill = Ctr({"tasks", "kill", "-s", "SIGKILL", "berth-detached"});
  ASSERT_EQ(kill.exit_code, 0) << kill.err;
  bool stopped = false;
  for (int i = 0; i < 300 && !stopped; ++i) {
    ls = Ctr({"tasks", "ls"});
    stopped = ls.out.find("STOPPED") != std::string::npos;
    if (!stopped) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  EXPECT_TRUE(stopped) << ls.out;
  auto del = Ctr({"tasks", "delete", "berth-detached"});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  auto cdel = Ctr({"containers", "delete", "berth-detached"});
  EXPECT_EQ(cdel.exit_code, 0) << cdel.err;
  // No shim socket of ours is left for this daemon (/run/berth/s/<sha256 of address/ns/id>).
  for (const auto& id : ids_) {
    auto hash = Exec({"/bin/sh", "-c", "printf %s \"$0\" | sha256sum | cut -c1-64",
                      socket_ + "/" + ns_ + "/" + id});
    ASSERT_EQ(hash.exit_code, 0);
    std::string sock = "/run/berth/s/" + hash.out.substr(0, 64);
    EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "socket left: " << sock;
  }
  // No shim of ours is left for this daemon.
  auto pg = Exec({"pgrep", "-f", "containerd-shim-berth-v2 -namespace " + ns_ + " -id berth-"});
  EXPECT_NE(pg.exit_code, 0) << "shim still running: " << pg.out;
}

}  // namespace
}  // namespace berth::testing

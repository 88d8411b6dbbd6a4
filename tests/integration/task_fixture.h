#pragma once
// Shared fixture of the task integration tests (tasks_test, recovery_test,
// interop_runc_shim_test): a berthd whose io.containerd.runc.v2 runtime is served by one shim
// (the real containerd-shim-runc-v2 or ours), the busybox fixture imported and unpacked, and a
// cleanup that leaves no process, mount, runc state or cgroup behind even when a test fails.
#include <dirent.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace berth::testing {

inline constexpr const char* kImage = "docker.io/berth/busybox:latest";
inline constexpr const char* kRuncShim = "/usr/bin/containerd-shim-runc-v2";

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

inline std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// PIDs of the processes whose command line (args joined by spaces) contains every needle.
inline std::vector<pid_t> FindProcesses(const std::vector<std::string>& needles) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0 || pid == ::getpid()) continue;
    std::string cmd = ReadText("/proc/" + std::string(e->d_name) + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    bool all = !cmd.empty();
    for (const auto& n : needles) all = all && cmd.find(n) != std::string::npos;
    if (all) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

inline bool ProcessAlive(pid_t pid) { return ::kill(pid, 0) == 0; }

// Mount points at or below `dir`, deepest first.
inline std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    auto w = Words(line);
    if (w.size() > 4 && (w[4] == dir || w[4].starts_with(dir + "/"))) out.push_back(w[4]);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

// Polls `cond` (no timing assertion: the bound only stops a hung test).
template <class Fn>
bool Eventually(Fn cond, std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return cond();
}

// Which shim serves io.containerd.runc.v2 in a test.
struct ShimParam {
  std::string name;  // "runc" (Debian's containerd-shim-runc-v2) or "berth" (ours)
  std::string Binary() const {
    return name == "runc" ? kRuncShim : BinPath("containerd-shim-berth-v2");
  }
};

// gtest (and so ctest's test list) prints the shim's name instead of the struct's bytes.
inline void PrintTo(const ShimParam& param, std::ostream* os) { *os << param.name; }

inline std::string ParamName(const ::testing::TestParamInfo<ShimParam>& info) {
  return info.param.name;
}

// A unique namespace per test: runc state (/run/containerd/runc/<ns>) and cgroups (/<ns>/<id>)
// are host-global and other test runs may be going on at the same time.
inline std::string UniqueNamespace() {
  static std::atomic<int> n{0};
  return "it" + std::to_string(::getpid()) + "x" + std::to_string(n++);
}

class TaskFixture {
 public:
  // `shims`: the [..shims] table body; extra: more config.
  bool Setup(const std::string& shims_table, const std::string& extra = "") {
    ns_ = UniqueNamespace();
    d_ = Daemon::Create({.extra_config = "[plugins.\"io.containerd.runtime.v2.task\".shims]\n" +
                                         shims_table + extra});
    if (!d_ || !d_->Start()) return false;
    if (Fixtures().empty()) return false;
    auto r = d_->Ctr({"images", "import", Fixtures() + "/busybox-oci.tar"}, ns_);
    if (r.exit_code != 0) {
      ADD_FAILURE() << "import: " << r.err;
      return false;
    }
    return true;
  }

  RunResult Ctr(const std::vector<std::string>& args) const { return d_->Ctr(args, ns_); }
  RunResult Ok(const std::vector<std::string>& args) const {
    auto r = Ctr(args);
    EXPECT_EQ(r.exit_code, 0) << "ctr " << ::testing::PrintToString(args) << ": " << r.err << r.out;
    return r;
  }

  // `ctr tasks ls` rows as {id, pid, status}.
  std::map<std::string, std::pair<std::string, std::string>> Tasks() const {
    std::map<std::string, std::pair<std::string, std::string>> out;
    auto r = Ctr({"tasks", "ls"});
    auto rows = Lines(r.out);
    for (size_t i = 1; i < rows.size(); ++i) {
      auto w = Words(rows[i]);
      if (w.size() >= 3) out[w[0]] = {w[1], w[2]};
    }
    return out;
  }
  std::string StatusOf(const std::string& id) const {
    auto t = Tasks();
    auto it = t.find(id);
    return it == t.end() ? "" : it->second.second;
  }
  bool WaitStatus(const std::string& id, const std::string& status) const {
    return Eventually([&] { return StatusOf(id) == status; });
  }

  std::string BundleDir(const std::string& id) const {
    return d_->State() + "/io.containerd.runtime.v2.task/" + ns_ + "/" + id;
  }

  // Everything our daemon's shims started goes away: tasks killed and deleted through berthd
  // when it runs, then shim processes killed by PID, runc state deleted, mounts detached and
  // cgroups removed.
  void Cleanup() {
    if (!d_) return;
    if (d_->Running()) {
      for (const auto& task : Tasks()) {
        const std::string& id =
            task.first;  // not a structured binding: clang 14 cannot capture one
        Ctr({"tasks", "kill", "-a", "-s", "SIGKILL", id});
        Eventually([&] { return StatusOf(id) != "RUNNING" && StatusOf(id) != "PAUSED"; },
                   std::chrono::seconds(20));
        Ctr({"tasks", "rm", "-f", id});
      }
      for (const auto& id : Lines(Ctr({"containers", "ls", "-q"}).out))
        Ctr({"containers", "rm", id});
    }
    for (pid_t pid : FindProcesses({"-address " + d_->Socket()})) ::kill(pid, SIGKILL);
    std::string bundles = d_->State() + "/io.containerd.runtime.v2.task/" + ns_;
    std::vector<std::string> ids;
    if (DIR* dir = ::opendir(bundles.c_str())) {
      while (dirent* e = ::readdir(dir)) {
        if (e->d_name[0] != '.') ids.push_back(e->d_name);
      }
      ::closedir(dir);
    }
    for (const std::string& root :
         std::vector<std::string>{"/run/containerd/runc/" + ns_, d_->State() + "/runc/" + ns_}) {
      struct stat st {};
      if (::stat(root.c_str(), &st) != 0) continue;
      for (const auto& id : Lines(Exec({"runc", "--root", root, "list", "-q"}).out)) {
        Exec({"runc", "--root", root, "delete", "--force", id});
      }
      ::rmdir(root.c_str());
    }
    for (const auto& m : MountsUnder(d_->Dir())) ::umount2(m.c_str(), MNT_DETACH);
    // Cgroups named /<ns>/<id> (v1 controllers and the unified hierarchy).
    if (DIR* cg = ::opendir("/sys/fs/cgroup")) {
      std::vector<std::string> roots;
      while (dirent* e = ::readdir(cg)) {
        if (e->d_name[0] != '.') roots.push_back(std::string("/sys/fs/cgroup/") + e->d_name);
      }
      ::closedir(cg);
      roots.push_back("/sys/fs/cgroup");
      for (const auto& r : roots) {
        std::string nsdir = r + "/" + ns_;
        if (DIR* nd = ::opendir(nsdir.c_str())) {
          std::vector<std::string> subs;
          while (dirent* e = ::readdir(nd)) {
            if (e->d_type == DT_DIR && e->d_name[0] != '.') subs.push_back(nsdir + "/" + e->d_name);
          }
          ::closedir(nd);
          for (const auto& s : subs) ::rmdir(s.c_str());
          ::rmdir(nsdir.c_str());
        }
      }
    }
  }

  std::unique_ptr<Daemon>& D() { return d_; }
  const std::string& Ns() const { return ns_; }

 private:
  std::unique_ptr<Daemon> d_;
  std::string ns_;
};

// Host checks for tests that need something this machine may not have.
inline bool HybridCgroups() {
  struct stat st {};
  return ::stat("/sys/fs/cgroup/unified/cgroup.controllers", &st) == 0 &&
         ::stat("/sys/fs/cgroup/cgroup.controllers", &st) != 0;
}

// A test run once per shim serving io.containerd.runc.v2 (TasksIT, RecoveryIT): a TaskFixture
// set up for that shim, its daemon log printed when the test fails. Our own shim is built with
// the tests, so a missing one is a failure, not a skip.
class ShimParamIT : public ::testing::TestWithParam<ShimParam> {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(GetParam().Binary().c_str(), X_OK), 0)
        << GetParam().Binary() << " is missing (Debian's containerd package, or our build)";
    ASSERT_TRUE(f_.Setup("\"io.containerd.runc.v2\" = \"" + GetParam().Binary() + "\"\n"))
        << (f_.D() ? f_.D()->Log() : "");
  }
  void TearDown() override {
    f_.Cleanup();
    if (HasFailure() && f_.D()) std::cerr << "berthd log:\n" << f_.D()->Log() << "\n";
  }
  TaskFixture f_;
};

}  // namespace berth::testing

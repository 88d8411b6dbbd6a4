// Soak: 200 containers started and stopped through berthd with the real ctr (`ctr run --rm` in a
// loop, some failing, some detached then killed or force-removed), then nothing may be left:
// no shim process, mount, FIFO, cgroup, bundle or work directory, shim socket, task, container
// or active snapshot. Runs with our shim (the default for io.containerd.runc.v2) and with
// Debian's containerd-shim-runc-v2 configured in its place.
//
// Soak under load (issue 13): 2,000 lifecycles from 8 concurrent clients with a collection
// every 100, and berthd's resident memory and open descriptors compared between the start and
// the end (no growth beyond 10%).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/digest.h"
#include "harness.h"

namespace berth::testing {
namespace {

namespace stdfs = std::filesystem;

constexpr const char* kImage = "docker.io/berth/busybox:latest";
constexpr int kContainers = 200;

struct Variant {
  std::string name;
  std::string extra_config;  // appended to berthd's config.toml
  std::string shim_binary;   // must exist, else the variant is skipped
};

std::string PrintVariant(const ::testing::TestParamInfo<Variant>& info) { return info.param.name; }
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// Processes started with `-address <socket>` and `-namespace`: the daemon's shims (a v2 shim's
// command line), found by /proc/PID/cmdline.
std::vector<pid_t> ShimPids(const std::string& socket) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto args = Split(ReadText(e.path().string() + "/cmdline"), '\0');
    bool ns = false, addr = false;
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "-namespace") ns = true;
      if (args[i] == "-address" && i + 1 < args.size() && args[i + 1] == socket) addr = true;
    }
    if (ns && addr) out.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return out;
}

// Lines of /proc/self/mountinfo that name `dir` (as mount point or in options, e.g. overlay
// layers), and their mount points.
std::vector<std::string> MountsNaming(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& line : Split(ReadText("/proc/self/mountinfo"), '\n')) {
    if (line.find(dir) != std::string::npos) out.push_back(line);
  }
  return out;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  return out;
}

// The namespace's cgroup directories: /sys/fs/cgroup/<ns> (v2) and /sys/fs/cgroup/<ctl>/<ns> (v1).
std::vector<std::string> NamespaceCgroups(const std::string& ns) {
  std::vector<std::string> out;
  std::vector<std::string> bases = {"/sys/fs/cgroup"};
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator("/sys/fs/cgroup", ec)) {
    if (e.is_directory(ec) && !e.is_symlink(ec)) bases.push_back(e.path());
  }
  for (const auto& b : bases) {
    std::string d = b + "/" + ns;
    if (stdfs::is_directory(d, ec)) out.push_back(d);
  }
  return out;
}

// Container cgroups below the namespace's: what the runtime must remove.
std::vector<std::string> ContainerCgroups(const std::string& ns) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& d : NamespaceCgroups(ns)) {
    for (const auto& e : stdfs::directory_iterator(d, ec)) {
      if (e.is_directory(ec)) out.push_back(e.path());
    }
  }
  return out;
}

class SoakIT : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    // Both are dependencies (our build, Debian's containerd package): missing is a failure.
    ASSERT_EQ(::access(GetParam().shim_binary.c_str(), X_OK), 0)
        << GetParam().shim_binary << " is not built or installed";
    ns_ = "soak-" + std::to_string(::getpid());
    d_ = Daemon::Create({.extra_config = GetParam().extra_config});
    ASSERT_TRUE(d_);
    ASSERT_TRUE(d_->Start()) << d_->Log();
    fifo_dir_ = d_->Dir() + "/fifo";
    ASSERT_EQ(::mkdir(fifo_dir_.c_str(), 0700), 0);
  }

  // Whatever a failed run left: killed by PID, unmounted by path, cgroups removed. The daemon
  // itself is stopped (and its directory removed) by ~Daemon.
  void TearDown() override {
    if (!d_) return;
    if (HasFailure()) std::cerr << "berthd log (tail):\n" << Tail(d_->Log(), 60) << "\n";
    for (pid_t pid : ShimPids(d_->Socket())) ::kill(pid, SIGKILL);
    for (const auto& cg : ContainerCgroups(ns_)) {
      for (const auto& pid : Split(ReadText(cg + "/cgroup.procs"), '\n')) {
        if (!pid.empty()) ::kill(std::stoi(pid), SIGKILL);
      }
    }
    d_->Stop();
    // Deepest first.
    std::vector<std::string> targets;
    for (const auto& line : MountsNaming(d_->Dir())) {
      auto fields = Split(line, ' ');
      if (fields.size() > 4 && fields[4].rfind(d_->Dir(), 0) == 0) targets.push_back(fields[4]);
    }
    std::sort(targets.rbegin(), targets.rend());
    for (const auto& t : targets) ::umount2(t.c_str(), MNT_DETACH);
    for (const auto& cg : ContainerCgroups(ns_)) RmdirPatiently(cg);
    for (const auto& cg : NamespaceCgroups(ns_)) ::rmdir(cg.c_str());  // runc's parent: ours
    // runc's per-namespace state roots (runc leaves them, empty).
    // containerd's shim keeps runc's state in /run/containerd/runc/<ns>; ours keeps it in the
    // daemon's state directory, removed with it.
    ::rmdir(("/run/containerd/runc/" + ns_).c_str());
    // Sockets of this test's shims that a shim left behind (reported by the test).
    for (const auto& [path, id] : sockets_) {
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
    }
  }

  static void RmdirPatiently(const std::string& dir) {
    // A killed process leaves its cgroup a moment after SIGKILL.
    for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(20000);
  }

  static std::string Tail(const std::string& text, size_t lines) {
    auto all = Split(text, '\n');
    std::string out;
    for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
      out += all[i] + "\n";
    }
    return out;
  }

  RunResult Ctr(const std::vector<std::string>& args) { return d_->Ctr(args, ns_); }
  // ctr must exit `want`.
  void Expect(const std::vector<std::string>& args, int want = 0) {
    auto r = Ctr(args);
    ASSERT_EQ(r.exit_code, want) << "ctr -n " << ns_ << " " << ::testing::PrintToString(args)
                                 << "\nstdout: " << r.out << "\nstderr: " << r.err;
  }

  std::string TaskStatus(const std::string& id) {
    auto r = Ctr({"tasks", "ls"});
    for (const auto& line : Split(r.out, '\n')) {
      std::istringstream in(line);
      std::string task, pid, status;
      in >> task >> pid >> status;
      if (task == id) return status;
    }
    return "";
  }

  std::string BundleDir(const std::string& id) const {
    return d_->State() + "/io.containerd.runtime.v2.task/" + ns_ + "/" + id;
  }

  std::unique_ptr<Daemon> d_;
  std::string ns_;
  std::string fifo_dir_;
  std::map<std::string, std::string> sockets_;  // where a shim socket may be -> container id
};

TEST_P(SoakIT, TwoHundredContainersLeaveNothingBehind) {
  Expect({"images", "import", Fixtures() + "/busybox-oci.tar"});
  std::vector<pid_t> detached_inits;  // init pids of the detached containers
  for (int i = 0; i < kContainers; ++i) {
    std::string id = "soak-" + std::to_string(i);
    // Where a shim following containerd's rule puts its socket (ours: /run/berth/s).
    std::string hash(Digest::FromBytes(d_->Socket() + "/" + ns_ + "/" + id).Encoded());
    sockets_["/run/berth/s/" + hash] = id;
    sockets_["/run/containerd/s/" + hash] = id;
    if (i % 10 == 9) {
      // Detached: killed then deleted (every other one), or force-deleted while running.
      ASSERT_NO_FATAL_FAILURE(
          Expect({"run", "-d", "--fifo-dir", fifo_dir_, kImage, id, "sleep", "1000"}));
      std::string address = ReadText(BundleDir(id) + "/address");
      ASSERT_EQ(address.rfind("unix://", 0), 0u) << "bundle address file: " << address;
      sockets_[address.substr(7)] = id;
      std::string init = ReadText(BundleDir(id) + "/init.pid");
      ASSERT_FALSE(init.empty());
      detached_inits.push_back(static_cast<pid_t>(std::stoi(init)));
      ASSERT_EQ(TaskStatus(id), "RUNNING");
      if (i % 20 == 9) {
        ASSERT_NO_FATAL_FAILURE(Expect({"tasks", "kill", "-s", "SIGKILL", id}));
        // The exit arrives asynchronously: wait for it (a condition, not a timing).
        std::string status;
        for (int tries = 0; tries < 600 && (status = TaskStatus(id)) != "STOPPED"; ++tries) {
          ::usleep(50000);
        }
        ASSERT_EQ(status, "STOPPED") << "task " << id << " never stopped after SIGKILL";
        ASSERT_NO_FATAL_FAILURE(Expect({"tasks", "rm", id}));
      } else {
        ASSERT_NO_FATAL_FAILURE(Expect({"tasks", "rm", "-f", id}));
      }
      ASSERT_NO_FATAL_FAILURE(Expect({"containers", "rm", id}));
    } else if (i % 10 == 4) {
      // A failing container: ctr exits with its status.
      ASSERT_NO_FATAL_FAILURE(
          Expect({"run", "--rm", "--fifo-dir", fifo_dir_, kImage, id, "sh", "-c", "exit 3"}, 3));
    } else {
      ASSERT_NO_FATAL_FAILURE(Expect({"run", "--rm", "--fifo-dir", fifo_dir_, kImage, id, "true"}));
    }
  }

  // Through the API: no task, no container, no active snapshot.
  auto tasks = Ctr({"tasks", "ls", "-q"});
  EXPECT_EQ(tasks.exit_code, 0) << tasks.err;
  EXPECT_EQ(tasks.out, "");
  auto containers = Ctr({"containers", "ls", "-q"});
  EXPECT_EQ(containers.out, "");
  auto snapshots = Ctr({"snapshots", "ls"});
  EXPECT_EQ(snapshots.out.find("Active"), std::string::npos) << snapshots.out;

  // On the host.
  EXPECT_EQ(ShimPids(d_->Socket()), std::vector<pid_t>{}) << "shim processes left";
  for (pid_t pid : detached_inits) {
    std::string cmdline = ReadText("/proc/" + std::to_string(pid) + "/cmdline");
    EXPECT_EQ(cmdline.find("sleep"), std::string::npos) << "container init " << pid << " alive";
  }
  EXPECT_EQ(MountsNaming(d_->Dir()), std::vector<std::string>{}) << "mounts left";
  EXPECT_EQ(Entries(fifo_dir_), std::vector<std::string>{}) << "FIFOs left in " << fifo_dir_;
  EXPECT_EQ(ContainerCgroups(ns_), std::vector<std::string>{}) << "cgroups left";
  EXPECT_EQ(Entries(d_->State() + "/io.containerd.runtime.v2.task/" + ns_),
            std::vector<std::string>{})
      << "bundles left";
  EXPECT_EQ(Entries(d_->Root() + "/io.containerd.runtime.v2.task/" + ns_),
            std::vector<std::string>{})
      << "work dirs left";
  std::vector<std::string> live_sockets;
  for (const auto& [path, id] : sockets_) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) live_sockets.push_back(path + " (container " + id + ")");
  }
  EXPECT_EQ(live_sockets, std::vector<std::string>{}) << "shim sockets left";
}

// berthd's resident memory (VmRSS, KiB) and open descriptors.
struct Usage {
  int64_t rss_kib = 0;
  int64_t fds = 0;
};
Usage UsageOf(pid_t pid) {
  Usage u;
  std::istringstream status(ReadText("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) u.rss_kib = std::stoll(line.substr(6));
  }
  u.fds = static_cast<int64_t>(Entries("/proc/" + std::to_string(pid) + "/fd").size());
  return u;
}

using SoakLoadIT = SoakIT;

TEST_P(SoakLoadIT, TwoThousandLifecyclesFromEightClientsDoNotGrowTheDaemon) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under ASan freed memory sits in the allocator's quarantine (256 MiB by "
                  "default), so berthd's resident size says nothing about growth; the release "
                  "suite runs this test";
#endif
  constexpr int kClients = 8;
  constexpr int kLifecycles = 2000;
  constexpr int kCollectEvery = 100;
  // Before the start figures, and measured as idle as the end: lazily built state, allocator
  // arenas and the clients' connections come and go during the warm-up.
  constexpr int kWarmUp = 100;
  Expect({"images", "import", Fixtures() + "/busybox-oci.tar"});
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_failure;
  auto collect = [&](int n) {
    // A lease deleted with --sync runs a full collection before the call returns.
    std::string lease = "soak-gc-" + std::to_string(n);
    Ctr({"leases", "create", "--id", lease});
    Ctr({"leases", "rm", "--sync", lease});
  };
  // `count` lifecycles (`ctr run --rm ... true`) from kClients clients at once, a collection
  // after every kCollectEvery of them.
  auto batch = [&](const std::string& prefix, int count) {
    std::atomic<int> next{0}, done{0};
    auto client = [&](int c) {
      for (int i; (i = next.fetch_add(1)) < count;) {
        std::string id = prefix + std::to_string(c) + "-" + std::to_string(i);
        auto r = Ctr({"run", "--rm", "--fifo-dir", fifo_dir_, kImage, id, "true"});
        if (r.exit_code != 0) {
          failures.fetch_add(1);
          std::lock_guard lock(mu);
          if (first_failure.empty()) first_failure = id + ": " + r.err;
        }
        if (int n = done.fetch_add(1) + 1; n % kCollectEvery == 0) collect(n);
      }
    };
    std::vector<std::thread> threads;
    for (int c = 0; c < kClients; ++c) threads.emplace_back(client, c);
    for (auto& t : threads) t.join();
    collect(count);
    ::sleep(1);  // the last shims' exits are handled asynchronously
  };
  batch("warm-", kWarmUp);
  const Usage start = UsageOf(d_->Pid());
  batch("load-", kLifecycles);
  const Usage end = UsageOf(d_->Pid());
  EXPECT_EQ(failures.load(), 0) << "first failure: " << first_failure;
  std::cerr << "berthd after " << kWarmUp << " warm-up lifecycles: " << start.rss_kib << " KiB, "
            << start.fds << " fds; after " << kLifecycles << " more: " << end.rss_kib << " KiB, "
            << end.fds << " fds\n";
  EXPECT_LE(end.rss_kib * 10, start.rss_kib * 11)
      << "resident memory grew from " << start.rss_kib << " to " << end.rss_kib << " KiB";
  EXPECT_LE(end.fds * 10, start.fds * 11)
      << "open descriptors grew from " << start.fds << " to " << end.fds;
  EXPECT_EQ(Ctr({"containers", "ls", "-q"}).out, "");
  EXPECT_EQ(ShimPids(d_->Socket()), std::vector<pid_t>{}) << "shim processes left";
  EXPECT_EQ(ContainerCgroups(ns_), std::vector<std::string>{}) << "cgroups left";
}

INSTANTIATE_TEST_SUITE_P(Shims, SoakLoadIT,
                         ::testing::Values(Variant{
                             .name = "BerthShim",
                             .shim_binary = BinPath("containerd-shim-berth-v2")}),
                         PrintVariant);

INSTANTIATE_TEST_SUITE_P(
    Shims, SoakIT,
    ::testing::Values(
        Variant{.name = "BerthShim", .shim_binary = BinPath("containerd-shim-berth-v2")},
        Variant{
            .name = "RuncShim",
            .extra_config = "[plugins.\"io.containerd.runtime.v2.task\".shims]\n"
                            "  \"io.containerd.runc.v2\" = \"/usr/bin/containerd-shim-runc-v2\"\n",
            .shim_binary = "/usr/bin/containerd-shim-runc-v2"}),
    PrintVariant);

}  // namespace
}  // namespace berth::testing

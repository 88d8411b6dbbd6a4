// `berth run`, `berth containers` and `berth tasks` against a berthd running real containers
// (real shim, real runc), checked against the real ctr on the same daemon where both can look.
// FIFOs go to a --fifo-dir inside the daemon's temp dir, so nothing is left in /run.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace berth::testing {
namespace {

using json = nlohmann::json;
constexpr const char* kImage = "docker.io/berth/busybox:latest";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Fields of whitespace-separated table rows, header skipped.
std::vector<std::vector<std::string>> Rows(const std::string& table) {
  std::vector<std::vector<std::string>> rows;
  auto lines = Lines(table);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::istringstream in(lines[i]);
    std::vector<std::string> fields;
    for (std::string f; in >> f;) fields.push_back(f);
    if (!fields.empty()) rows.push_back(fields);
  }
  return rows;
}

// Polls `cond` until it holds or `limit` passes (a wait on a condition, not a timing check).
template <typename F>
bool WaitFor(F cond, std::chrono::seconds limit = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return cond();
}

// The shim serving io.containerd.runc.v2: ours (the default) or Debian's containerd-shim-runc-v2,
// so the CLI is checked against both implementations of the task API.
struct Shim {
  std::string name;
  std::string binary;  // "" = berthd's default
};

void PrintTo(const Shim& shim, std::ostream* os) { *os << shim.name; }

class CliTasksTest : public ::testing::TestWithParam<Shim> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: runs containers with runc";
    Daemon::Options options;
    if (!GetParam().binary.empty()) {
      ASSERT_EQ(::access(GetParam().binary.c_str(), X_OK), 0)
          << GetParam().binary << " is missing (Debian package containerd): run make deps";
      options.extra_config =
          "[plugins.\"io.containerd.runtime.v2.task\".shims]\n"
          "  \"io.containerd.runc.v2\" = \"" +
          GetParam().binary + "\"\n";
    }
    daemon_ = Daemon::Create(options);
    ASSERT_TRUE(daemon_);
    ASSERT_TRUE(daemon_->Start()) << daemon_->Log();
    ASSERT_FALSE(Fixtures().empty());
    auto r = Ctr({"images", "import", Fixtures() + "/busybox-oci.tar"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fifo_dir_ = daemon_->Dir() + "/fifo";
  }

  void TearDown() override {
    if (!daemon_ || !daemon_->Running()) return;
    // Whatever a failed test left: kill tasks, delete them and their containers.
    auto tasks = Berth({"tasks", "ls", "-q"});
    for (const auto& id : Lines(tasks.out)) {
      if (id.empty()) continue;
      Berth({"tasks", "kill", "-s", "SIGKILL", "-a", id});
      Berth({"tasks", "rm", "-f", id});
    }
    auto containers = Berth({"containers", "ls", "-q"});
    for (const auto& id : Lines(containers.out)) {
      if (!id.empty()) Berth({"containers", "rm", id});
    }
    daemon_->Stop();
    // runc leaves the namespace's state root and ctr-style cgroupsPath parents (/<ns>) behind.
    // containerd's shim keeps runc's state in /run/containerd/runc/<ns>; ours keeps it in the
    // daemon's state directory, removed with it.
    ::rmdir(("/run/containerd/runc/" + ns_).c_str());
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
      ::rmdir((e.path().string() + "/" + ns_).c_str());
    }
  }

  RunResult Ctr(const std::vector<std::string>& args) const { return daemon_->Ctr(args, ns_); }

  RunResult Berth(std::vector<std::string> args, const std::string& input = "") const {
    std::vector<std::string> argv = {BinPath("berth"), "-a", daemon_->Socket(), "-n", ns_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Exec(argv, input);
  }

  // `berth run --fifo-dir <dir> <flags...> IMAGE ID CMD...`
  RunResult Run(std::vector<std::string> flags, const std::string& id, std::vector<std::string> cmd,
                const std::string& input = "") const {
    std::vector<std::string> args = {"run", "--fifo-dir", fifo_dir_};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(kImage);
    args.push_back(id);
    args.insert(args.end(), cmd.begin(), cmd.end());
    return Berth(args, input);
  }

  std::string TaskStatus(const std::string& id) const {
    for (const auto& row : Rows(Berth({"tasks", "ls"}).out)) {
      if (row.size() == 3 && row[0] == id) return row[2];
    }
    return "";
  }

  std::set<std::string> SnapshotKeys() const {
    std::set<std::string> keys;
    for (const auto& row : Rows(Berth({"snapshots", "ls"}).out)) keys.insert(row[0]);
    return keys;
  }

  std::unique_ptr<Daemon> daemon_;
  std::string fifo_dir_;
  // A namespace of this test process: no clash with other runs, and its leftovers are known.
  std::string ns_ = "clitasks-" + std::to_string(::getpid());
};

TEST_P(CliTasksTest, RunRmPrintsOutputAndCleansUp) {
  auto r = Run({"--rm"}, "t1", {"echo", "hello"});
  EXPECT_EQ(r.exit_code, 0) << r.err << daemon_->Log();
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_EQ(Berth({"containers", "ls", "-q"}).out, "");
  EXPECT_EQ(SnapshotKeys().count("t1"), 0U);
  EXPECT_EQ(Berth({"tasks", "ls", "-q"}).out, "");
  // The FIFO directory of the run is gone with it.
  std::error_code ec;
  auto it = std::filesystem::directory_iterator(fifo_dir_, ec);
  EXPECT_EQ(ec ? 0 : std::distance(it, {}), 0);
}

// The image is imported unpacked for overlayfs only: run unpacks it into native first.
// `berth run IMAGE` without an id makes one (12 hex digits, as docker); -d prints it; an id
// followed by a command keeps ctr's form.
TEST_P(CliTasksTest, RunWithoutAnIdGeneratesOne) {
  auto fg = Berth({"run", "--fifo-dir", fifo_dir_, "--rm", kImage}, "echo generated\n");
  EXPECT_EQ(fg.exit_code, 0) << fg.err;
  EXPECT_EQ(fg.out, "generated\n");  // the image's sh read the commands; no id printed
  EXPECT_EQ(Berth({"containers", "ls", "-q"}).out, "");

  auto detached = Berth({"run", "--fifo-dir", fifo_dir_, "-d", "--null-io", kImage});
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  ASSERT_TRUE(std::regex_match(detached.out, std::regex("[0-9a-f]{12}\n"))) << detached.out;
  const std::string id = detached.out.substr(0, 12);
  EXPECT_EQ(Berth({"containers", "ls", "-q"}).out, id + "\n");
  EXPECT_NE(Ctr({"containers", "info", id}).out.find("\"ID\": \"" + id + "\""), std::string::npos);
  auto second = Berth({"run", "--fifo-dir", fifo_dir_, "-d", "--null-io", kImage});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out, detached.out);
}

TEST_P(CliTasksTest, RunUnpacksForAnotherSnapshotter) {
  auto r = Run({"--rm", "--snapshotter", "native"}, "nat", {"cat", "/etc/passwd"});
  EXPECT_EQ(r.exit_code, 0) << r.err << daemon_->Log();
  EXPECT_NE(r.out.find("root:x:0:0"), std::string::npos) << r.out;
  auto native = Berth({"snapshots", "--snapshotter", "native", "ls"});
  EXPECT_EQ(Rows(native.out).size(), 1U) << native.out;  // the image's layer, committed
  EXPECT_EQ(native.out.find("nat "), std::string::npos);
}

TEST_P(CliTasksTest, ExitCodeAndStderrPropagate) {
  auto r = Run({"--rm"}, "t2", {"sh", "-c", "echo oops >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.err, "oops\n");  // nothing of berth's own: ctr prints nothing for an exit status
  EXPECT_EQ(Berth({"containers", "ls", "-q"}).out, "");
}

TEST_P(CliTasksTest, StdinReachesTheProcessAndEofEndsIt) {
  auto r = Run({"--rm"}, "t3", {"sh", "-c", "cat; echo done"}, "line one\nline two\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "line one\nline two\ndone\n");
}

// `tasks stop`: the stop signal, then SIGKILL after --timeout. A `sleep` as the container's
// pid 1 ignores SIGTERM (no handler), so it needs the SIGKILL; a shell trapping TERM exits on
// the signal alone.
TEST_P(CliTasksTest, StopSignalsThenKillsAfterTheTimeout) {
  ASSERT_EQ(Run({"-d"}, "stubborn", {"sleep", "1000"}).exit_code, 0) << daemon_->Log();
  auto stop = Berth({"tasks", "stop", "--timeout", "1s", "stubborn"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_NE(stop.err.find("still running: SIGKILL"), std::string::npos) << stop.err;
  EXPECT_EQ(TaskStatus("stubborn"), "STOPPED");

  ASSERT_EQ(
      Run({"-d"}, "polite", {"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"})
          .exit_code,
      0);
  auto polite = Berth({"tasks", "stop", "polite"});
  EXPECT_EQ(polite.exit_code, 0) << polite.err;
  EXPECT_EQ(polite.err, "") << "no SIGKILL needed";
  EXPECT_EQ(TaskStatus("polite"), "STOPPED");
  // Stopped already: nothing to do.
  EXPECT_EQ(Berth({"tasks", "stop", "polite"}).exit_code, 0);
  auto bad = Berth({"tasks", "stop", "--timeout", "5", "polite"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("invalid duration \"5\""), std::string::npos) << bad.err;
}

TEST_P(CliTasksTest, DetachedTaskLifecycle) {
  auto r = Run({"-d"}, "d1", {"sleep", "1000"});
  ASSERT_EQ(r.exit_code, 0) << r.err << daemon_->Log();
  EXPECT_EQ(TaskStatus("d1"), "RUNNING");
  // ctr sees the same table.
  auto ours = Rows(Berth({"tasks", "ls"}).out);
  auto theirs = Rows(Ctr({"tasks", "ls"}).out);
  EXPECT_EQ(ours, theirs);
  ASSERT_EQ(ours.size(), 1U);
  const std::string pid = ours[0][1];

  auto ps = Berth({"tasks", "ps", "d1"});
  EXPECT_EQ(ps.exit_code, 0) << ps.err;
  EXPECT_EQ(Lines(ps.out)[0].substr(0, 3), "PID");
  EXPECT_NE(ps.out.find(pid), std::string::npos) << ps.out;

  auto exec = Berth({"tasks", "exec", "--fifo-dir", fifo_dir_, "--exec-id", "e1", "d1", "sh", "-c",
                     "echo in-exec; exit 4"});
  EXPECT_EQ(exec.exit_code, 4) << exec.err;
  EXPECT_EQ(exec.out, "in-exec\n");

  auto missing_id = Berth({"tasks", "exec", "d1", "true"});
  EXPECT_NE(missing_id.exit_code, 0);

  auto exec_d = Berth(
      {"tasks", "exec", "--fifo-dir", fifo_dir_, "-d", "--exec-id", "e2", "d1", "sleep", "1000"});
  EXPECT_EQ(exec_d.exit_code, 0) << exec_d.err;
  auto ps2 = Berth({"tasks", "ps", "d1"});
  EXPECT_NE(ps2.out.find("&ProcessDetails{ExecID:e2,XXX_unrecognized:[],}"), std::string::npos)
      << ps2.out;
  EXPECT_EQ(Rows(ps2.out), Rows(Ctr({"tasks", "ps", "d1"}).out));

  // A running task can be neither deleted nor have its container removed.
  EXPECT_NE(Berth({"tasks", "rm", "d1"}).exit_code, 0);
  auto crm = Berth({"containers", "rm", "d1"});
  EXPECT_NE(crm.exit_code, 0);
  EXPECT_EQ(crm.err,
            "berth: cannot delete a non stopped container \"d1\": its task is running (stop it "
            "first: berth tasks kill d1, or berth tasks rm -f d1)\n")
      << "no Go struct dump such as ctr's {running 0 0001-01-01 00:00:00 +0000 UTC}";

  EXPECT_EQ(Berth({"tasks", "pause", "d1"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return TaskStatus("d1") == "PAUSED"; }));
  EXPECT_EQ(Berth({"tasks", "resume", "d1"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return TaskStatus("d1") == "RUNNING"; }));

  auto metrics = Berth({"tasks", "metrics", "--format", "json", "d1"});
  EXPECT_EQ(metrics.exit_code, 0) << metrics.err;
  auto m = json::parse(metrics.out, nullptr, false);
  EXPECT_TRUE(m.is_object()) << metrics.out;
  auto table = Berth({"tasks", "metrics", "d1"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(Lines(table.out)[0].substr(0, 2), "ID");

  EXPECT_EQ(Berth({"tasks", "kill", "-s", "SIGKILL", "-a", "d1"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return TaskStatus("d1") == "STOPPED"; }));
  auto rm = Berth({"tasks", "rm", "d1"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(Berth({"tasks", "ls", "-q"}).out, "");
  EXPECT_EQ(Berth({"containers", "rm", "d1"}).exit_code, 0);
  EXPECT_EQ(SnapshotKeys().count("d1"), 0U);
}

TEST_P(CliTasksTest, TasksStartAndForceDelete) {
  auto c = Berth({"containers", "create", kImage, "s1", "sh", "-c", "echo started; exit 6"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto start = Berth({"tasks", "start", "--fifo-dir", fifo_dir_, "s1"});
  EXPECT_EQ(start.exit_code, 6) << start.err;
  EXPECT_EQ(start.out, "started\n");
  EXPECT_EQ(Berth({"tasks", "ls", "-q"}).out, "");  // start deletes the task after the exit

  auto d = Berth({"tasks", "start", "--fifo-dir", fifo_dir_, "-d", "s1"});
  // s1's command exits at once; a detached start leaves the task behind, force-deleted here.
  EXPECT_EQ(d.exit_code, 0) << d.err;
  auto rm = Berth({"tasks", "rm", "-f", "s1"});
  EXPECT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_EQ(Berth({"containers", "rm", "s1"}).exit_code, 0);
}

TEST_P(CliTasksTest, ContainersCommandsMatchCtr) {
  auto c = Berth({"containers", "create", "--label", "team=a", kImage, "c1", "sleep", "5"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.out, "");
  auto ls = Berth({"containers", "ls"});
  EXPECT_EQ(ls.out, Ctr({"containers", "ls"}).out);
  auto rows = Rows(ls.out);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"c1", kImage, "io.containerd.runc.v2"}));
  EXPECT_EQ(SnapshotKeys().count("c1"), 1U);

  auto info = Berth({"containers", "info", "c1"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  auto ours = json::parse(info.out, nullptr, false);
  auto theirs = json::parse(Ctr({"containers", "info", "c1"}).out, nullptr, false);
  EXPECT_EQ(ours, theirs);
  EXPECT_EQ(ours["Spec"]["process"]["args"], json({"sleep", "5"}));
  EXPECT_EQ(ours["Spec"]["annotations"]["team"], "a");  // ctr: --label also annotates
  EXPECT_EQ(ours["Labels"]["team"], "a");
  EXPECT_EQ(ours["Labels"]["io.containerd.image.config.stop-signal"], "SIGTERM");
  EXPECT_EQ(ours["Runtime"]["Options"]["type_url"], "containerd.runc.v1.Options");
  auto spec = Berth({"containers", "info", "--spec", "c1"});
  EXPECT_EQ(json::parse(spec.out, nullptr, false), ours["Spec"]);

  auto label = Berth({"containers", "label", "c1", "x=1", "team="});
  EXPECT_EQ(label.exit_code, 0) << label.err;
  EXPECT_EQ(label.out, "io.containerd.image.config.stop-signal=SIGTERM,x=1\n");

  // The id's conflict is the container's, not its snapshot's (ctr says `snapshot "c1"`).
  auto dup = Berth({"containers", "create", kImage, "c1"});
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_EQ(dup.err, "berth: container \"c1\": already exists\n");
  auto dup_run = Berth({"run", "-d", kImage, "c1", "true"});
  EXPECT_EQ(dup_run.exit_code, 1);
  EXPECT_EQ(dup_run.err, "berth: container \"c1\": already exists\n");

  auto no_image = Berth({"containers", "create", "no/such:image", "c2"});
  EXPECT_EQ(no_image.exit_code, 1);
  EXPECT_NE(no_image.err.find("not found"), std::string::npos) << no_image.err;
  EXPECT_EQ(SnapshotKeys().count("c2"), 0U);

  auto rm = Berth({"containers", "rm", "c1", "nope"});
  EXPECT_EQ(rm.exit_code, 1);  // nope is reported; c1 is still removed
  EXPECT_EQ(Berth({"containers", "ls", "-q"}).out, "");
  EXPECT_EQ(SnapshotKeys().count("c1"), 0U);

  // --keep-snapshot only skips the removal. The unreferenced snapshot is then the garbage
  // collector's (as in containerd): a gc.root label keeps the collector off it, so only the rm
  // could remove it here.
  ASSERT_EQ(Berth({"containers", "create", kImage, "c3"}).exit_code, 0);
  auto root = Ctr({"snapshots", "label", "c3", "containerd.io/gc.root=keep-snapshot-test"});
  ASSERT_EQ(root.exit_code, 0) << root.err;
  EXPECT_EQ(Berth({"containers", "rm", "--keep-snapshot", "c3"}).exit_code, 0);
  EXPECT_EQ(Berth({"containers", "ls", "-q"}).out, "");
  EXPECT_EQ(SnapshotKeys().count("c3"), 1U) << "--keep-snapshot removed c3's snapshot";
  Ctr({"snapshots", "rm", "c3"});
}

TEST_P(CliTasksTest, EnvCwdUserVisibleInside) {
  auto r = Run({"--rm", "--env", "FOO=bar", "--cwd", "/tmp", "--user", "nobody"}, "u1",
               {"sh", "-c", "echo $FOO; pwd; id -u; id -g"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "bar\n/tmp\n65534\n65534\n");
  auto numeric = Run({"--rm", "--user", "1000:1001"}, "u2", {"sh", "-c", "id -u; id -g"});
  EXPECT_EQ(numeric.out, "1000\n1001\n") << numeric.err;
  auto unknown = Run({"--rm", "--user", "nosuchuser"}, "u3", {"true"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("no users found"), std::string::npos) << unknown.err;
  EXPECT_EQ(Berth({"containers", "ls", "-q"}).out, "");
}

// The file `v1_file` of controller `controller` (cgroup v1) or `v2_file` (unified) of a pid.
std::string CgroupFile(const std::string& pid, const std::string& controller,
                       const std::string& v1_file, const std::string& v2_file) {
  std::string cgroups = ReadText("/proc/" + pid + "/cgroup");
  std::string unified;
  for (const auto& line : Lines(cgroups)) {
    // v1: "N:memory:/default/m1" or "N:cpu,cpuacct:/..."; v2: "0::/default/m1".
    auto first = line.find(':');
    auto second = line.find(':', first + 1);
    std::string controllers = "," + line.substr(first + 1, second - first - 1) + ",";
    std::string path = line.substr(second + 1);
    if (controllers.find("," + controller + ",") != std::string::npos) {
      std::string dir = line.substr(first + 1, second - first - 1);
      return ReadText("/sys/fs/cgroup/" + dir + path + "/" + v1_file);
    }
    if (controllers == ",,") unified = path;
  }
  return ReadText("/sys/fs/cgroup" + unified + "/" + v2_file);
}

TEST_P(CliTasksTest, ResourceLimitsApplyToTheCgroup) {
  auto r = Run({"-d", "--memory-limit", "67108864", "--cpus", "0.5"}, "m1", {"sleep", "1000"});
  ASSERT_EQ(r.exit_code, 0) << r.err << daemon_->Log();
  auto rows = Rows(Berth({"tasks", "ls"}).out);
  ASSERT_EQ(rows.size(), 1U);
  const std::string pid = rows[0][1];
  const bool v2 = ReadText("/proc/" + pid + "/cgroup").find(":memory:") == std::string::npos;
  EXPECT_EQ(CgroupFile(pid, "memory", "memory.limit_in_bytes", "memory.max"), "67108864\n");
  std::string cpu = CgroupFile(pid, "cpu", "cpu.cfs_quota_us", "cpu.max");
  EXPECT_EQ(cpu, v2 ? "50000 100000\n" : "50000\n");

  auto update = Berth({"tasks", "update", "--memory-limit", "134217728", "m1"});
  EXPECT_EQ(update.exit_code, 0) << update.err;
  EXPECT_EQ(CgroupFile(pid, "memory", "memory.limit_in_bytes", "memory.max"), "134217728\n");
  EXPECT_NE(Berth({"tasks", "update", "m1"}).exit_code, 0);  // nothing to update
}

TEST_P(CliTasksTest, NetHostSharesTheHostNetwork) {
  auto r =
      Run({"--rm", "--net-host"}, "n1", {"sh", "-c", "readlink /proc/self/ns/net; echo $HOSTNAME"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  // The same network namespace as ours (its inode), not one that merely looks alike.
  EXPECT_EQ(lines[0], std::filesystem::read_symlink("/proc/self/ns/net").string());
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  EXPECT_EQ(lines.back(), name);

  auto isolated = Run({"--rm"}, "n2", {"ls", "/sys/class/net"});
  EXPECT_EQ(isolated.out, "lo\n");
}

TEST_P(CliTasksTest, RuncBinaryWrapperIsUsed) {
  std::string wrapper = daemon_->Dir() + "/runc-wrapper";
  std::string log = daemon_->Dir() + "/runc-wrapper.log";
  {
    std::ofstream f(wrapper);
    f << "#!/bin/sh\necho \"$@\" >> " << log << "\nexec runc \"$@\"\n";
  }
  ::chmod(wrapper.c_str(), 0755);
  auto r = Run({"--rm", "--runc-binary", wrapper}, "w1", {"echo", "wrapped"});
  EXPECT_EQ(r.exit_code, 0) << r.err << daemon_->Log();
  EXPECT_EQ(r.out, "wrapped\n");
  std::string calls = ReadText(log);
  EXPECT_NE(calls.find("create"), std::string::npos) << calls;
  EXPECT_NE(calls.find("start"), std::string::npos) << calls;

  auto wrong = Run({"--rm", "--runtime", "io.containerd.other.v1", "--runc-binary", wrapper}, "w2",
                   {"true"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("only supported for \"io.containerd.runc.v2\""), std::string::npos)
      << wrong.err;
}

TEST_P(CliTasksTest, SignalsAreForwarded) {
  auto out = daemon_->Dir() + "/sig.out";
  auto bg = Background::Start(
      {BinPath("berth"), "-a", daemon_->Socket(), "-n", ns_, "run", "--rm", "--fifo-dir", fifo_dir_,
       kImage, "g1", "sh", "-c",
       "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done"},
      out);
  ASSERT_TRUE(bg);
  ASSERT_TRUE(WaitFor([&] { return ReadText(out).find("ready") != std::string::npos; }))
      << ReadText(out);
  ::kill(bg->Pid(), SIGTERM);
  EXPECT_EQ(bg->Wait(std::chrono::seconds(60)), 7) << ReadText(out);
  EXPECT_NE(ReadText(out).find("got-term"), std::string::npos);
}

TEST_P(CliTasksTest, AttachFollowsADetachedTask) {
  // The task says "waiting" until the test has seen that line through the attach (so the
  // attach is connected) and then execs a `touch /go`; only then does it print the ticks.
  auto r = Run({"-d"}, "a1",
               {"sh", "-c",
                "while [ ! -e /go ]; do echo waiting; sleep 0.1; done; "
                "for i in 1 2 3; do echo tick$i; done; exit 2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = daemon_->Dir() + "/attach.out";
  auto attach = Background::Start(
      {BinPath("berth"), "-a", daemon_->Socket(), "-n", ns_, "tasks", "attach", "a1"}, out);
  ASSERT_TRUE(attach);
  ASSERT_TRUE(WaitFor([&] { return ReadText(out).find("waiting\n") != std::string::npos; }))
      << ReadText(out);
  auto go =
      Berth({"tasks", "exec", "--fifo-dir", fifo_dir_, "--exec-id", "go", "a1", "touch", "/go"});
  ASSERT_EQ(go.exit_code, 0) << go.err;
  EXPECT_EQ(attach->Wait(std::chrono::seconds(60)), 2) << ReadText(out);
  std::string text = ReadText(out);
  // Only whole "waiting" lines before the ticks, and the ticks whole and in order.
  const std::string ticks = "tick1\ntick2\ntick3\n";
  ASSERT_TRUE(text.size() >= ticks.size() && text.ends_with(ticks)) << text;
  std::string before = text.substr(0, text.size() - ticks.size());
  for (size_t at = 0; at < before.size(); at += 8) {
    EXPECT_EQ(before.substr(at, 8), "waiting\n") << text;
  }
  EXPECT_EQ(Berth({"containers", "rm", "a1"}).exit_code, 0);
}

// The terminal path needs a terminal: the test drives `berth run -t` inside a tmux session of its
// own (private socket), types into it and reads its screen.
TEST_P(CliTasksTest, TtyRunUnderTmuxFollowsResize) {
  ASSERT_EQ(::access("/usr/bin/tmux", X_OK), 0) << "tmux is missing: run make deps";
  std::string sock = daemon_->Dir() + "/tmux.sock";
  std::string status = daemon_->Dir() + "/tty.status";
  auto tmux = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"tmux", "-S", sock};
    argv.insert(argv.end(), args.begin(), args.end());
    return Exec(argv);
  };
  struct Kill {
    std::function<void()> fn;
    ~Kill() { fn(); }
  } kill{[&] { tmux({"kill-server"}); }};
  std::string cmd = BinPath("berth") + " -a " + daemon_->Socket() + " -n " + ns_ +
                    " run -t --rm --fifo-dir " + fifo_dir_ + " " + kImage + " tt sh; echo $? > " +
                    status + "; sleep 600";
  ASSERT_EQ(tmux({"new-session", "-d", "-x", "100", "-y", "30", "-s", "s1", cmd}).exit_code, 0);
  auto screen = [&] { return tmux({"capture-pane", "-p", "-t", "s1"}).out; };
  ASSERT_TRUE(WaitFor([&] { return screen().find("/ #") != std::string::npos; })) << screen();
  int polls = 0;
  EXPECT_TRUE(WaitFor([&] {
    if (polls++ % 20 == 0) tmux({"send-keys", "-t", "s1", "stty size", "Enter"});
    return screen().find("30 100") != std::string::npos;
  })) << screen();
  tmux({"resize-window", "-t", "s1", "-x", "120", "-y", "40"});
  // The new size travels SIGWINCH -> ResizePty -> shim -> pty asynchronously: ask again (once a
  // second) until the shell sees it.
  polls = 0;
  EXPECT_TRUE(WaitFor([&] {
    if (polls++ % 20 == 0) tmux({"send-keys", "-t", "s1", "stty size; tty", "Enter"});
    return screen().find("40 120") != std::string::npos;
  })) << screen();
  // `tty` prints after `stty size`: wait for its line too.
  EXPECT_TRUE(WaitFor([&] { return screen().find("/dev/pts/0") != std::string::npos; }))
      << screen();
  tmux({"send-keys", "-t", "s1", "exit 5", "Enter"});
  EXPECT_TRUE(WaitFor([&] { return ReadText(status) == "5\n"; })) << screen();
  EXPECT_EQ(Berth({"containers", "ls", "-q"}).out, "");
}

TEST_P(CliTasksTest, ErrorsNameWhatFailed) {
  auto no_image = Berth({"run"});
  EXPECT_EQ(no_image.exit_code, 1);
  EXPECT_EQ(no_image.err, "berth: image ref must be provided\n");
  auto both = Berth({"run", "--rm", "-d", kImage, "x"});
  EXPECT_EQ(both.err, "berth: flags --detach and --rm cannot be specified together\n");
  auto kill = Berth({"tasks", "kill", "nosuch"});
  EXPECT_EQ(kill.exit_code, 1);
  EXPECT_NE(kill.err.find("not found"), std::string::npos) << kill.err;
  ASSERT_EQ(Berth({"containers", "create", kImage, "k1"}).exit_code, 0);
  auto sig = Berth({"tasks", "kill", "-s", "SIGNOPE", "k1"});
  EXPECT_EQ(sig.err, "berth: invalid signal: SIGNOPE\n");
  // A container without a task: each task command says so in ctr's words (container.Task's
  // "no running task found: ..."), as the real ctr does on the same daemon.
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"tasks", "kill", "k1"},
                                             {"tasks", "ps", "k1"},
                                             {"tasks", "pause", "k1"},
                                             {"tasks", "resume", "k1"},
                                             {"tasks", "metrics", "k1"}}) {
    auto ours = Berth(cmd);
    auto theirs = Ctr(cmd);
    EXPECT_EQ(ours.exit_code, 1) << cmd[1];
    EXPECT_EQ(theirs.exit_code, 1) << cmd[1];
    ASSERT_TRUE(theirs.err.starts_with("ctr: ")) << theirs.err;
    EXPECT_EQ(ours.err, "berth: " + theirs.err.substr(5)) << cmd[1];
    EXPECT_NE(ours.err.find("no running task found"), std::string::npos) << ours.err;
  }
  // Commands over several ids print each failure once: the first as the command's error, later
  // ones in the log (ctr logs the first and then prints it again).
  auto rm = Berth({"tasks", "rm", "nosuch1", "nosuch2"});
  EXPECT_EQ(rm.exit_code, 1);
  auto lines = Lines(rm.err);
  ASSERT_EQ(lines.size(), 2u) << rm.err;
  EXPECT_NE(lines[0].find("level=error msg=\"unable to delete nosuch2\""), std::string::npos)
      << rm.err;
  EXPECT_TRUE(lines[1].starts_with("berth: failed to load task from nosuch1: ")) << rm.err;
}

// Two daemons with their own state directories run a container of the same id in the same
// namespace at once (issue 13, point 7): runc's state follows each daemon's state directory.
TEST_P(CliTasksTest, TwoDaemonsRunTheSameContainerId) {
  if (!GetParam().binary.empty()) {
    GTEST_SKIP() << "containerd's shim keeps runc's state in /run/containerd/runc whatever the "
                    "daemon's state directory: two daemons share it there, as with containerd";
  }
  auto other = Daemon::Create();
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->Start()) << other->Log();
  auto berth_other = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("berth"), "-a", other->Socket(), "-n", ns_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Exec(argv);
  };
  // Whatever happens below, the other daemon's task goes with it.
  struct Cleanup {
    std::function<void()> fn;
    ~Cleanup() { fn(); }
  } cleanup{[&] {
    berth_other({"tasks", "kill", "-s", "SIGKILL", "twin"});
    for (int i = 0; i < 100 && berth_other({"tasks", "rm", "twin"}).exit_code != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    berth_other({"containers", "rm", "twin"});
    other->Stop();
  }};
  auto imported = berth_other({"images", "import", Fixtures() + "/busybox-oci.tar"});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;

  auto first = Run({"-d"}, "twin", {"sleep", "1000"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto second = berth_other(
      {"run", "-d", "--fifo-dir", other->Dir() + "/fifo", kImage, "twin", "sleep", "1000"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_TRUE(WaitFor([&] { return TaskStatus("twin") == "RUNNING"; }));
  bool other_running = false;
  for (const auto& row : Rows(berth_other({"tasks", "ls"}).out)) {
    if (row.size() == 3 && row[0] == "twin") other_running = row[2] == "RUNNING";
  }
  EXPECT_TRUE(other_running) << berth_other({"tasks", "ls"}).out;
  // Each daemon's runc state is under its own state directory.
  struct stat st {};
  EXPECT_EQ(::stat((daemon_->State() + "/runc/" + ns_ + "/twin").c_str(), &st), 0);
  EXPECT_EQ(::stat((other->State() + "/runc/" + ns_ + "/twin").c_str(), &st), 0);
  Berth({"tasks", "kill", "-s", "SIGKILL", "twin"});
}

INSTANTIATE_TEST_SUITE_P(Shims, CliTasksTest,
                         ::testing::Values(Shim{"berth", ""},
                                           Shim{"runc", "/usr/bin/containerd-shim-runc-v2"}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace berth::testing

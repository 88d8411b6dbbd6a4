// Crash consistency (issue 13): berthd killed with SIGKILL at 24 points spread over three
// operations a client runs against it, restarted on the same root and state each time, then:
// - every blob the content store lists verifies against its digest;
// - once the killed client's leases are gone and a collection ran, no ingest is left and every
//   snapshot directory of the overlay snapshotter belongs to a snapshot berthd lists (no orphan);
// - every container's snapshot exists;
// - the operation, retried, succeeds.
// The client is not told: it meets the restarted daemon (ctr's calls wait for a ready
// connection) and fails or finishes.
// The operations: `ctr images pull` from a local registry (fetch, content commit, unpack),
// `ctr images import` of an OCI archive (ingest, commit, unpack), and `ctr run -d` (container
// create, snapshot prepare, task create and start through our shim). The kill points are spread
// evenly over each operation's own duration, measured once uncrashed (a measurement used only to
// place the kills, never asserted).
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "harness.h"
#include "task_fixture.h"

namespace berth::testing {
namespace {

enum class Op { kPull, kImport, kRun };

const char* OpName(Op op) {
  switch (op) {
    case Op::kPull:
      return "pull";
    case Op::kImport:
      return "import";
    case Op::kRun:
      return "run";
  }
  return "?";
}

class CrashConsistencyIT : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registry_ = Registry::Start().release(); }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(registry_, nullptr) << "registry with test images did not start";
    const std::string shim = BinPath("containerd-shim-berth-v2");
    ASSERT_EQ(::access(shim.c_str(), X_OK), 0) << shim << " is missing";
    // No collection but the ones the test asks for (a lease deleted by a client that carried
    // on after the restart would schedule one in the middle of the checks).
    const std::string no_scheduled_gc =
        "[plugins.\"io.containerd.gc.v1.scheduler\"]\n  startup_delay = \"1h\"\n"
        "  schedule_delay = \"1h\"\n  deletion_threshold = 0\n  mutation_threshold = 1000000\n";
    ASSERT_TRUE(f_.Setup("\"io.containerd.runc.v2\" = \"" + shim + "\"\n", no_scheduled_gc))
        << (f_.D() ? f_.D()->Log() : "");
  }
  void TearDown() override {
    f_.Cleanup();
    if (HasFailure() && f_.D()) std::cerr << "berthd log:\n" << f_.D()->Log() << "\n";
  }

  Daemon& D() { return *f_.D(); }
  std::string PullRef() const { return registry_->Ref("busybox"); }

  // The operation's command line (ctr against our daemon, in the test's namespace).
  std::vector<std::string> Command(Op op, const std::string& id) {
    std::vector<std::string> argv = {"ctr", "-a", D().Socket(), "-n", f_.Ns()};
    switch (op) {
      case Op::kPull:
        argv.insert(argv.end(), {"images", "pull", "--plain-http", PullRef()});
        break;
      case Op::kImport:
        argv.insert(argv.end(), {"images", "import", Fixtures() + "/busybox-oci.tar"});
        break;
      case Op::kRun:
        argv.insert(argv.end(), {"run", "-d", kImage, id, "sleep", "1000"});
        break;
    }
    return argv;
  }

  // What the operation must start from: the pulled image gone (content and snapshots with it),
  // the imported image gone, or a fresh container id.
  // Both images hold the same blobs and snapshots, so both go before a pull or an import (and
  // the containers that hold their snapshots before them): the operation has all its work to do.
  void Prepare(Op op) {
    if (op == Op::kRun) return;
    RemoveContainers();
    f_.Ctr({"images", "rm", "--sync", PullRef(), kImage});
  }

  void RemoveContainers() {
    for (const auto& task : f_.Tasks()) {
      const std::string& id = task.first;  // not a structured binding: clang 14 cannot capture one
      f_.Ctr({"tasks", "kill", "-a", "-s", "SIGKILL", id});
      Eventually([&] { return f_.StatusOf(id) != "RUNNING"; }, std::chrono::seconds(20));
      f_.Ctr({"tasks", "rm", "-f", id});
    }
    for (const auto& id : Lines(f_.Ctr({"containers", "ls", "-q"}).out)) {
      f_.Ctr({"containers", "rm", id});
    }
  }

  // Runs the operation to its end; its wall time in ms (0 when it failed).
  double RunWhole(Op op, const std::string& id) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = Exec(Command(op, id), "", std::chrono::seconds(120));
    EXPECT_EQ(r.exit_code, 0) << OpName(op) << ": " << r.err << r.out;
    if (r.exit_code != 0) return 0;
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }

  // Every listed blob reads back with its digest.
  void ExpectContentVerifies() {
    for (const auto& d : Lines(f_.Ctr({"content", "ls", "-q"}).out)) {
      auto get = f_.Ctr({"content", "get", d});
      const std::string file = D().Root() + "/io.containerd.content.v1.content/blobs/sha256/" +
                               d.substr(d.find(':') + 1);
      ASSERT_EQ(get.exit_code, 0) << d << " is listed but cannot be read (blob file "
                                  << (::access(file.c_str(), F_OK) == 0 ? "present" : "missing")
                                  << "): " << get.err;
      EXPECT_EQ(Digest::FromBytes(get.out).String(), d) << "blob " << d << " is corrupt";
    }
  }

  // The killed client's leases end (as their expiry would end them), a collection runs; then no
  // ingest is left and the overlay snapshotter has a directory for each snapshot berthd lists,
  // and no other.
  void ExpectNoOrphansAfterCollection() {
    auto leases = Lines(f_.Ctr({"leases", "ls", "-q"}).out);
    ASSERT_EQ(f_.Ctr({"leases", "create", "--id", "crash-gc-trigger"}).exit_code, 0);
    leases.push_back("crash-gc-trigger");
    for (const auto& l : leases) {
      auto rm = f_.Ctr({"leases", "rm", "--sync", l});
      EXPECT_EQ(rm.exit_code, 0) << "lease " << l << ": " << rm.err;
    }
    auto active = Lines(f_.Ctr({"content", "active"}).out);
    EXPECT_LE(active.size(), 1u) << "ingests left after the collection:\n"
                                 << f_.Ctr({"content", "active"}).out;
    auto rows = Lines(f_.Ctr({"snapshots", "ls"}).out);
    const size_t listed = rows.empty() ? 0 : rows.size() - 1;  // minus the header
    const std::string dir = D().Root() + "/io.containerd.snapshotter.v1.overlayfs/snapshots";
    size_t dirs = 0;
    if (DIR* d = ::opendir(dir.c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') ++dirs;
      }
      ::closedir(d);
    }
    EXPECT_EQ(dirs, listed) << "snapshot directories in " << dir << " vs `ctr snapshots ls`:\n"
                            << f_.Ctr({"snapshots", "ls"}).out;
    // Every container's snapshot is there.
    std::set<std::string> keys;
    for (size_t i = 1; i < rows.size(); ++i) keys.insert(Words(rows[i])[0]);
    for (const auto& id : Lines(f_.Ctr({"containers", "ls", "-q"}).out)) {
      EXPECT_TRUE(keys.contains(id)) << "container " << id << " has no snapshot";
    }
  }

  // The operation again, to its end; for a container, what the crash left of it goes first.
  void Retry(Op op, const std::string& id) {
    if (op == Op::kRun) {
      f_.Ctr({"tasks", "kill", "-s", "SIGKILL", id});
      Eventually([&] { return f_.StatusOf(id) != "RUNNING"; }, std::chrono::seconds(20));
      f_.Ctr({"tasks", "rm", "-f", id});
      f_.Ctr({"containers", "rm", id});
    }
    EXPECT_GT(RunWhole(op, id), 0) << OpName(op) << " could not be retried after the crash";
    if (op == Op::kRun) {
      EXPECT_TRUE(f_.WaitStatus(id, "RUNNING"));
    }
  }

  static Registry* registry_;
  TaskFixture f_;
};

Registry* CrashConsistencyIT::registry_ = nullptr;

TEST_F(CrashConsistencyIT, KillAtTwentyFourPointsThenRecoverAndRetry) {
  constexpr int kPointsPerOp = 8;
  // In this order: a run point uses the image the import point before it brought back.
  const Op ops[] = {Op::kPull, Op::kImport, Op::kRun};
  // Each operation's duration, uncrashed: where the kills go.
  std::map<Op, double> duration_ms;
  for (Op op : ops) {
    Prepare(op);
    duration_ms[op] = RunWhole(op, "crash-measure");
    ASSERT_GT(duration_ms[op], 0) << OpName(op);
  }
  RemoveContainers();
  int point = 0;
  for (int j = 0; j < kPointsPerOp; ++j) {
    for (Op op : ops) {
      ++point;
      const std::string id = "crash-" + std::to_string(point);
      const auto delay = std::chrono::microseconds(
          static_cast<int64_t>(duration_ms[op] * 1000 * (j + 0.5) / kPointsPerOp));
      SCOPED_TRACE(::testing::Message() << "point " << point << ": " << OpName(op)
                                        << " killed after " << delay.count() / 1000 << " ms of ~"
                                        << static_cast<int>(duration_ms[op]) << " ms");
      Prepare(op);
      auto client = Watch::Start(Command(op, id));
      ASSERT_NE(client, nullptr);
      std::this_thread::sleep_for(delay);
      D().Kill9();
      ASSERT_TRUE(D().Start()) << "berthd did not restart:\n" << D().Log();
      // The client fails, or (ctr's calls wait for a ready connection) carries on against the
      // restarted daemon: either way it ends, and its outcome does not matter here.
      auto status = client->Wait(std::chrono::seconds(120));
      ASSERT_TRUE(status.has_value()) << "ctr did not end";
      std::cerr << "point " << point << ": " << OpName(op) << " killed after "
                << delay.count() / 1000 << " of ~" << static_cast<int>(duration_ms[op])
                << " ms; ctr then exited " << *status << "\n";
      ASSERT_NO_FATAL_FAILURE(ExpectContentVerifies());
      ASSERT_NO_FATAL_FAILURE(ExpectNoOrphansAfterCollection());
      Retry(op, id);
      ASSERT_FALSE(HasFailure());
      if (op == Op::kRun) RemoveContainers();
    }
  }
  // The image the run points use is back (each import point removed and re-imported it).
  EXPECT_NE(f_.Ctr({"images", "ls", "-q"}).out.find(kImage), std::string::npos);
}

}  // namespace
}  // namespace berth::testing

// The public client library (include/berth, target berthclient) against a real berthd: images
// from an archive and from a real registry, containers, tasks with stdio, exec, kill, events and
// leases, cross-checked with the real `ctr`; and the walk-through program examples/run_redis_like
// run as a user would.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "berth/client.h"
#include "harness.h"

namespace berth::testing {
namespace {

constexpr const char* kImage = "docker.io/berth/busybox:latest";

// A pipe whose ends close when it goes away.
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
      r = fds[0];
      w = fds[1];
    }
  }
  ~Pipe() {
    CloseR();
    CloseW();
  }
  void CloseR() {
    if (r >= 0) ::close(r);
    r = -1;
  }
  void CloseW() {
    if (w >= 0) ::close(w);
    w = -1;
  }
  // Everything until EOF (every writer closed).
  std::string ReadAll() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(r, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
};

class ClientIT : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { registry_ = Registry::Start().release(); }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: mounts snapshots and runs runc";
    ASSERT_FALSE(Fixtures().empty()) << "the test images could not be built";
    daemon_ = Daemon::Create();
    ASSERT_TRUE(daemon_);
    ASSERT_TRUE(daemon_->Start()) << daemon_->Log();
    fifo_dir_ = daemon_->Dir() + "/fifo";
    auto c = Client::Connect(daemon_->Socket(), {.default_namespace = ns_});
    ASSERT_TRUE(c) << c.error().ToString();
    client_.emplace(std::move(*c));
  }

  void TearDown() override {
    if (!daemon_ || !daemon_->Running()) return;
    // Whatever a failed test left: tasks killed and deleted, containers removed.
    auto tasks = Ctr({"tasks", "ls", "-q"});
    for (const auto& id : Lines(tasks.out)) {
      Ctr({"tasks", "kill", "-s", "SIGKILL", "-a", id});
      Ctr({"tasks", "rm", "-f", id});
    }
    for (const auto& id : Lines(Ctr({"containers", "ls", "-q"}).out)) {
      Ctr({"containers", "rm", id});
    }
    client_.reset();
    daemon_->Stop();
    // containerd's shim keeps runc's state in /run/containerd/runc/<ns>; ours keeps it in the
    // daemon's state directory, removed with it.
    ::rmdir(("/run/containerd/runc/" + ns_).c_str());
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
      ::rmdir((e.path().string() + "/" + ns_).c_str());
    }
  }

  static std::vector<std::string> Lines(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == std::string::npos) nl = text.size();
      if (nl > start) out.push_back(text.substr(start, nl - start));
      start = nl + 1;
    }
    return out;
  }

  RunResult Ctr(const std::vector<std::string>& args) const { return daemon_->Ctr(args, ns_); }

  // The busybox fixture imported through the library (unpacked).
  Image ImportBusybox() {
    auto imported = client_->Import(Fixtures() + "/busybox-oci.tar");
    EXPECT_TRUE(imported) << imported.error().ToString();
    auto image = client_->GetImage(kImage);
    EXPECT_TRUE(image) << image.error().ToString();
    return *image;
  }

  // A container on the image running `args` (through its image config).
  Container NewContainer(const std::string& id, const Image& image, std::vector<std::string> args) {
    auto c = client_->NewContainer(
        id, WithImage(image), WithNewSnapshot(id, image),
        WithNewSpec(WithImageConfig(image), WithProcessArgs(std::move(args))));
    EXPECT_TRUE(c) << c.error().ToString();
    return *c;
  }

  static Registry* registry_;
  std::unique_ptr<Daemon> daemon_;
  std::string ns_ = "clientlib-" + std::to_string(::getpid());
  std::string fifo_dir_;
  std::optional<Client> client_;
};

Registry* ClientIT::registry_ = nullptr;

TEST_F(ClientIT, ConnectReportsAnUnreachableDaemonAndVersionAnswers) {
  auto bad = Client::Connect(daemon_->Dir() + "/nothing.sock",
                             {.connect_timeout = std::chrono::milliseconds(300)});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kUnavailable)) << bad.error().ToString();
  EXPECT_NE(bad.error().ToString().find("nothing.sock"), std::string::npos);
  EXPECT_FALSE(Client::Connect(daemon_->Socket(), {.default_namespace = ""}));

  auto v = client_->Version();
  ASSERT_TRUE(v) << v.error().ToString();
  // The same answer ctr gets.
  auto ctr = daemon_->Ctr({"version"});
  ASSERT_EQ(ctr.exit_code, 0) << ctr.err;
  EXPECT_FALSE(v->version.empty());
  EXPECT_NE(ctr.out.find("Version:  " + v->version), std::string::npos) << ctr.out;
}

TEST_F(ClientIT, ImportedImageHasConfigAndUnpacksInTheNamespace) {
  auto imported = client_->Import(Fixtures() + "/busybox-oci.tar", {.unpack = false});
  ASSERT_TRUE(imported) << imported.error().ToString();
  ASSERT_FALSE(imported->empty());
  auto image = client_->GetImage(kImage);
  ASSERT_TRUE(image) << image.error().ToString();
  EXPECT_EQ(image->Target().media_type.find("application/vnd.oci.image"), 0u);
  EXPECT_NE(Ctr({"images", "ls", "-q"}).out.find(kImage), std::string::npos);

  auto config = image->Config();
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_FALSE(config->cmd.empty());
  EXPECT_EQ(config->descriptor.digest.rfind("sha256:", 0), 0u);

  auto listed = client_->ListImages({std::string("name==") + kImage});
  ASSERT_TRUE(listed) << listed.error().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].Target().digest, image->Target().digest);
  // Another namespace sees nothing.
  auto other = client_->WithNamespace(ns_ + "-other").ListImages();
  ASSERT_TRUE(other) << other.error().ToString();
  EXPECT_TRUE(other->empty());

  auto before = image->IsUnpacked();
  ASSERT_TRUE(before) << before.error().ToString();
  EXPECT_FALSE(*before);
  auto unpacked = image->Unpack();
  ASSERT_TRUE(unpacked) << unpacked.error().ToString();
  EXPECT_GT(unpacked->applied, 0);
  EXPECT_TRUE(image->IsUnpacked().value_or(false));
  // The top snapshot is there for ctr too.
  EXPECT_NE(Ctr({"snapshots", "ls"}).out.find(unpacked->chain_id), std::string::npos);
  auto again = image->Unpack();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->applied, 0);

  auto missing = client_->GetImage("docker.io/berth/nothing:latest");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound)) << missing.error().ToString();
  ASSERT_TRUE(client_->DeleteImage(kImage));
  EXPECT_TRUE(IsError(client_->GetImage(kImage), Errc::kNotFound));
}

TEST_F(ClientIT, PullFromARegistryUnpacksAndRunsATask) {
  ASSERT_NE(registry_, nullptr);
  std::vector<std::string> states;
  auto image = client_->Pull(registry_->Ref("busybox"),
                             {.unpack = true,
                              .registry = {.plain_http = true},
                              .progress = [&](const std::vector<TransferProgress>& all) {
                                for (const auto& p : all) states.push_back(p.state);
                              }});
  ASSERT_TRUE(image) << image.error().ToString();
  EXPECT_EQ(image->Name(), registry_->Ref("busybox"));
  EXPECT_TRUE(image->IsUnpacked().value_or(false));
  EXPECT_FALSE(states.empty());
  EXPECT_NE(Ctr({"images", "ls", "-q"}).out.find(registry_->Ref("busybox")), std::string::npos);

  Pipe out;
  auto container = NewContainer("pulled", *image, {"sh", "-c", "echo pulled-ok"});
  auto task = container.NewTask(cio::WithStreams(-1, out.w, out.w, {.fifo_dir = fifo_dir_}));
  ASSERT_TRUE(task) << task.error().ToString();
  auto waiter = task->Wait();
  ASSERT_TRUE(waiter) << waiter.error().ToString();
  ASSERT_TRUE(task->Start());
  auto status = waiter->Get();
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(status->code, 0u);
  ASSERT_TRUE(task->Delete());
  out.CloseW();  // the IO is gone with the task: our write end is the last one
  EXPECT_EQ(out.ReadAll(), "pulled-ok\n");
  ASSERT_TRUE(container.Delete(WithSnapshotCleanup));

  auto bad =
      client_->Pull(registry_->Addr() + "/test/nothing:latest", {.registry = {.plain_http = true}});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kNotFound)) << bad.error().ToString();
}

TEST_F(ClientIT, TaskRunsWithStdioAndReportsItsExitStatus) {
  Image image = ImportBusybox();
  Pipe in, out, err;
  auto container = NewContainer("io", image, {"sh", "-c", "cat; echo to-err >&2; exit 7"});
  EXPECT_EQ(container.Cached().image, kImage);
  EXPECT_EQ(container.Cached().snapshot_key, "io");
  EXPECT_NE(Ctr({"containers", "ls", "-q"}).out.find("io"), std::string::npos);
  auto spec = container.GetSpec();
  ASSERT_TRUE(spec) << spec.error().ToString();
  EXPECT_EQ((*spec)["process"]["args"][2], "cat; echo to-err >&2; exit 7");

  auto task = container.NewTask(cio::WithStreams(in.r, out.w, err.w, {.fifo_dir = fifo_dir_}));
  ASSERT_TRUE(task) << task.error().ToString();
  auto st = task->GetStatus();
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->state, TaskState::kCreated);
  auto waiter = task->Wait();
  ASSERT_TRUE(waiter) << waiter.error().ToString();
  auto pid = task->Start();
  ASSERT_TRUE(pid) << pid.error().ToString();
  EXPECT_GT(*pid, 0u);
  ASSERT_EQ(::write(in.w, "ping\n", 5), 5);
  in.CloseW();  // EOF: the library closes the process's stdin (CloseIO)
  auto status = waiter->Get();
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(status->code, 7u);
  EXPECT_GT(status->exited_at.time_since_epoch().count(), 0);

  // A task still there cannot lose its container.
  auto refused = container.Delete();
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().Is(Errc::kFailedPrecondition)) << refused.error().ToString();

  auto deleted = task->Delete();
  ASSERT_TRUE(deleted) << deleted.error().ToString();
  EXPECT_EQ(deleted->code, 7u);
  out.CloseW();
  err.CloseW();
  EXPECT_EQ(out.ReadAll(), "ping\n");
  EXPECT_EQ(err.ReadAll(), "to-err\n");
  // The FIFO directory went with the IO.
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(fifo_dir_, ec)) << fifo_dir_;

  EXPECT_NE(Ctr({"snapshots", "ls"}).out.find("\nio "), std::string::npos);
  ASSERT_TRUE(container.Delete(WithSnapshotCleanup));
  EXPECT_EQ(Ctr({"containers", "ls", "-q"}).out, "");
  EXPECT_EQ(Ctr({"snapshots", "ls"}).out.find("\nio "), std::string::npos);
  EXPECT_TRUE(IsError(client_->LoadContainer("io"), Errc::kNotFound));
}

TEST_F(ClientIT, ExecPidsPauseAndKill) {
  Image image = ImportBusybox();
  auto container = NewContainer("long", image, {"sleep", "1000"});
  auto task = container.NewTask(cio::NullIO());
  ASSERT_TRUE(task) << task.error().ToString();
  auto waiter = task->Wait();
  ASSERT_TRUE(waiter);
  auto pid = task->Start();
  ASSERT_TRUE(pid) << pid.error().ToString();

  auto loaded = client_->LoadContainer("long");
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  auto same = loaded->LoadTask();
  ASSERT_TRUE(same) << same.error().ToString();
  EXPECT_EQ(same->Pid(), *pid);
  EXPECT_EQ(same->GetStatus()->state, TaskState::kRunning);

  auto pids = task->Pids();
  ASSERT_TRUE(pids) << pids.error().ToString();
  ASSERT_FALSE(pids->empty());
  EXPECT_EQ((*pids)[0].pid, *pid);

  // An exec'd process with its own stdio.
  auto pspec = task->ProcessSpec();
  ASSERT_TRUE(pspec) << pspec.error().ToString();
  (*pspec)["args"] = {"sh", "-c", "echo exec-out; exit 3"};
  Pipe out;
  auto exec = task->Exec("e1", *pspec, cio::WithStreams(-1, out.w, out.w, {.fifo_dir = fifo_dir_}));
  ASSERT_TRUE(exec) << exec.error().ToString();
  auto exec_wait = exec->Wait();
  ASSERT_TRUE(exec_wait);
  ASSERT_TRUE(exec->Start());
  auto exec_status = exec_wait->Get();
  ASSERT_TRUE(exec_status) << exec_status.error().ToString();
  EXPECT_EQ(exec_status->code, 3u);
  auto exec_deleted = exec->Delete();
  ASSERT_TRUE(exec_deleted) << exec_deleted.error().ToString();
  out.CloseW();
  EXPECT_EQ(out.ReadAll(), "exec-out\n");

  auto metrics = task->GetMetrics();
  ASSERT_TRUE(metrics) << metrics.error().ToString();
  EXPECT_EQ(metrics->id, "long");
  EXPECT_NE(metrics->type_url.find("io.containerd.cgroups."), std::string::npos)
      << metrics->type_url;
  EXPECT_FALSE(metrics->data.empty());

  auto labels = loaded->SetLabels({{"team", "a"}});
  ASSERT_TRUE(labels) << labels.error().ToString();
  EXPECT_EQ(labels->at("team"), "a");
  EXPECT_NE(Ctr({"containers", "info", "long"}).out.find("\"team\": \"a\""), std::string::npos);
  ASSERT_TRUE(loaded->SetLabels({{"team", ""}}));
  EXPECT_EQ(loaded->Labels()->count("team"), 0u);

  ASSERT_TRUE(task->Pause());
  EXPECT_EQ(task->GetStatus()->state, TaskState::kPaused);
  ASSERT_TRUE(task->Resume());
  EXPECT_EQ(task->GetStatus()->state, TaskState::kRunning);

  // Not stopped: refused.
  auto early = task->Delete();
  ASSERT_FALSE(early);
  EXPECT_TRUE(early.error().Is(Errc::kFailedPrecondition)) << early.error().ToString();

  ASSERT_TRUE(task->Kill(SIGKILL));
  auto status = waiter->Get();
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(status->code, 128u + SIGKILL);
  ASSERT_TRUE(task->Delete());
  EXPECT_TRUE(IsError(container.LoadTask(), Errc::kNotFound));
  ASSERT_TRUE(container.Delete(WithSnapshotCleanup));
}

TEST_F(ClientIT, EventsArriveWithDecodedPayload) {
  auto stream = client_->Subscribe({"topic~=\"^/containers/\""});
  ASSERT_TRUE(stream) << stream.error().ToString();
  auto c = client_->NewContainer("evt", WithNewSpec());
  ASSERT_TRUE(c) << c.error().ToString();
  ASSERT_TRUE(c->Delete());
  auto first = (*stream)->Next();
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(first->topic, "/containers/create");
  EXPECT_EQ(first->ns, ns_);
  EXPECT_EQ(first->type_url, "containerd.events.ContainerCreate");
  EXPECT_NE(first->json.find("\"evt\""), std::string::npos) << first->json;
  EXPECT_FALSE(first->data.empty());
  auto second = (*stream)->Next();
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(second->topic, "/containers/delete");

  // Close from another thread ends a blocked Next.
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (*stream)->Close();
  });
  auto ended = (*stream)->Next();
  closer.join();
  ASSERT_FALSE(ended);
  EXPECT_TRUE(ended.error().Is(Errc::kCanceled)) << ended.error().ToString();
}

TEST_F(ClientIT, LeasesCreateListDeleteAndScope) {
  auto lease = client_->CreateLease({.id = "mine", .labels = {{"team", "a"}}});
  ASSERT_TRUE(lease) << lease.error().ToString();
  EXPECT_EQ(lease->id, "mine");
  EXPECT_EQ(lease->labels.at("team"), "a");
  EXPECT_TRUE(lease->labels.count("containerd.io/gc.expire"));
  EXPECT_TRUE(IsError(client_->CreateLease({.id = "mine"}), Errc::kAlreadyExists));
  auto listed = client_->Leases({"id==mine"});
  ASSERT_TRUE(listed) << listed.error().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_NE(Ctr({"leases", "ls", "-q"}).out.find("mine"), std::string::npos);
  ASSERT_TRUE(client_->DeleteLease("mine"));
  EXPECT_TRUE(IsError(client_->DeleteLease("mine"), Errc::kNotFound));

  std::string scoped_id;
  {
    auto scoped = client_->WithNewLease();
    ASSERT_TRUE(scoped) << scoped.error().ToString();
    scoped_id = scoped->client().LeaseId();
    ASSERT_FALSE(scoped_id.empty());
    EXPECT_NE(Ctr({"leases", "ls", "-q"}).out.find(scoped_id), std::string::npos);
  }
  EXPECT_EQ(Ctr({"leases", "ls", "-q"}).out.find(scoped_id), std::string::npos);
}

TEST_F(ClientIT, PushExportAndImportRoundTrip) {
  ASSERT_NE(registry_, nullptr);
  Image image = ImportBusybox();
  std::string remote = registry_->Addr() + "/test/client-pushed:latest";
  auto pushed = client_->Push(remote, kImage, {.registry = {.plain_http = true}});
  ASSERT_TRUE(pushed) << pushed.error().ToString();
  EXPECT_EQ(pushed->digest, image.Target().digest);
  // Another namespace pulls it back: same root.
  Client other = client_->WithNamespace(ns_ + "-pull");
  auto pulled = other.Pull(remote, {.unpack = false, .registry = {.plain_http = true}});
  ASSERT_TRUE(pulled) << pulled.error().ToString();
  EXPECT_EQ(pulled->Target().digest, image.Target().digest);
  ASSERT_TRUE(other.DeleteImage(remote));

  std::string tar = daemon_->Dir() + "/exported.tar";
  ASSERT_TRUE(client_->Export(tar, {kImage}));
  Client third = client_->WithNamespace(ns_ + "-import");
  auto imported = third.Import(tar, {.unpack = false});
  ASSERT_TRUE(imported) << imported.error().ToString();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].Name(), kImage);
  EXPECT_EQ((*imported)[0].Target().digest, image.Target().digest);
  ASSERT_TRUE(third.DeleteImage(kImage));

  auto missing = client_->Export(tar, {"docker.io/berth/nothing:latest"});
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound)) << missing.error().ToString();
}

TEST_F(ClientIT, LogFileAndTerminalIo) {
  Image image = ImportBusybox();
  // The shim writes stdout and stderr to the file itself.
  std::string log = daemon_->Dir() + "/task.log";
  {
    auto c = NewContainer("logged", image, {"sh", "-c", "echo to-log; echo err-log >&2"});
    auto task = c.NewTask(cio::LogFile(log));
    ASSERT_TRUE(task) << task.error().ToString();
    auto waiter = task->Wait();
    ASSERT_TRUE(waiter);
    ASSERT_TRUE(task->Start());
    ASSERT_EQ(waiter->Get().value_or(ExitStatus{99}).code, 0u);
    ASSERT_TRUE(task->Delete());
    ASSERT_TRUE(c.Delete(WithSnapshotCleanup));
  }
  std::string text = ReadText(log);
  EXPECT_NE(text.find("to-log\n"), std::string::npos) << text;
  EXPECT_NE(text.find("err-log\n"), std::string::npos) << text;
  EXPECT_TRUE(IsError(cio::LogFile("relative.log")("x"), Errc::kInvalidArgument));

  // A terminal: one stream, the process sees a tty.
  auto c = client_->NewContainer(
      "tty", WithNewSnapshot("tty", image),
      WithNewSpec(WithImageConfig(image), WithTTY(),
                  WithProcessArgs({"sh", "-c", "test -t 0 && echo is-a-tty"})));
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->Cached().spec["process"]["terminal"], true);
  Pipe out;
  auto task =
      c->NewTask(cio::WithStreams(-1, out.w, -1, {.terminal = true, .fifo_dir = fifo_dir_}));
  ASSERT_TRUE(task) << task.error().ToString();
  auto waiter = task->Wait();
  ASSERT_TRUE(waiter);
  ASSERT_TRUE(task->Start());
  auto status = waiter->Get();
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(status->code, 0u);
  ASSERT_TRUE(task->Delete());
  out.CloseW();
  EXPECT_NE(out.ReadAll().find("is-a-tty"), std::string::npos);
  ASSERT_TRUE(c->Delete(WithSnapshotCleanup));
}

// The walk-through program, built by the normal build, run against the test daemon.
TEST_F(ClientIT, ExampleProgramRunsTheWalkThrough) {
  ASSERT_NE(registry_, nullptr);
  std::string example = BinPath("run_redis_like");
  ASSERT_EQ(::access(example.c_str(), X_OK), 0) << example << " was not built";
  auto r =
      Exec({example, "-a", daemon_->Socket(), "-n", ns_, "--plain-http", "--fifo-dir", fifo_dir_,
            registry_->Ref("busybox"), "walk", "sh", "-c", "echo from-example; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("from-example\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("task walk exited with status 3"), std::string::npos) << r.out;
  // It cleaned up after itself; the image stays.
  EXPECT_EQ(Ctr({"containers", "ls", "-q"}).out, "");
  EXPECT_EQ(Ctr({"tasks", "ls", "-q"}).out, "");
  EXPECT_NE(Ctr({"images", "ls", "-q"}).out.find(registry_->Ref("busybox")), std::string::npos);

  auto bad = Exec({example, "-a", daemon_->Socket(), "-n", ns_, "--plain-http",
                   registry_->Addr() + "/test/nothing:latest", "walk2"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("nothing"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace berth::testing

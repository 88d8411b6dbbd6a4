// Drives containerd-shim-berth-v2 directly, the way containerd does: `start` in a bundle with
// TTRPC_ADDRESS pointing at a ttrpc server of ours that records forwarded events, then the
// containerd.task.v2.Task API over our ttrpc client, real runc, a busybox rootfs bind-mounted by
// the shim. Everything (shim, runc container, mounts, socket, cgroup) is removed by PID and
// path at the end, also when a test fails.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/fs.h"
#include "common/mount.h"
#include "github.com/containerd/cgroups/stats/v1/metrics.pb.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "harness.h"
#include "ttrpc/ttrpc.h"

namespace berth::testing {
namespace {

namespace task = containerd::task::v2;
using Empty = google::protobuf::Empty;
// Per process: runs of the suite at once (release and ASan trees) use their own cgroups.
const std::string kNs = "berth-shim-it-" + std::to_string(::getpid());
constexpr const char* kTask = "containerd.task.v2.Task";
constexpr std::chrono::milliseconds kCallTimeout(30000);

// Records events forwarded by the shim.
class EventSink {
 public:
  void Add(std::string topic, google::protobuf::Any event) {
    std::lock_guard lock(mu_);
    events_.emplace_back(std::move(topic), std::move(event));
    cv_.notify_all();
  }
  // Waits until `topic` has been seen `count` times (60 s bound); returns the topics so far.
  std::vector<std::string> WaitFor(const std::string& topic, int count = 1) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] {
      int n = 0;
      for (const auto& [t, e] : events_) {
        n += t == topic ? 1 : 0;
      }
      return n >= count;
    });
    std::vector<std::string> topics;
    for (const auto& [t, e] : events_) {
      topics.push_back(t);
    }
    return topics;
  }
  std::optional<google::protobuf::Any> Last(const std::string& topic) {
    std::lock_guard lock(mu_);
    for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
      if (it->first == topic) {
        return it->second;
      }
    }
    return std::nullopt;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, google::protobuf::Any>> events_;
};

bool Alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

// Waits (bounded) until `pred` holds.
template <class Pred>
bool Eventually(Pred pred, std::chrono::seconds bound = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

class ShimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("berth-shim-it-");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    // A busybox-static root filesystem: the binary and its applet links.
    lower_ = dir_->Path() + "/lower";
    for (const char* d : {"/bin", "/proc", "/dev", "/sys", "/tmp", "/etc", "/run"}) {
      ASSERT_TRUE(fs::MkdirAll(lower_ + d, 0755));
    }
    auto cp = Exec({"cp", "/bin/busybox", lower_ + "/bin/busybox"});
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
    for (const char* applet :
         {"sh", "echo", "sleep", "cat", "true", "ls", "ps", "stty", "tty", "head", "tail"}) {
      ASSERT_EQ(::symlink("busybox", (lower_ + "/bin/" + applet).c_str()), 0);
    }
    // Event receiver.
    events_socket_ = dir_->Path() + "/events.sock";
    server_ = std::make_unique<ttrpc::Server>(io_);
    server_->Register("containerd.services.events.ttrpc.v1.Events", "Forward",
                      [this](ttrpc::CallContext ctx, std::string payload, ttrpc::Responder r) {
                        containerd::services::events::ttrpc::v1::ForwardRequest req;
                        if (req.ParseFromString(payload)) {
                          EXPECT_EQ(ctx.metadata.Get(ttrpc::kNamespaceKey).value_or(""), kNs);
                          EXPECT_EQ(req.envelope().namespace_(), kNs);
                          sink_.Add(req.envelope().topic(), req.envelope().event());
                        }
                        r.Reply(Empty().SerializeAsString());
                      });
    auto listener = ttrpc::Server::Listen(events_socket_);
    ASSERT_TRUE(listener) << listener.error().ToString();
    ASSERT_TRUE(server_->Serve(std::move(*listener)));
    work_ = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
        io_.get_executor());
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    // Whatever a failed test left behind: the containers, the shim, mounts, socket.
    for (const auto& id : ids_) {
      Exec({"runc", "--root", RuncRoot(), "delete", "--force", id});
      (void)mount::UnmountAll(BundleDir(id) + "/rootfs");
    }
    if (Alive(shim_pid_)) {
      ::kill(shim_pid_, SIGKILL);
    }
    if (!socket_.empty()) {
      ::unlink(socket_.c_str());
    }
    if (client_) {
      client_->Close();
    }
    // runc leaves the parents it created for cgroupsPath /<ns>/<id> and its --root: remove them
    // when empty (rmdir refuses anything in use).
    std::string cgroups = Exec({"/bin/sh", "-c",
                                std::string("ls -d /sys/fs/cgroup/*/") + kNs + " /sys/fs/cgroup/" +
                                    kNs + " 2>/dev/null"})
                              .out;
    std::istringstream dirs(cgroups);
    for (std::string d; std::getline(dirs, d);) {
      ::rmdir(d.c_str());
    }
    ::rmdir(RuncRoot().c_str());
    work_.reset();
    server_->Shutdown();
    io_.stop();
    if (io_thread_.joinable()) {
      io_thread_.join();
    }
  }

  // A bundle for `id` whose process runs `args`.
  // Bundles in a daemon's layout, <state>/io.containerd.runtime.v2.task/<ns>/<id>: the shim then
  // keeps runc's state in <state>/runc, private to this test.
  std::string BundleDir(const std::string& id) const {
    return dir_->Path() + "/state/io.containerd.runtime.v2.task/" + kNs + "/" + id;
  }
  std::string RuncRoot() const { return dir_->Path() + "/state/runc/" + kNs; }

  std::string MakeBundle(const std::string& id, const std::vector<std::string>& args,
                         bool terminal = false,
                         const nlohmann::json& annotations = nlohmann::json::object(),
                         int64_t memory_limit = 0) {
    std::string bundle = BundleDir(id);
    EXPECT_TRUE(fs::MkdirAll(bundle, 0700));
    auto spec_text = Exec({"ctr", "oci", "spec"});
    EXPECT_EQ(spec_text.exit_code, 0);
    auto spec = nlohmann::json::parse(spec_text.out);
    spec["process"]["args"] = args;
    spec["process"]["terminal"] = terminal;
    spec["process"]["env"] = {"PATH=/bin"};
    spec["root"]["path"] = "rootfs";
    spec["linux"]["cgroupsPath"] = std::string("/") + kNs + "/" + id;
    if (!annotations.empty()) {
      spec["annotations"] = annotations;
    }
    if (memory_limit > 0) {
      spec["linux"]["resources"]["memory"] = {{"limit", memory_limit}, {"swap", memory_limit}};
    }
    EXPECT_TRUE(fs::WriteFileAtomic(bundle + "/config.json", spec.dump()));
    ids_.push_back(id);
    return bundle;
  }

  // `start` as containerd runs it; connects the client.
  void StartShim(const std::string& bundle, const std::string& id) {
    std::string cmd = "cd '" + bundle + "' && TTRPC_ADDRESS='" + events_socket_ + "' exec '" +
                      BinPath("containerd-shim-berth-v2") + "' -namespace " + kNs + " -address '" +
                      dir_->Path() + "/fake-containerd.sock' -publish-binary " + "/bin/false -id " +
                      id + " start";
    auto r = Exec({"/bin/sh", "-c", cmd});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_EQ(r.out.rfind("unix:///run/berth/s/", 0), 0u) << r.out;
    socket_ = r.out.substr(strlen("unix://"));
    EXPECT_EQ(ReadText(bundle + "/address"), r.out);
    auto c = ttrpc::Client::Connect(io_, r.out, std::chrono::seconds(10));
    ASSERT_TRUE(c) << c.error().ToString();
    client_ = *c;
    auto conn = Call<task::ConnectResponse>("Connect", [&] {
      task::ConnectRequest req;
      req.set_id(id);
      return req;
    }());
    ASSERT_TRUE(conn) << conn.error().ToString();
    shim_pid_ = static_cast<pid_t>(conn->shim_pid());
    ASSERT_TRUE(Alive(shim_pid_));
  }

  template <class Resp, class Req>
  Result<Resp> Call(const std::string& method, const Req& req) {
    ttrpc::Metadata md;
    md.Add(ttrpc::kNamespaceKey, kNs);
    return client_->Call<Resp>(kTask, method, req, md, kCallTimeout);
  }

  task::CreateTaskRequest CreateRequest(const std::string& id, const std::string& bundle) {
    task::CreateTaskRequest req;
    req.set_id(id);
    req.set_bundle(bundle);
    auto* m = req.add_rootfs();
    m->set_type("bind");
    m->set_source(lower_);
    m->add_options("rbind");
    m->add_options("rw");
    return req;
  }

  // Shuts the shim down and checks it left nothing behind.
  void ShutdownAndCheckClean(const std::string& id, const std::string& bundle) {
    task::ShutdownRequest sreq;
    sreq.set_id(id);
    auto sd = Call<Empty>("Shutdown", sreq);
    // The shim may exit before or after answering: both are fine.
    (void)sd;
    EXPECT_TRUE(Eventually([&] { return !Alive(shim_pid_); })) << "shim still running";
    EXPECT_TRUE(Eventually([&] { return ::access(socket_.c_str(), F_OK) != 0; }))
        << "socket left behind: " << socket_;
    std::string mountinfo = ReadText("/proc/self/mountinfo");
    EXPECT_EQ(mountinfo.find(bundle + "/rootfs"), std::string::npos) << "rootfs still mounted";
    struct stat st {};
    EXPECT_NE(::stat((RuncRoot() + "/" + id).c_str(), &st), 0) << "runc state left";
    EXPECT_NE(::stat((std::string("/sys/fs/cgroup/memory/") + kNs + "/" + id).c_str(), &st), 0)
        << "cgroup left";
  }

  std::optional<fs::TempDir> dir_;
  std::string lower_;
  std::string events_socket_;
  std::string socket_;
  std::vector<std::string> ids_;
  pid_t shim_pid_ = -1;
  asio::io_context io_;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::unique_ptr<ttrpc::Server> server_;
  std::thread io_thread_;
  std::shared_ptr<ttrpc::Client> client_;
  EventSink sink_;
};

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  return out;
}

TEST_F(ShimTest, RunEchoThroughFifosWithEventsAndCleanup) {
  const std::string id = "echo1";
  std::string bundle = MakeBundle(id, {"sh", "-c", "echo hello; echo oops >&2; exit 7"});
  std::string out_fifo = dir_->Path() + "/echo1-stdout";
  std::string err_fifo = dir_->Path() + "/echo1-stderr";
  ASSERT_EQ(::mkfifo(out_fifo.c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo(err_fifo.c_str(), 0600), 0);
  // The client's read ends, opened first as ctr does.
  fs::UniqueFd out_r(::open(out_fifo.c_str(), O_RDONLY | O_NONBLOCK));
  fs::UniqueFd err_r(::open(err_fifo.c_str(), O_RDONLY | O_NONBLOCK));
  ASSERT_NO_FATAL_FAILURE(StartShim(bundle, id));

  // Unknown ids are NotFound "container not created".
  task::StateRequest unknown;
  unknown.set_id("nope");
  auto st_unknown = Call<task::StateResponse>("State", unknown);
  ASSERT_FALSE(st_unknown);
  EXPECT_TRUE(st_unknown.error().Is(Errc::kNotFound)) << st_unknown.error().ToString();
  EXPECT_NE(st_unknown.error().What().find("container not created"), std::string::npos);

  auto create_req = CreateRequest(id, bundle);
  create_req.set_stdout(out_fifo);
  create_req.set_stderr(err_fifo);
  auto created = Call<task::CreateTaskResponse>("Create", create_req);
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_GT(created->pid(), 0u);
  EXPECT_EQ(ReadText(bundle + "/options.json"), "{}");
  EXPECT_EQ(std::stoi(ReadText(bundle + "/init.pid")), static_cast<int>(created->pid()));

  task::StateRequest sreq;
  sreq.set_id(id);
  auto state = Call<task::StateResponse>("State", sreq);
  ASSERT_TRUE(state) << state.error().ToString();
  EXPECT_EQ(state->status(), containerd::v1::types::CREATED);
  EXPECT_EQ(state->bundle(), bundle);
  EXPECT_EQ(state->stdout(), out_fifo);

  task::StartRequest start;
  start.set_id(id);
  auto started = Call<task::StartResponse>("Start", start);
  ASSERT_TRUE(started) << started.error().ToString();
  EXPECT_EQ(started->pid(), created->pid());

  task::WaitRequest wreq;
  wreq.set_id(id);
  auto waited = Call<task::WaitResponse>("Wait", wreq);
  ASSERT_TRUE(waited) << waited.error().ToString();
  EXPECT_EQ(waited->exit_status(), 7u);
  EXPECT_GT(waited->exited_at().seconds(), 0);

  // Output arrives in full and ends with EOF once the process is gone.
  ::fcntl(out_r.Get(), F_SETFL, 0);
  ::fcntl(err_r.Get(), F_SETFL, 0);
  EXPECT_EQ(ReadAll(out_r.Get()), "hello\n");
  EXPECT_EQ(ReadAll(err_r.Get()), "oops\n");

  state = Call<task::StateResponse>("State", sreq);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->status(), containerd::v1::types::STOPPED);
  EXPECT_EQ(state->exit_status(), 7u);

  // Starting again is a state error, as the runc shim's.
  auto again = Call<task::StartResponse>("Start", start);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().What().find("cannot start a stopped process"), std::string::npos);

  task::DeleteRequest dreq;
  dreq.set_id(id);
  auto deleted = Call<task::DeleteResponse>("Delete", dreq);
  ASSERT_TRUE(deleted) << deleted.error().ToString();
  EXPECT_EQ(deleted->exit_status(), 7u);
  EXPECT_EQ(deleted->pid(), created->pid());

  auto topics = sink_.WaitFor("/tasks/delete");
  EXPECT_EQ(topics, (std::vector<std::string>{"/tasks/create", "/tasks/start", "/tasks/exit",
                                              "/tasks/delete"}));
  auto exit_any = sink_.Last("/tasks/exit");
  ASSERT_TRUE(exit_any);
  EXPECT_EQ(exit_any->type_url(), "containerd.events.TaskExit");
  containerd::events::TaskExit exit_event;
  ASSERT_TRUE(exit_event.ParseFromString(exit_any->value()));
  EXPECT_EQ(exit_event.container_id(), id);
  EXPECT_EQ(exit_event.id(), id);
  EXPECT_EQ(exit_event.exit_status(), 7u);
  EXPECT_EQ(exit_event.pid(), created->pid());

  ShutdownAndCheckClean(id, bundle);
}

TEST_F(ShimTest, ExecKillPauseStatsAndStateErrors) {
  const std::string id = "sleeper";
  std::string bundle = MakeBundle(id, {"sleep", "1000"});
  ASSERT_NO_FATAL_FAILURE(StartShim(bundle, id));
  auto created = Call<task::CreateTaskResponse>("Create", CreateRequest(id, bundle));
  ASSERT_TRUE(created) << created.error().ToString();
  task::StartRequest start;
  start.set_id(id);
  ASSERT_TRUE(Call<task::StartResponse>("Start", start));

  // A running init cannot be deleted.
  task::DeleteRequest dreq;
  dreq.set_id(id);
  auto early = Call<task::DeleteResponse>("Delete", dreq);
  ASSERT_FALSE(early);
  EXPECT_NE(early.error().What().find("cannot delete a running process"), std::string::npos);

  // Exec with its own stdout FIFO.
  std::string exec_out = dir_->Path() + "/exec-stdout";
  ASSERT_EQ(::mkfifo(exec_out.c_str(), 0600), 0);
  fs::UniqueFd exec_r(::open(exec_out.c_str(), O_RDONLY | O_NONBLOCK));
  task::ExecProcessRequest ereq;
  ereq.set_id(id);
  ereq.set_exec_id("e1");
  ereq.set_stdout(exec_out);
  nlohmann::json proc = {{"args", {"sh", "-c", "echo from-exec; exit 3"}},
                         {"cwd", "/"},
                         {"env", {"PATH=/bin"}},
                         {"user", {{"uid", 0}, {"gid", 0}}}};
  ereq.mutable_spec()->set_type_url("types.containerd.io/opencontainers/runtime-spec/1/Process");
  ereq.mutable_spec()->set_value(proc.dump());
  auto exec = Call<Empty>("Exec", ereq);
  ASSERT_TRUE(exec) << exec.error().ToString();
  auto dup = Call<Empty>("Exec", ereq);
  ASSERT_FALSE(dup);
  EXPECT_TRUE(dup.error().Is(Errc::kAlreadyExists));

  task::StartRequest estart;
  estart.set_id(id);
  estart.set_exec_id("e1");
  auto estarted = Call<task::StartResponse>("Start", estart);
  ASSERT_TRUE(estarted) << estarted.error().ToString();
  task::WaitRequest ewait;
  ewait.set_id(id);
  ewait.set_exec_id("e1");
  auto ewaited = Call<task::WaitResponse>("Wait", ewait);
  ASSERT_TRUE(ewaited) << ewaited.error().ToString();
  EXPECT_EQ(ewaited->exit_status(), 3u);
  ::fcntl(exec_r.Get(), F_SETFL, 0);
  EXPECT_EQ(ReadAll(exec_r.Get()), "from-exec\n");

  // Killing a finished exec is NotFound.
  task::KillRequest ekill;
  ekill.set_id(id);
  ekill.set_exec_id("e1");
  ekill.set_signal(SIGKILL);
  auto ek = Call<Empty>("Kill", ekill);
  ASSERT_FALSE(ek);
  EXPECT_TRUE(ek.error().Is(Errc::kNotFound)) << ek.error().ToString();
  task::DeleteRequest edel;
  edel.set_id(id);
  edel.set_exec_id("e1");
  auto edeleted = Call<task::DeleteResponse>("Delete", edel);
  ASSERT_TRUE(edeleted) << edeleted.error().ToString();
  EXPECT_EQ(edeleted->exit_status(), 3u);
  task::StateRequest est;
  est.set_id(id);
  est.set_exec_id("e1");
  auto gone = Call<task::StateResponse>("State", est);
  ASSERT_FALSE(gone);
  EXPECT_TRUE(gone.error().Is(Errc::kNotFound));

  // Pids lists the init.
  task::PidsRequest preq;
  preq.set_id(id);
  auto pids = Call<task::PidsResponse>("Pids", preq);
  ASSERT_TRUE(pids) << pids.error().ToString();
  bool has_init = false;
  for (const auto& p : pids->processes()) {
    has_init |= p.pid() == created->pid();
  }
  EXPECT_TRUE(has_init);

  // Stats: cgroup v1 metrics on this host, v2 on unified ones.
  task::StatsRequest streq;
  streq.set_id(id);
  auto stats = Call<task::StatsResponse>("Stats", streq);
  ASSERT_TRUE(stats) << stats.error().ToString();
  if (stats->stats().type_url() == "io.containerd.cgroups.v1.Metrics") {
    io::containerd::cgroups::v1::Metrics m;
    ASSERT_TRUE(m.ParseFromString(stats->stats().value()));
    EXPECT_GE(m.pids().current(), 1u);
    EXPECT_GT(m.memory().usage().usage(), 0u);
  } else {
    EXPECT_EQ(stats->stats().type_url(), "io.containerd.cgroups.v2.Metrics");
  }

  // Update: a pids limit through runc update.
  task::UpdateTaskRequest ureq;
  ureq.set_id(id);
  ureq.mutable_resources()->set_type_url(
      "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources");
  ureq.mutable_resources()->set_value(R"({"pids":{"limit":64}})");
  auto upd = Call<Empty>("Update", ureq);
  EXPECT_TRUE(upd) << upd.error().ToString();

  // Pause / resume.
  task::PauseRequest pause;
  pause.set_id(id);
  ASSERT_TRUE(Call<Empty>("Pause", pause));
  task::StateRequest sreq;
  sreq.set_id(id);
  EXPECT_EQ(Call<task::StateResponse>("State", sreq)->status(), containerd::v1::types::PAUSED);
  auto pause2 = Call<Empty>("Pause", pause);
  ASSERT_FALSE(pause2);
  EXPECT_NE(pause2.error().What().find("cannot pause a paused container"), std::string::npos);
  task::ResumeRequest resume;
  resume.set_id(id);
  ASSERT_TRUE(Call<Empty>("Resume", resume));

  // Checkpoint is not implemented.
  task::CheckpointTaskRequest ck;
  ck.set_id(id);
  auto ckr = Call<Empty>("Checkpoint", ck);
  ASSERT_FALSE(ckr);
  EXPECT_TRUE(ckr.error().Is(Errc::kNotImplemented));

  // Shutdown with a container left does nothing.
  task::ShutdownRequest sd;
  sd.set_id(id);
  ASSERT_TRUE(Call<Empty>("Shutdown", sd));
  EXPECT_TRUE(Alive(shim_pid_));

  // Kill --all with SIGKILL: exit status 137.
  task::KillRequest kill;
  kill.set_id(id);
  kill.set_signal(SIGKILL);
  kill.set_all(true);
  ASSERT_TRUE(Call<Empty>("Kill", kill));
  task::WaitRequest wreq;
  wreq.set_id(id);
  auto waited = Call<task::WaitResponse>("Wait", wreq);
  ASSERT_TRUE(waited) << waited.error().ToString();
  EXPECT_EQ(waited->exit_status(), 137u);
  auto deleted = Call<task::DeleteResponse>("Delete", dreq);
  ASSERT_TRUE(deleted) << deleted.error().ToString();
  EXPECT_EQ(deleted->exit_status(), 137u);

  auto topics = sink_.WaitFor("/tasks/delete");
  EXPECT_EQ(topics, (std::vector<std::string>{"/tasks/create", "/tasks/start", "/tasks/exec-added",
                                              "/tasks/exec-started", "/tasks/exit", "/tasks/paused",
                                              "/tasks/resumed", "/tasks/exit", "/tasks/delete"}));
  ShutdownAndCheckClean(id, bundle);
}

TEST_F(ShimTest, TerminalThroughConsoleSocketAndResizePty) {
  const std::string id = "tty1";
  std::string bundle = MakeBundle(id, {"sh", "-c", "read line; stty size; echo got-$line"}, true);
  std::string in_fifo = dir_->Path() + "/tty1-stdin";
  std::string out_fifo = dir_->Path() + "/tty1-stdout";
  ASSERT_EQ(::mkfifo(in_fifo.c_str(), 0600), 0);
  ASSERT_EQ(::mkfifo(out_fifo.c_str(), 0600), 0);
  fs::UniqueFd out_r(::open(out_fifo.c_str(), O_RDONLY | O_NONBLOCK));
  ASSERT_NO_FATAL_FAILURE(StartShim(bundle, id));
  auto req = CreateRequest(id, bundle);
  req.set_terminal(true);
  req.set_stdin(in_fifo);
  req.set_stdout(out_fifo);
  auto created = Call<task::CreateTaskResponse>("Create", req);
  ASSERT_TRUE(created) << created.error().ToString();
  task::StartRequest start;
  start.set_id(id);
  ASSERT_TRUE(Call<task::StartResponse>("Start", start));
  task::ResizePtyRequest rs;
  rs.set_id(id);
  rs.set_width(100);
  rs.set_height(40);
  auto resized = Call<Empty>("ResizePty", rs);
  ASSERT_TRUE(resized) << resized.error().ToString();
  fs::UniqueFd in_w(::open(in_fifo.c_str(), O_WRONLY));
  ASSERT_TRUE(in_w.Valid());
  ASSERT_EQ(::write(in_w.Get(), "ping\n", 5), 5);
  task::WaitRequest wreq;
  wreq.set_id(id);
  auto waited = Call<task::WaitResponse>("Wait", wreq);
  ASSERT_TRUE(waited) << waited.error().ToString();
  EXPECT_EQ(waited->exit_status(), 0u);
  task::DeleteRequest dreq;
  dreq.set_id(id);
  ASSERT_TRUE(Call<task::DeleteResponse>("Delete", dreq));
  // The pty turns \n into \r\n and echoes the input line.
  ::fcntl(out_r.Get(), F_SETFL, 0);
  std::string out = ReadAll(out_r.Get());
  EXPECT_NE(out.find("40 100\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("got-ping\r\n"), std::string::npos) << out;
  in_w.Reset();
  ShutdownAndCheckClean(id, bundle);
}

TEST_F(ShimTest, OomKillIsReported) {
  if (::access("/sys/fs/cgroup/memory", F_OK) != 0 &&
      ::access("/sys/fs/cgroup/memory.events", F_OK) != 0) {
    GTEST_SKIP() << "no memory cgroup controller on this host";
  }
  const std::string id = "oom1";
  // A shell string that doubles until the 16 MiB limit kills it.
  std::string bundle = MakeBundle(id, {"sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done"},
                                  false, nlohmann::json::object(), 16 << 20);
  ASSERT_NO_FATAL_FAILURE(StartShim(bundle, id));
  ASSERT_TRUE(Call<task::CreateTaskResponse>("Create", CreateRequest(id, bundle)));
  task::StartRequest start;
  start.set_id(id);
  ASSERT_TRUE(Call<task::StartResponse>("Start", start));
  task::WaitRequest wreq;
  wreq.set_id(id);
  auto waited = Call<task::WaitResponse>("Wait", wreq);
  ASSERT_TRUE(waited) << waited.error().ToString();
  EXPECT_EQ(waited->exit_status(), 137u);
  auto topics = sink_.WaitFor("/tasks/oom");
  EXPECT_NE(std::find(topics.begin(), topics.end(), "/tasks/oom"), topics.end());
  auto oom = sink_.Last("/tasks/oom");
  ASSERT_TRUE(oom);
  EXPECT_EQ(oom->type_url(), "containerd.events.TaskOOM");
  containerd::events::TaskOOM e;
  ASSERT_TRUE(e.ParseFromString(oom->value()));
  EXPECT_EQ(e.container_id(), id);
  task::DeleteRequest dreq;
  dreq.set_id(id);
  ASSERT_TRUE(Call<task::DeleteResponse>("Delete", dreq));
  ShutdownAndCheckClean(id, bundle);
}

TEST_F(ShimTest, GroupedContainersShareOneShim) {
  nlohmann::json group = {{"io.containerd.runc.v2.group", "grp1"}};
  std::string b1 = MakeBundle("g1", {"sleep", "1000"}, false, group);
  std::string b2 = MakeBundle("g2", {"sleep", "1000"}, false, group);
  ASSERT_NO_FATAL_FAILURE(StartShim(b1, "g1"));
  // The second start finds the live shim of the group: same address, no new process.
  std::string cmd = "cd '" + b2 + "' && TTRPC_ADDRESS='" + events_socket_ + "' exec '" +
                    BinPath("containerd-shim-berth-v2") + "' -namespace " + kNs + " -address '" +
                    dir_->Path() + "/fake-containerd.sock' -publish-binary /bin/false -id g2 start";
  auto r = Exec({"/bin/sh", "-c", cmd});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "unix://" + socket_);
  EXPECT_EQ(ReadText(b2 + "/address"), r.out);
  for (const auto& [id, bundle] : {std::pair{"g1", b1}, std::pair{"g2", b2}}) {
    auto created = Call<task::CreateTaskResponse>("Create", CreateRequest(id, bundle));
    ASSERT_TRUE(created) << created.error().ToString();
    task::StartRequest start;
    start.set_id(id);
    ASSERT_TRUE(Call<task::StartResponse>("Start", start));
    task::ConnectRequest conn;
    conn.set_id(id);
    auto c = Call<task::ConnectResponse>("Connect", conn);
    ASSERT_TRUE(c);
    EXPECT_EQ(static_cast<pid_t>(c->shim_pid()), shim_pid_);
    EXPECT_EQ(c->task_pid(), created->pid());
  }
  for (const char* id : {"g1", "g2"}) {
    task::KillRequest kill;
    kill.set_id(id);
    kill.set_signal(SIGKILL);
    ASSERT_TRUE(Call<Empty>("Kill", kill));
    task::WaitRequest wreq;
    wreq.set_id(id);
    ASSERT_TRUE(Call<task::WaitResponse>("Wait", wreq));
    task::DeleteRequest dreq;
    dreq.set_id(id);
    ASSERT_TRUE(Call<task::DeleteResponse>("Delete", dreq));
    if (std::string(id) == "g1") {
      // One container left: Shutdown keeps the shim.
      task::ShutdownRequest sd;
      sd.set_id(id);
      ASSERT_TRUE(Call<Empty>("Shutdown", sd));
      EXPECT_TRUE(Alive(shim_pid_));
    }
  }
  ShutdownAndCheckClean("g2", b2);
}

TEST_F(ShimTest, DeleteActionCleansUpWithoutTheShim) {
  const std::string id = "orphan";
  std::string bundle = MakeBundle(id, {"sleep", "1000"});
  ASSERT_NO_FATAL_FAILURE(StartShim(bundle, id));
  auto created = Call<task::CreateTaskResponse>("Create", CreateRequest(id, bundle));
  ASSERT_TRUE(created) << created.error().ToString();
  task::StartRequest start;
  start.set_id(id);
  ASSERT_TRUE(Call<task::StartResponse>("Start", start));
  // The shim dies (as on a crash); containerd then runs `delete`.
  ::kill(shim_pid_, SIGKILL);
  ASSERT_TRUE(Eventually([&] { return !Alive(shim_pid_); }));
  std::string cmd = "cd '" + bundle + "' && exec '" + BinPath("containerd-shim-berth-v2") +
                    "' -namespace " + kNs + " -address '" + dir_->Path() +
                    "/fake-containerd.sock' -publish-binary /bin/false -id " + id + " -bundle '" +
                    bundle + "' delete";
  auto r = Exec({"/bin/sh", "-c", cmd});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  task::DeleteResponse resp;
  ASSERT_TRUE(resp.ParseFromString(r.out));
  EXPECT_EQ(resp.pid(), created->pid());
  EXPECT_EQ(resp.exit_status(), 137u);
  EXPECT_GT(resp.exited_at().seconds(), 0);
  EXPECT_TRUE(Eventually([&] { return !Alive(static_cast<pid_t>(created->pid())); }));
  EXPECT_EQ(ReadText("/proc/self/mountinfo").find(bundle + "/rootfs"), std::string::npos);
  struct stat st {};
  EXPECT_NE(::stat((RuncRoot() + "/" + id).c_str(), &st), 0);
  // The dead shim's socket is removed too.
  EXPECT_NE(::access(socket_.c_str(), F_OK), 0) << socket_;
}

}  // namespace
}  // namespace berth::testing

// TaskManager against a fake shim: a shell script for the `start`/`delete` binary contract and an
// in-process ttrpc server for containerd.task.v2.Task. Covers the create sequence, removal,
// reloading by a new manager (restart) and the cleanup of a shim whose connection drops.
#include "runtime/manager.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>
#include <google/protobuf/empty.pb.h>

#include "common/fs.h"

namespace berth::runtime {
namespace {

namespace v2 = containerd::task::v2;
using namespace std::chrono_literals;

class RecordingPublisher final : public events::Publisher {
 public:
  Status Publish(const Context& ctx, std::string_view topic,
                 const google::protobuf::Message&) override {
    std::lock_guard lock(mu_);
    topics_.push_back(ctx.ns + std::string(topic));
    return Ok();
  }
  std::vector<std::string> Topics() {
    std::lock_guard lock(mu_);
    return topics_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> topics_;
};

template <class Fn>
bool Eventually(Fn fn) {
  for (int i = 0; i < 400; ++i) {
    if (fn()) return true;
    std::this_thread::sleep_for(25ms);
  }
  return fn();
}

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = fs::TempDir::Create("berth-rt-test-");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    sock_ = dir_->Path() + "/shim.sock";
    log_ = dir_->Path() + "/calls";
    shim_ = dir_->Path() + "/fake-shim";
    std::ofstream(shim_) << "#!/bin/sh\n"
                            "for a; do last=$a; done\n"
                            "case \"$last\" in\n"
                            "start) cat >/dev/null; echo \"unix://"
                         << sock_ << "\" > address; echo start \"$PWD\" >> " << log_
                         << "; echo \"unix://" << sock_
                         << "\";;\n"
                            "delete) echo delete >> "
                         << log_
                         << "; printf '\\010\\007\\020\\211\\001';;\n"
                            "esac\n";
    ::chmod(shim_.c_str(), 0755);
    io_thread_ = std::thread([this] { io_.run(); });
    server_ = std::make_unique<ttrpc::Server>(io_);
    Register();
    auto fd = ttrpc::Server::Listen(sock_);
    ASSERT_TRUE(fd) << fd.error().ToString();
    ASSERT_TRUE(server_->Serve(std::move(*fd)));
  }
  void TearDown() override {
    manager_.reset();
    std::promise<void> done;
    asio::post(io_, [&] {
      server_.reset();
      done.set_value();
    });
    done.get_future().get();
    work_.reset();
    io_.stop();
    io_thread_.join();
  }

  void Register() {
    const std::string svc = "containerd.task.v2.Task";
    server_->RegisterUnary<v2::CreateTaskRequest, v2::CreateTaskResponse>(
        svc, "Create", [this](const ttrpc::CallContext& ctx, const v2::CreateTaskRequest& req) {
          std::lock_guard lock(mu_);
          calls_.push_back("Create " + req.id() +
                           " ns=" + ctx.metadata.Get(ttrpc::kNamespaceKey).value_or(""));
          last_create_ = req;
          v2::CreateTaskResponse r;
          r.set_pid(42);
          if (req.id() == "fails") return Result<v2::CreateTaskResponse>(Unknown("runc failed"));
          return Result<v2::CreateTaskResponse>(r);
        });
    server_->RegisterUnary<v2::ConnectRequest, v2::ConnectResponse>(
        svc, "Connect", [this](const ttrpc::CallContext&, const v2::ConnectRequest& req) {
          std::lock_guard lock(mu_);
          calls_.push_back("Connect " + req.id());
          v2::ConnectResponse r;
          r.set_task_pid(42);
          return Result<v2::ConnectResponse>(r);
        });
    server_->RegisterUnary<v2::DeleteRequest, v2::DeleteResponse>(
        svc, "Delete", [this](const ttrpc::CallContext&, const v2::DeleteRequest& req) {
          std::lock_guard lock(mu_);
          calls_.push_back("Delete " + req.id());
          v2::DeleteResponse r;
          r.set_pid(42);
          r.set_exit_status(3);
          return Result<v2::DeleteResponse>(r);
        });
    server_->RegisterUnary<v2::ShutdownRequest, google::protobuf::Empty>(
        svc, "Shutdown", [this](const ttrpc::CallContext&, const v2::ShutdownRequest& req) {
          std::lock_guard lock(mu_);
          calls_.push_back("Shutdown " + req.id());
          return Result<google::protobuf::Empty>(google::protobuf::Empty());
        });
  }

  std::unique_ptr<TaskManager> Open() {
    Config config;
    config.shims["io.containerd.fake.v1"] = shim_;
    auto m = TaskManager::Open({.root = dir_->Path() + "/root",
                                .state = dir_->Path() + "/state",
                                .grpc_address = dir_->Path() + "/berth.sock",
                                .ttrpc_address = dir_->Path() + "/berth.sock.ttrpc",
                                .config = config,
                                .publisher = &publisher_});
    EXPECT_TRUE(m);
    return m ? std::move(*m) : nullptr;
  }

  CreateOpts Opts() {
    return {.spec = R"({"ociVersion":"1.0.2"})",
            .rootfs = {{.type = "bind", .source = "/x", .options = {"rbind"}}},
            .stdout_path = "/fifo/out",
            .runtime = "io.containerd.fake.v1"};
  }
  std::vector<std::string> Calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::string Bundle(const std::string& id) { return dir_->Path() + "/state/ns/" + id; }
  bool Exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
  }

  std::optional<fs::TempDir> dir_;
  std::string sock_, log_, shim_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread io_thread_;
  std::unique_ptr<ttrpc::Server> server_;
  RecordingPublisher publisher_;
  std::unique_ptr<TaskManager> manager_;
  std::mutex mu_;
  std::vector<std::string> calls_;
  v2::CreateTaskRequest last_create_;
};

TEST_F(ManagerTest, CreateGetListDelete) {
  manager_ = Open();
  Context ctx{.ns = "ns"};
  auto created = manager_->Create(ctx, "t1", Opts());
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ((*created)->Pid(), 42u);
  EXPECT_EQ(*fs::ReadFile(Bundle("t1") + "/config.json"), R"({"ociVersion":"1.0.2"})");
  EXPECT_EQ(*fs::ReadFile(Bundle("t1") + "/shim-binary-path"), shim_);
  EXPECT_EQ(*fs::ReadFile(log_), "start " + Bundle("t1") + "\n");  // cwd = bundle
  EXPECT_EQ(last_create_.bundle(), Bundle("t1"));
  EXPECT_EQ(last_create_.stdout(), "/fifo/out");
  ASSERT_EQ(last_create_.rootfs_size(), 1);
  EXPECT_EQ(last_create_.rootfs(0).type(), "bind");
  EXPECT_EQ(Calls(), (std::vector<std::string>{"Create t1 ns=ns", "Connect t1"}));

  EXPECT_TRUE(manager_->Create(ctx, "t1", Opts()).error().Is(Errc::kAlreadyExists));
  EXPECT_TRUE(manager_->Get(ctx, "t1"));
  EXPECT_TRUE(manager_->Get({.ns = "other"}, "t1").error().Is(Errc::kNotFound));
  EXPECT_EQ(manager_->List(ctx).size(), 1u);
  EXPECT_EQ(manager_->List({.ns = "other"}).size(), 0u);

  auto exit = manager_->Delete(ctx, "t1");
  ASSERT_TRUE(exit) << exit.error().ToString();
  EXPECT_EQ(exit->pid, 42u);
  EXPECT_EQ(exit->status, 3u);
  EXPECT_FALSE(Exists(Bundle("t1")));
  EXPECT_FALSE(Exists(dir_->Path() + "/root/ns/t1"));
  EXPECT_TRUE(manager_->Get(ctx, "t1").error().Is(Errc::kNotFound));
  auto calls = Calls();
  EXPECT_EQ(calls.back(), "Shutdown t1");
  EXPECT_TRUE(publisher_.Topics().empty());  // the shim publishes task events, not us
}

TEST_F(ManagerTest, FailedShimCreateIsUndone) {
  manager_ = Open();
  Context ctx{.ns = "ns"};
  auto created = manager_->Create(ctx, "fails", Opts());
  ASSERT_FALSE(created);
  EXPECT_NE(created.error().ToString().find("runc failed"), std::string::npos);
  EXPECT_FALSE(Exists(Bundle("fails")));
  auto calls = Calls();
  EXPECT_EQ(calls,
            (std::vector<std::string>{"Create fails ns=ns", "Delete fails", "Shutdown fails"}));
  EXPECT_TRUE(manager_->List(ctx).empty());
}

TEST_F(ManagerTest, UnknownRuntimeFailsBeforeAnyBundle) {
  manager_ = Open();
  auto created = manager_->Create({.ns = "ns"}, "t", {.spec = "{}", .runtime = "x.nope.v1"});
  ASSERT_FALSE(created);
  EXPECT_TRUE(created.error().Is(Errc::kNotFound)) << created.error().ToString();
  EXPECT_NE(created.error().ToString().find("containerd-shim-nope-v1"), std::string::npos);
  EXPECT_FALSE(Exists(Bundle("t")));
}

TEST_F(ManagerTest, NewManagerReconnectsToLiveShims) {
  manager_ = Open();
  Context ctx{.ns = "ns"};
  ASSERT_TRUE(manager_->Create(ctx, "keep", Opts()));
  // A leftover work dir without a bundle is removed on load.
  ASSERT_TRUE(fs::MkdirAll(dir_->Path() + "/root/ns/orphan", 0711));
  manager_.reset();  // berthd stops: the shim stays
  EXPECT_TRUE(Exists(Bundle("keep")));

  manager_ = Open();
  auto shim = manager_->Get(ctx, "keep");
  ASSERT_TRUE(shim) << shim.error().ToString();
  EXPECT_EQ(Calls().back(), "Connect keep");
  EXPECT_FALSE(Exists(dir_->Path() + "/root/ns/orphan"));
  EXPECT_TRUE(Exists(dir_->Path() + "/root/ns/keep"));
  EXPECT_TRUE(publisher_.Topics().empty());
}

TEST_F(ManagerTest, DeadShimIsCleanedUpWithEvents) {
  manager_ = Open();
  Context ctx{.ns = "ns"};
  ASSERT_TRUE(manager_->Create(ctx, "dies", Opts()));
  // The shim goes away: its connections close.
  std::promise<void> done;
  asio::post(io_, [&] { server_->Shutdown([&] { done.set_value(); }); });
  done.get_future().get();
  ASSERT_TRUE(Eventually([&] { return !manager_->Get(ctx, "dies"); }));
  ASSERT_TRUE(Eventually([&] { return publisher_.Topics().size() == 2; }));
  EXPECT_EQ(publisher_.Topics(), (std::vector<std::string>{"ns/tasks/exit", "ns/tasks/delete"}));
  EXPECT_FALSE(Exists(Bundle("dies")));
  EXPECT_NE(fs::ReadFile(log_)->find("delete"), std::string::npos);
}

TEST_F(ManagerTest, DeadShimFoundAtLoadIsCleanedUp) {
  manager_ = Open();
  Context ctx{.ns = "ns"};
  ASSERT_TRUE(manager_->Create(ctx, "gone", Opts()));
  manager_.reset();
  std::promise<void> done;
  asio::post(io_, [&] { server_->Shutdown([&] { done.set_value(); }); });
  done.get_future().get();
  ::unlink(sock_.c_str());

  manager_ = Open();
  EXPECT_TRUE(manager_->Get(ctx, "gone").error().Is(Errc::kNotFound));
  EXPECT_EQ(publisher_.Topics(), (std::vector<std::string>{"ns/tasks/exit", "ns/tasks/delete"}));
  EXPECT_FALSE(Exists(Bundle("gone")));
  EXPECT_FALSE(Exists(dir_->Path() + "/root/ns/gone"));
}

}  // namespace
}  // namespace berth::runtime

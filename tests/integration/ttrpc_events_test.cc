// berthd's ttrpc events endpoint (<grpc address>.ttrpc), driven by our ttrpc Client the way a
// shim publishes, and observed with the real `ctr events`.
#include <github.com/containerd/containerd/api/events/task.pb.h>
#include <github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h>
#include <google/protobuf/empty.pb.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <future>
#include <thread>

#include "harness.h"
#include "task_fixture.h"
#include "ttrpc/ttrpc.h"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;
namespace tev = containerd::services::events::ttrpc::v1;

constexpr std::string_view kEvents = "containerd.services.events.ttrpc.v1.Events";

class TtrpcEventsIT : public ::testing::Test {
 protected:
  void SetUp() override {
    d_ = Daemon::Create();
    ASSERT_TRUE(d_->Start()) << d_->Log();
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    client_.reset();
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
  }

  std::string TtrpcSocket() const { return d_->Socket() + ".ttrpc"; }

  ttrpc::Client& Client() {
    if (!client_) {
      auto c = ttrpc::Client::Connect(io_, TtrpcSocket(), 10s);
      EXPECT_TRUE(c) << c.error().ToString();
      if (c) client_ = *c;
    }
    return *client_;
  }

  // Forwards a /tasks/exit envelope for `container` in namespace `ns`, as a shim does.
  Status ForwardExit(const std::string& ns, const std::string& container, uint32_t status) {
    containerd::events::TaskExit exit;
    exit.set_container_id(container);
    exit.set_id(container);
    exit.set_pid(4242);
    exit.set_exit_status(status);
    exit.mutable_exited_at()->set_seconds(1700000000);
    tev::ForwardRequest req;
    auto* env = req.mutable_envelope();
    env->mutable_timestamp()->set_seconds(1700000001);
    env->set_namespace_(ns);
    env->set_topic("/tasks/exit");
    env->mutable_event()->set_type_url("containerd.events.TaskExit");
    exit.SerializeToString(env->mutable_event()->mutable_value());
    ttrpc::Metadata md;
    md.Add(ttrpc::kNamespaceKey, ns);
    auto r = Client().Call<google::protobuf::Empty>(kEvents, "Forward", req, md, 10s);
    if (!r) return r.error();
    return Ok();
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  std::thread io_thread_;
  std::shared_ptr<ttrpc::Client> client_;
  std::unique_ptr<Daemon> d_;
};

TEST_F(TtrpcEventsIT, ForwardedTaskExitReachesCtrEvents) {
  struct stat sock {};
  ASSERT_EQ(::lstat(TtrpcSocket().c_str(), &sock), 0) << d_->Log();
  EXPECT_TRUE(S_ISSOCK(sock.st_mode));
  EXPECT_EQ(sock.st_mode & 0777, 0600u);

  auto ctr = Watch::Start({"ctr", "-a", d_->Socket(), "events"});
  ASSERT_NE(ctr, nullptr);
  // ctr subscribes asynchronously: forward sync events until it prints one.
  bool synced = false;
  for (int i = 0; i < 120 && !synced; ++i) {
    std::string id = "sync-" + std::to_string(i);
    auto sync = ForwardExit("default", id, 0);
    ASSERT_TRUE(sync) << sync.error().ToString() << "\n" << d_->Log();
    synced = ctr->WaitFor("\"container_id\":\"" + id + "\"", 250ms);
  }
  ASSERT_TRUE(synced) << ctr->Out() << ctr->Err();

  auto st = ForwardExit("ns-exit", "web", 137);
  ASSERT_TRUE(st) << st.error().ToString();
  ASSERT_TRUE(
      ctr->WaitFor("ns-exit /tasks/exit {\"container_id\":\"web\",\"id\":\"web\","
                   "\"pid\":4242,\"exit_status\":137,\"exited_at\":"
                   "\"2023-11-14T22:13:20Z\"}"))
      << ctr->Out() << ctr->Err();
  // The envelope's own timestamp is kept (2023-11-14T22:13:21Z).
  EXPECT_NE(ctr->Out().find("2023-11-14 22:13:21 +0000 UTC ns-exit /tasks/exit"), std::string::npos)
      << ctr->Out();
}

TEST_F(TtrpcEventsIT, InvalidEnvelopesAreRefused) {
  tev::ForwardRequest empty;
  auto r = Client().Call<google::protobuf::Empty>(kEvents, "Forward", empty, {}, 10s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().Code(), Errc::kInvalidArgument);

  // No timestamp.
  tev::ForwardRequest req;
  req.mutable_envelope()->set_namespace_("default");
  req.mutable_envelope()->set_topic("/tasks/exit");
  req.mutable_envelope()->mutable_event()->set_type_url("containerd.events.TaskExit");
  r = Client().Call<google::protobuf::Empty>(kEvents, "Forward", req, {}, 10s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().Code(), Errc::kInvalidArgument);
  EXPECT_NE(r.error().What().find("timestamp must be set"), std::string::npos) << r.error().What();

  // Bad namespace.
  auto bad = ForwardExit("Not A Namespace!", "x", 0);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().Code(), Errc::kInvalidArgument);

  // Other methods of the service do not exist.
  auto other = Client().Call(kEvents, "Publish", "", {}, 10s);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().Code(), Errc::kNotImplemented);
  EXPECT_EQ(other.error().What(), "method Publish");
}

TEST_F(TtrpcEventsIT, SocketRemovedOnStopAndStaleOneReplaced) {
  ASSERT_TRUE(ForwardExit("default", "a", 0));
  std::promise<void> lost;
  Client().OnClose([&] { lost.set_value(); });
  ASSERT_EQ(d_->Stop(), 0) << d_->Log();
  // The daemon closed our connection and removed its socket.
  lost.get_future().get();
  struct stat st {};
  EXPECT_NE(::lstat(TtrpcSocket().c_str(), &st), 0);
  client_.reset();

  // A crash leaves the socket behind; the next start replaces it.
  ASSERT_TRUE(d_->Start()) << d_->Log();
  d_->Kill9();
  ASSERT_EQ(::lstat(TtrpcSocket().c_str(), &st), 0);
  ASSERT_TRUE(d_->Start()) << d_->Log();
  auto again = ForwardExit("default", "b", 0);
  ASSERT_TRUE(again) << again.error().ToString() << "\n" << d_->Log();
}

// A real Go ttrpc client talking to our server: Debian's containerd-shim-runc-v2 publishes its
// task events to berthd's endpoint (TTRPC_ADDRESS). /tasks/create and /tasks/start come only
// from the shim, so seeing them in `ctr events` proves the path.
class ShimEventsIT : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(kRuncShim, X_OK), 0)
        << kRuncShim << " is missing (Debian package containerd): run make deps";
    ASSERT_TRUE(f_.Setup(std::string("\"berth.test.realrunc.v2\" = \"") + kRuncShim + "\"\n"))
        << (f_.D() ? f_.D()->Log() : "");
  }
  void TearDown() override {
    f_.Cleanup();
    if (HasFailure() && f_.D()) std::cerr << "berthd log:\n" << f_.D()->Log() << "\n";
  }
  TaskFixture f_;
};

TEST_F(ShimEventsIT, RealRuncShimPublishesThroughOurEndpoint) {
  auto ctr = Watch::Start({"ctr", "-a", f_.D()->Socket(), "events"});
  ASSERT_NE(ctr, nullptr);
  // Subscribed once a namespace event of ours shows up.
  bool synced = false;
  for (int i = 0; i < 120 && !synced; ++i) {
    std::string name = "ttrpc-sync-" + std::to_string(i);
    ASSERT_EQ(f_.D()->Ctr({"ns", "create", name}).exit_code, 0);
    synced = ctr->WaitFor("\"name\":\"" + name + "\"", 250ms);
  }
  ASSERT_TRUE(synced) << ctr->Out() << ctr->Err();

  auto r = f_.Ctr({"run", "--rm", "--runtime", "berth.test.realrunc.v2", kImage, "ev1", "true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ctr->WaitFor("/tasks/create {\"container_id\":\"ev1\"")) << ctr->Out();
  EXPECT_TRUE(ctr->WaitFor("/tasks/start {\"container_id\":\"ev1\"")) << ctr->Out();
  EXPECT_TRUE(ctr->WaitFor("/tasks/exit {\"container_id\":\"ev1\",\"id\":\"ev1\"")) << ctr->Out();
}

}  // namespace
}  // namespace berth::testing

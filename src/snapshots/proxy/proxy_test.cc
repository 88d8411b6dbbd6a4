#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>

#include "common/fs.h"
#include "snapshots/overlay/overlay.h"
#include "snapshots/proxy/client.h"
#include "snapshots/proxy/plugin.h"
#include "snapshots/proxy/server.h"
#include "snapshots/testsuite/testsuite.h"

namespace berth::snapshots::proxy {
namespace {

using testsuite::Fixture;
using testsuite::SnapshotterFactory;
using testsuite::SnapshotterSuite;

// An overlay snapshotter on `root`, served on a socket in `scratch`, used through the proxy.
Result<Fixture> MakeProxiedOverlay(const std::string& root, const std::string& scratch) {
  BERTH_ASSIGN_OR_RETURN(auto backend, overlay::Snapshotter::Open(root));
  std::string r = backend->Root();
  std::string sock = scratch + "/snapshotter.sock";
  BERTH_ASSIGN_OR_RETURN(
      auto server,
      Server::Start(sock, std::shared_ptr<snapshots::Snapshotter>(std::move(backend))));
  std::shared_ptr<Server> shared_server(std::move(server));
  Fixture f;
  f.snapshotter = Snapshotter::Connect("remote", sock);
  f.cleanup = [shared_server] { shared_server->Shutdown(); };
  f.make_crash_leftovers = [r]() -> Result<std::vector<std::string>> {
    // The overlay layout's crash leftovers: Cleanup through the proxy must remove them.
    std::vector<std::string> out{r + "/snapshots/new-crash1", r + "/snapshots/99999",
                                 r + "/snapshots/rm-77"};
    BERTH_TRY(fs::MkdirAll(out[0] + "/fs", 0755));
    BERTH_TRY(fs::MkdirAll(out[1] + "/fs/etc", 0755));
    BERTH_TRY(fs::MkdirAll(out[2] + "/fs", 0755));
    return out;
  };
  return f;
}

INSTANTIATE_TEST_SUITE_P(Proxy, SnapshotterSuite,
                         testing::Values(SnapshotterFactory{"proxy_overlay", MakeProxiedOverlay}),
                         testsuite::FactoryName);

// Records the context and snapshotter calls it sees; everything else is NotFound.
class Recorder final : public snapshots::Snapshotter {
 public:
  Result<snapshots::Info> Stat(const Context& ctx, const std::string& key) override {
    last_ctx = ctx;
    if (key == "x") {
      return snapshots::Info{.kind = Kind::kCommitted, .name = "x", .labels = {{"a", "b"}}};
    }
    return NotFound("snapshot " + key);
  }
  Result<snapshots::Info> Update(const Context&, const snapshots::Info&,
                                 const std::vector<std::string>&) override {
    return NotImplemented("update");
  }
  Result<snapshots::Usage> Usage(const Context&, const std::string&) override {
    return snapshots::Usage{.inodes = 3, .size = 4096};
  }
  Result<std::vector<mount::Mount>> Mounts(const Context&, const std::string&) override {
    return FailedPrecondition("committed");
  }
  Result<std::vector<mount::Mount>> Prepare(const Context&, const std::string&, const std::string&,
                                            const Labels&) override {
    return AlreadyExists("snapshot k");
  }
  Result<std::vector<mount::Mount>> View(const Context&, const std::string&, const std::string&,
                                         const Labels&) override {
    return std::vector<mount::Mount>{{.type = "bind", .source = "/a", .options = {"ro", "rbind"}}};
  }
  Status Commit(const Context&, const std::string&, const std::string&, const Labels&) override {
    return Ok();
  }
  Status Remove(const Context&, const std::string&) override { return Ok(); }
  Status Walk(const Context&, const std::function<Status(const snapshots::Info&)>& fn,
              const std::vector<std::string>& filters) override {
    last_filters = filters;
    for (int i = 0; i < 250; i++) BERTH_TRY(fn({.kind = Kind::kActive, .name = std::to_string(i)}));
    return Ok();
  }
  Status Cleanup(const Context&) override { return NotImplemented("cleanup"); }

  Context last_ctx;
  std::vector<std::string> last_filters;
};

class ProxyTest : public testing::Test {
 protected:
  void SetUp() override {
    auto tmp = fs::TempDir::Create("proxy-");
    ASSERT_TRUE(tmp);
    tmp_ = std::make_unique<fs::TempDir>(std::move(*tmp));
    sock_ = tmp_->Path() + "/s.sock";
    recorder_ = std::make_shared<Recorder>();
    auto server = Server::Start(sock_, recorder_);
    ASSERT_TRUE(server) << server.error().ToString();
    server_ = std::move(*server);
  }

  std::unique_ptr<fs::TempDir> tmp_;
  std::string sock_;
  std::shared_ptr<Recorder> recorder_;
  std::unique_ptr<Server> server_;
};

TEST_F(ProxyTest, PassesValuesHeadersAndErrorClasses) {
  auto client = Snapshotter::Connect("remote", sock_);
  auto info = client->Stat(Context{.ns = "ns1", .lease = "l1"}, "x");
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->kind, Kind::kCommitted);
  EXPECT_EQ(info->labels.at("a"), "b");
  EXPECT_EQ(recorder_->last_ctx.ns, "ns1");
  EXPECT_EQ(recorder_->last_ctx.lease, "l1");

  auto missing = client->Stat(Context{}, "nope");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().Is(Errc::kNotFound));
  EXPECT_EQ(missing.error().ToString(), "snapshot nope: not found");
  EXPECT_TRUE(client->Prepare({}, "k", "", {}).error().Is(Errc::kAlreadyExists));
  EXPECT_TRUE(client->Mounts({}, "k").error().Is(Errc::kFailedPrecondition));
  EXPECT_TRUE(client->Cleanup({}).error().Is(Errc::kNotImplemented));

  auto view = client->View({}, "v", "x", {});
  ASSERT_TRUE(view);
  ASSERT_EQ(view->size(), 1u);
  EXPECT_EQ((*view)[0].type, "bind");
  EXPECT_EQ((*view)[0].options, (std::vector<std::string>{"ro", "rbind"}));

  auto usage = client->Usage({}, "x");
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->inodes, 3);
  EXPECT_EQ(usage->size, 4096);
}

TEST_F(ProxyTest, WalkStreamsBatchesAndStopsOnCallbackError) {
  auto client = Snapshotter::Connect("remote", sock_);
  int n = 0;
  ASSERT_TRUE(client->Walk({},
                           [&](const snapshots::Info& info) -> Status {
                             EXPECT_EQ(info.name, std::to_string(n));
                             EXPECT_EQ(info.kind, Kind::kActive);
                             n++;
                             return Ok();
                           },
                           {"kind==active", "name~=x"}));
  EXPECT_EQ(n, 250);
  EXPECT_EQ(recorder_->last_filters, (std::vector<std::string>{"kind==active", "name~=x"}));

  n = 0;
  auto st = client->Walk({},
                         [&](const snapshots::Info&) -> Status {
                           if (++n == 5) return InvalidArgument("stop");
                           return Ok();
                         },
                         {});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().ToString(), "stop: invalid argument");
  EXPECT_EQ(n, 5);
}

TEST_F(ProxyTest, UnreachableServerIsUnavailable) {
  auto client = Snapshotter::Connect("remote", tmp_->Path() + "/none.sock");
  auto info = client->Stat({}, "x");
  ASSERT_FALSE(info);
  EXPECT_TRUE(info.error().Is(Errc::kUnavailable)) << info.error().ToString();
}

TEST_F(ProxyTest, ConfigProxyPluginRegistersSnapshotter) {
  plugin::Registry registry;
  ASSERT_TRUE(RegisterPlugins(registry, {{.name = "remote", .address = sock_}}));
  plugin::InitOptions options{.root = tmp_->Path() + "/root", .state = tmp_->Path() + "/state"};
  auto set = registry.InitAll(options);
  ASSERT_TRUE(set) << set.error().ToString();
  ASSERT_EQ((*set)->All().size(), 1u);
  const auto& p = *(*set)->All()[0];
  EXPECT_EQ(p.registration->Uri(), "io.containerd.snapshotter.v1.remote");
  EXPECT_FALSE(p.error);
  EXPECT_EQ(p.exports.at("address"), sock_);
  auto all = (*set)->GetAll<snapshots::Snapshotter>(plugin::kSnapshot);
  ASSERT_EQ(all.count("remote"), 1u);
  EXPECT_TRUE(all.at("remote")->Stat(Context{.ns = "default"}, "x"));
  EXPECT_EQ(recorder_->last_ctx.ns, "default");
}

TEST_F(ProxyTest, ProxyNameClashIsRejected) {
  plugin::Registry registry;
  ASSERT_TRUE(RegisterPlugins(registry, {{.name = "remote", .address = sock_}}));
  auto st = RegisterPlugins(
      registry, {{.name = "other", .address = sock_}, {.name = "remote", .address = sock_}});
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kAlreadyExists));
  EXPECT_EQ(registry.All().size(), 1u);
}

}  // namespace
}  // namespace berth::snapshots::proxy

#include "plugin/plugin.h"

#include <gtest/gtest.h>

namespace berth::plugin {
namespace {

Registration Make(std::string type, std::string id, std::vector<std::string> deps,
                  std::vector<std::string>* order, bool fail = false) {
  return {.type = std::move(type),
          .id = id,
          .requires_types = std::move(deps),
          .init = [order, id, fail](InitContext&) -> Result<Instance> {
            order->push_back(id);
            if (fail) return Unknown("broken " + id);
            return Instance::Of<std::string>(std::make_shared<std::string>(id));
          }};
}

TEST(PluginTest, ConfigWarningsNameUnknownKeysAndPlugins) {
  std::vector<std::string> order;
  Registry reg;
  Registration gc = Make("io.containerd.gc.v1", "scheduler", {}, &order);
  gc.config_defaults = "pause_threshold = 0.02\n[nested]\nx = 1\n";
  reg.Add(gc);
  Registration own = Make("io.containerd.grpc.v1", "cri", {}, &order);
  own.config_defaults = "a = 1\n";
  own.checks_own_config = true;
  reg.Add(own);
  std::map<std::string, toml::table> config;
  config["io.containerd.gc.v1.scheduler"] =
      toml::parse("pause_treshold = 0.5\npause_threshold = 0.1\n[nested]\nanything = 2\n");
  config["io.containerd.grpc.v1.cri"] = toml::parse("b = 2\n");
  config["io.containerd.snapshotter.v1.devmapper"] = toml::parse("pool_name = \"p\"\n");
  auto w = reg.ConfigWarnings(config);
  ASSERT_EQ(w.size(), 2u) << ::testing::PrintToString(w);
  EXPECT_EQ(w[0],
            "config: unknown key plugins.\"io.containerd.gc.v1.scheduler\".pause_treshold (not a "
            "setting of this plugin; `berthd config default` lists them)");
  EXPECT_EQ(w[1],
            "config: plugins.\"io.containerd.snapshotter.v1.devmapper\" is not a berth plugin; "
            "its table is ignored");
}

TEST(PluginTest, InitialisesInDependencyOrder) {
  std::vector<std::string> order;
  Registry r;
  r.Add(Make(kGrpc, "images", {kService}, &order));
  r.Add(Make(kService, "images-service", {kMetadata}, &order));
  r.Add(Make(kMetadata, "bolt", {kContent}, &order));
  r.Add(Make(kContent, "content", {}, &order));
  r.Add(Make(kGrpc, "introspection", {"*"}, &order));
  auto set = r.InitAll({});
  ASSERT_TRUE(set);
  EXPECT_EQ(order, (std::vector<std::string>{"content", "bolt", "images-service", "images",
                                             "introspection"}));
  EXPECT_EQ(*(*set)->Get<std::string>(kMetadata), "bolt");
  EXPECT_EQ((*set)->Get<int>(kMetadata), nullptr) << "typed lookup";
}

TEST(PluginTest, FailureIsRecordedNotFatal) {
  std::vector<std::string> order;
  Registry r;
  r.Add(Make(kSnapshot, "btrfs", {}, &order, /*fail=*/true));
  r.Add(Make(kSnapshot, "native", {}, &order));
  auto set = r.InitAll({});
  ASSERT_TRUE(set);
  ASSERT_EQ((*set)->All().size(), 2u);
  ASSERT_TRUE((*set)->All()[0]->error);
  EXPECT_EQ((*set)->All()[0]->error->ToString(), "broken btrfs");
  EXPECT_EQ((*set)->GetAll<std::string>(kSnapshot).size(), 1u);
}

TEST(PluginTest, RequiredFailureStopsStartup) {
  std::vector<std::string> order;
  Registry r;
  r.Add(Make(kSnapshot, "btrfs", {}, &order, /*fail=*/true));
  auto set = r.InitAll({.required = {"io.containerd.snapshotter.v1.btrfs"}});
  ASSERT_FALSE(set);
  EXPECT_NE(set.error().ToString().find("io.containerd.snapshotter.v1.btrfs"), std::string::npos);
}

TEST(PluginTest, DisabledPluginsAreLeftOut) {
  std::vector<std::string> order;
  Registry r;
  r.Add(Make(kSnapshot, "btrfs", {}, &order));
  r.Add(Make(kSnapshot, "native", {}, &order));
  auto set = r.InitAll({.disabled = {"io.containerd.snapshotter.v1.btrfs"}});
  ASSERT_TRUE(set);
  EXPECT_EQ(order, std::vector<std::string>{"native"});
}

TEST(PluginTest, SkipIsRecognised) {
  EXPECT_TRUE(IsSkip(Skip("no btrfs filesystem")));
  EXPECT_EQ(Skip("no btrfs filesystem").ToString(), "no btrfs filesystem: skip plugin");
  EXPECT_FALSE(IsSkip(Unknown("broken")));
}

TEST(PluginTest, ContextPathsAndConfig) {
  Registry r;
  std::string root;
  int64_t value = 0;
  r.Add({.type = kGc, .id = "scheduler", .init = [&](InitContext& ic) -> Result<Instance> {
           root = ic.Root();
           value = ic.Config()["mutation_threshold"].value_or(int64_t{0});
           return Instance::Of<int>(std::make_shared<int>(1));
         }});
  InitOptions opts{.root = "/r", .state = "/s"};
  opts.plugin_config["io.containerd.gc.v1.scheduler"] = toml::table{{"mutation_threshold", 7}};
  ASSERT_TRUE(r.InitAll(opts));
  EXPECT_EQ(root, "/r/io.containerd.gc.v1.scheduler");
  EXPECT_EQ(value, 7);
}

}  // namespace
}  // namespace berth::plugin

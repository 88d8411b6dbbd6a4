#include "server/config.h"

#include <gtest/gtest.h>

#include "plugin/plugin.h"
#include "server/builtins.h"
#include "server/server.h"

namespace berth::server {
namespace {

TEST(ConfigTest, Defaults) {
  Config c;
  EXPECT_EQ(c.root, "/var/lib/berth");
  EXPECT_EQ(c.state, "/run/berth");
  EXPECT_EQ(c.grpc.address, "/run/berth/berth.sock");
  EXPECT_EQ(c.TtrpcAddress(), "/run/berth/berth.sock.ttrpc");
}

TEST(ConfigTest, ParsesContainerdKeys) {
  auto c = Config::Parse(R"(
version = 2
root = "/tmp/r"
state = "/tmp/s"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs"]
[grpc]
  address = "/tmp/s/sock"
  uid = 0
  gid = 5
[debug]
  level = "debug"
[plugins."io.containerd.gc.v1.scheduler"]
  mutation_threshold = 50
[proxy_plugins.fast]
  type = "snapshot"
  address = "/run/fast.sock"
)");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->root, "/tmp/r");
  EXPECT_EQ(c->grpc.address, "/tmp/s/sock");
  EXPECT_EQ(c->grpc.gid, 5);
  EXPECT_EQ(c->debug.level, "debug");
  EXPECT_EQ(c->disabled_plugins, std::vector<std::string>{"io.containerd.snapshotter.v1.btrfs"});
  EXPECT_EQ(c->PluginTable("io.containerd.gc.v1.scheduler")["mutation_threshold"].value<int64_t>(),
            50);
  EXPECT_EQ(c->proxy_plugins.at("fast").address, "/run/fast.sock");
}

TEST(ConfigTest, ErrorsSayWhere) {
  auto bad = Config::Parse("root = \n", "cfg.toml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().ToString().find("cfg.toml at line 1"), std::string::npos)
      << bad.error().ToString();
  auto unknown = Config::Parse("rooot = \"/x\"\n");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().ToString().find("unknown key \"rooot\""), std::string::npos);
  auto wrong_type = Config::Parse("root = 5\n");
  ASSERT_FALSE(wrong_type);
  EXPECT_NE(wrong_type.error().ToString().find("\"root\""), std::string::npos);
  auto version = Config::Parse("version = 1\n");
  ASSERT_FALSE(version);
  auto proxy = Config::Parse("[proxy_plugins.x]\ntype = \"diff\"\naddress = \"/a\"\n");
  ASSERT_FALSE(proxy);
}

// Integer keys take integers only, never floats (fuzz/corpus/config/crash-float-for-an-integer:
// toml++'s float-to-integer conversion is undefined for a float out of range, 1.6e68 there).
TEST(ConfigTest, FloatForAnIntegerKeyIsRefused) {
  for (const char* v : {"3.0", "1.67761e68", "-1e300", "nan", "inf"}) {
    auto c = Config::Parse(std::string("[grpc]\n  max_recv_message_size = ") + v + "\n");
    ASSERT_FALSE(c) << v;
    EXPECT_NE(c.error().ToString().find("max_recv_message_size"), std::string::npos)
        << c.error().ToString();
  }
  EXPECT_TRUE(Config::Parse("[grpc]\n  max_recv_message_size = 3\n"));
}

TEST(ConfigTest, DefaultConfigRoundTrips) {
  plugin::Registry registry;
  RegisterBuiltins(registry);
  std::string text = DefaultConfigToml(registry);
  EXPECT_NE(text.find("[plugins.'io.containerd.metadata.v1.bolt']"), std::string::npos) << text;
  auto c = Config::Parse(text);
  ASSERT_TRUE(c) << c.error().ToString() << "\n" << text;
  EXPECT_EQ(c->root, "/var/lib/berth");
  EXPECT_EQ(c->ToToml(), text);
  EXPECT_TRUE(c->grpc.h2_guard);
  auto off = Config::Parse("version = 2\n[grpc]\n  h2_guard = false\n");
  ASSERT_TRUE(off) << off.error().ToString();
  EXPECT_FALSE(off->grpc.h2_guard);
  EXPECT_FALSE(Config::Parse("version = 2\n[grpc]\n  h2_guard = 1\n")) << "a bool, not a number";
}

}  // namespace
}  // namespace berth::server

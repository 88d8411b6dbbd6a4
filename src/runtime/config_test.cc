#include "runtime/config.h"

#include <gtest/gtest.h>

namespace berth::runtime {
namespace {

TEST(Config, DefaultsMapRuncAndBerthToOurShim) {
  auto c = Config::FromToml(toml::table{});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->shims.at("io.containerd.runc.v2"), "containerd-shim-berth-v2");
  EXPECT_EQ(c->shims.at("io.containerd.berth.v2"), "containerd-shim-berth-v2");
  EXPECT_EQ(c->platforms, std::vector<std::string>{"linux/amd64"});
}

TEST(Config, ShimsTableMergesOverDefaults) {
  auto t = toml::parse(R"(
    sched_core = true
    [shims]
    "io.containerd.runc.v2" = "/usr/bin/containerd-shim-runc-v2"
    "other" = "containerd-shim-other-v1"
  )");
  auto c = Config::FromToml(t);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_TRUE(c->sched_core);
  EXPECT_EQ(c->shims.at("io.containerd.runc.v2"), "/usr/bin/containerd-shim-runc-v2");
  EXPECT_EQ(c->shims.at("io.containerd.berth.v2"), "containerd-shim-berth-v2");
  EXPECT_EQ(c->shims.at("other"), "containerd-shim-other-v1");
  EXPECT_TRUE(Config::FromToml(toml::parse(Config::DefaultToml())));
}

TEST(Config, RejectsBadTypes) {
  EXPECT_TRUE(Config::FromToml(toml::parse("shims = 3")).error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(Config::FromToml(toml::parse("[shims]\nx = 1")).error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(
      Config::FromToml(toml::parse("[shims]\nx = \"\"")).error().Is(Errc::kInvalidArgument));
}

}  // namespace
}  // namespace berth::runtime

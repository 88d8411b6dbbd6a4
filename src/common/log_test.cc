#include "common/log.h"

#include <gtest/gtest.h>

namespace berth::log {
namespace {

TEST(LogTest, FormatsLogfmt) {
  EXPECT_EQ(FormatLine("2026-11-23T10:00:00Z", Level::kInfo, "shim started",
                       {{"id", "web"}, {"namespace", "default"}}),
            "time=\"2026-11-23T10:00:00Z\" level=info msg=\"shim started\" id=web "
            "namespace=default\n");
}

TEST(LogTest, QuotesAndEscapes) {
  EXPECT_EQ(FormatLine("t", Level::kWarn, "a\"b", {{"error", "x: y"}, {"empty", ""}}),
            "time=\"t\" level=warning msg=\"a\\\"b\" error=\"x: y\" empty=\"\"\n");
}

TEST(LogTest, ParsesLevels) {
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("warn"), Level::kWarn);
  EXPECT_EQ(*ParseLevel("warning"), Level::kWarn);
  auto bad = ParseLevel("loud");
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument));
}

TEST(LogTest, LevelGates) {
  SetLevel(Level::kWarn);
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kError));
  SetLevel(Level::kInfo);
}

}  // namespace
}  // namespace berth::log

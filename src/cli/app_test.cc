#include "cli/app.h"

#include <gtest/gtest.h>

namespace berth::cli {
namespace {

TEST(AppTest, ParsesGoDurations) {
  EXPECT_EQ(ParseDuration("10s")->count(), 10'000'000'000);
  EXPECT_EQ(ParseDuration("1m30s")->count(), 90'000'000'000);
  EXPECT_EQ(ParseDuration("500ms")->count(), 500'000'000);
  EXPECT_EQ(ParseDuration("0")->count(), 0);
  EXPECT_EQ(ParseDuration("0s")->count(), 0);
  EXPECT_FALSE(ParseDuration("ten"));
  EXPECT_FALSE(ParseDuration("10"));
  EXPECT_FALSE(ParseDuration(""));
}

TEST(AppTest, LabelArgs) {
  auto l = LabelArgs({"ns1", "a=b", "c=", "d", "e=f=g"}, 1);
  EXPECT_EQ(
      l, (std::map<std::string, std::string>{{"a", "b"}, {"c", ""}, {"d", "true"}, {"e", "f=g"}}));
}

TEST(AppTest, FromGrpcKeepsText) {
  Error e = FromGrpc(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "identifier \"a b\" must match x: invalid argument"));
  EXPECT_TRUE(e.Is(Errc::kInvalidArgument));
  EXPECT_EQ(e.ToString(), "identifier \"a b\" must match x: invalid argument");
}

}  // namespace
}  // namespace berth::cli

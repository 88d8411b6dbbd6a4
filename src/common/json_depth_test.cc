#include "common/json_depth.h"

#include <gtest/gtest.h>

#include <string>

namespace berth {
namespace {

TEST(JsonDepthTest, CountsObjectsAndArraysNotStrings) {
  EXPECT_EQ(JsonNestingDepth(""), 0u);
  EXPECT_EQ(JsonNestingDepth("42"), 0u);
  EXPECT_EQ(JsonNestingDepth(R"({"a":[1,{"b":[]}]})"), 4u);
  EXPECT_EQ(JsonNestingDepth(R"({"a":"[[[[{{{{"})"), 1u);
  EXPECT_EQ(JsonNestingDepth(R"({"a":"\"[[[["})"), 1u)
      << "an escaped quote does not end the string";
  EXPECT_EQ(JsonNestingDepth(R"({"a":"\\"}[)"), 1u) << "an escaped backslash does";
  EXPECT_EQ(JsonNestingDepth("]]]{"), 1u) << "stray closers never go below zero";
}

TEST(JsonDepthTest, RefusesWhatGoRefuses) {
  const std::string ok = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_TRUE(CheckJsonDepth(ok, "config"));
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  auto st = CheckJsonDepth(deep, "image config sha256:abc");
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kInvalidArgument));
  EXPECT_EQ(st.error().What(),
            "image config sha256:abc: exceeded max depth (10000 levels of nesting)");
}

}  // namespace
}  // namespace berth

#include "common/identifiers.h"

#include <gtest/gtest.h>

namespace berth::identifiers {
namespace {

TEST(IdentifiersTest, AcceptsValid) {
  for (const char* id : {"a", "default", "k8s.io", "moby", "a-b_c.d", "A9", "x1.y2-z3"}) {
    EXPECT_TRUE(Validate(id)) << id;
  }
  EXPECT_TRUE(Validate(std::string(76, 'a')));
}

TEST(IdentifiersTest, RejectsInvalidWithRule) {
  for (const char* id : {"-a", "a-", "a..b", "a/b", "a b", "ns!", ".", "a_-b", "é"}) {
    auto s = Validate(id);
    ASSERT_FALSE(s) << id;
    EXPECT_TRUE(s.error().Is(Errc::kInvalidArgument));
    EXPECT_NE(s.error().ToString().find("must match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"),
              std::string::npos)
        << s.error().ToString();
  }
}

TEST(IdentifiersTest, EmptyAndTooLong) {
  EXPECT_EQ(Validate("").error().ToString(), "identifier must not be empty: invalid argument");
  auto s = Validate(std::string(77, 'a'));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().ToString().find("greater than maximum length (76 characters)"),
            std::string::npos);
  // A huge one is not echoed whole (it would not fit in an answer's metadata).
  auto huge = Validate(std::string(100000, 'a'));
  ASSERT_FALSE(huge);
  EXPECT_LT(huge.error().ToString().size(), 300u) << huge.error().ToString().substr(0, 400);
  EXPECT_NE(huge.error().ToString().find("(100000 characters) greater than maximum length"),
            std::string::npos);
}

}  // namespace
}  // namespace berth::identifiers

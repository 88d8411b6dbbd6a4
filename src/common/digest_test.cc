#include "common/digest.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

constexpr const char* kEmpty =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(DigestTest, HashesLikeSha256sum) {
  EXPECT_EQ(Digest::FromBytes("").String(), kEmpty);
  EXPECT_EQ(Digest::FromBytes("hello\n").String(),
            "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  Sha256 h;
  h.Update("hel");
  h.Update("lo\n");
  EXPECT_EQ(h.Current(), Digest::FromBytes("hello\n"));
  h.Update("more");
  EXPECT_EQ(h.Current(), Digest::FromBytes("hello\nmore"));
}

TEST(DigestTest, ParsesAndSplits) {
  auto d = Digest::Parse(kEmpty);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->Algorithm(), "sha256");
  EXPECT_EQ(d->Encoded().size(), 64u);
}

TEST(DigestTest, RejectsMalformed) {
  for (const char* s :
       {"", "sha256", "sha256:", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
        ":e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}) {
    auto d = Digest::Parse(s);
    ASSERT_FALSE(d) << s;
    EXPECT_TRUE(d.error().Is(Errc::kInvalidArgument)) << s;
  }
}

}  // namespace
}  // namespace berth

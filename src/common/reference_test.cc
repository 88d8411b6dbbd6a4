#include "common/reference.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace berth::reference {
namespace {

const std::string kDgst = "sha256:" + std::string(64, 'a');

std::string Norm(std::string_view in) {
  auto r = ParseNormalized(in);
  return r ? r->String() : "ERR: " + r.error().ToString();
}

TEST(ReferenceTest, ParseStrict) {
  auto r = Parse("127.0.0.1:5000/test/busybox:latest");
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->Domain(), "127.0.0.1:5000");
  EXPECT_EQ(r->Path(), "test/busybox");
  EXPECT_EQ(r->Tag(), "latest");
  EXPECT_EQ(r->Digest(), "");
  EXPECT_EQ(r->Locator(), "127.0.0.1:5000/test/busybox");
  EXPECT_EQ(r->Object(), "latest");
  EXPECT_EQ(r->String(), "127.0.0.1:5000/test/busybox:latest");

  auto d = Parse("docker.io/library/busybox:1.36@" + kDgst);
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d->Tag(), "1.36");
  EXPECT_EQ(d->Digest(), kDgst);
  EXPECT_EQ(d->Object(), "1.36@" + kDgst);
  EXPECT_EQ(d->String(), "docker.io/library/busybox:1.36@" + kDgst);

  auto n = Parse("example.com/a/b");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->Tag(), "");
  EXPECT_EQ(n->Object(), "");
  EXPECT_EQ(n->String(), "example.com/a/b");
}

TEST(ReferenceTest, ParseStrictErrors) {
  for (const std::string& bad : std::vector<std::string>{
           "", "busybox", "busybox:latest", "https://example.com/a", "example.com/A",
           "example.com/", "example.com/a:", "example.com/a:-x", "example.com/a@sha256:abc",
           "-bad.com/a", "example.com:/a", "example.com/a//b", "example.com/a_-b",
           "example.com/a@" + kDgst + "x!", "example.com/a:" + std::string(129, 't')}) {
    auto r = Parse(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().Code(), Errc::kInvalidArgument);
      EXPECT_NE(r.error().What().find("\"" + bad + "\""), std::string::npos) << r.error().What();
    }
  }
  EXPECT_FALSE(Parse("example.com/" + std::string(250, 'a')));
}

TEST(ReferenceTest, PathSeparators) {
  EXPECT_TRUE(Parse("h.io/a.b_c__d---e"));
  EXPECT_FALSE(Parse("h.io/a___b"));
  EXPECT_FALSE(Parse("h.io/a..b"));
  EXPECT_FALSE(Parse("h.io/.a"));
  EXPECT_FALSE(Parse("h.io/a-"));
}

TEST(ReferenceTest, Normalized) {
  EXPECT_EQ(Norm("busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(Norm("busybox:1.36"), "docker.io/library/busybox:1.36");
  EXPECT_EQ(Norm("user/app"), "docker.io/user/app:latest");
  EXPECT_EQ(Norm("docker.io/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(Norm("index.docker.io/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(Norm("docker.io/library/busybox:x"), "docker.io/library/busybox:x");
  EXPECT_EQ(Norm("localhost/x"), "localhost/x:latest");
  EXPECT_EQ(Norm("localhost:5000/x"), "localhost:5000/x:latest");
  EXPECT_EQ(Norm("127.0.0.1:5000/test/busybox"), "127.0.0.1:5000/test/busybox:latest");
  EXPECT_EQ(Norm("example.com/a/b/c:t"), "example.com/a/b/c:t");
  EXPECT_EQ(Norm("busybox@" + kDgst), "docker.io/library/busybox@" + kDgst);
  // tag and digest: the digest wins
  EXPECT_EQ(Norm("busybox:1@" + kDgst), "docker.io/library/busybox@" + kDgst);
  // a first component without '.' or ':' is a path component
  EXPECT_EQ(Norm("foo/bar/baz"), "docker.io/foo/bar/baz:latest");
}

TEST(ReferenceTest, NormalizedErrors) {
  for (const std::string& bad :
       std::vector<std::string>{"", "Busybox", "user/App", "localhost:5000/X", std::string(64, 'a'),
                                "http://x.io/a", "busybox:", "a@sha256:short", "Example.com/a/B"}) {
    auto r = ParseNormalized(bad);
    EXPECT_FALSE(r) << bad << " -> " << (r ? r->String() : "");
    if (!r) {
      EXPECT_EQ(r.error().Code(), Errc::kInvalidArgument);
    }
  }
  auto up = ParseNormalized("User/app");
  ASSERT_FALSE(up);
  EXPECT_NE(up.error().What().find("lowercase"), std::string::npos);
  // Uppercase in the domain is fine.
  EXPECT_EQ(Norm("Example.com/a"), "Example.com/a:latest");
}

TEST(ReferenceTest, Familiar) {
  EXPECT_EQ(ParseNormalized("busybox")->FamiliarString(), "busybox:latest");
  EXPECT_EQ(ParseNormalized("user/app:1")->FamiliarString(), "user/app:1");
  EXPECT_EQ(ParseNormalized("docker.io/library/a/b")->FamiliarString(), "library/a/b:latest");
  EXPECT_EQ(ParseNormalized("quay.io/x/y")->FamiliarString(), "quay.io/x/y:latest");
}

// Bad input never crashes, and whatever parses prints back to something that parses the same.
TEST(ReferenceTest, RandomInputRoundTrips) {
  std::mt19937 rng(42);
  const std::string alphabet = "abcAB09._-:/@sha256";
  for (int i = 0; i < 20000; ++i) {
    std::string in;
    size_t n = rng() % 24;
    for (size_t k = 0; k < n; ++k) in += alphabet[rng() % alphabet.size()];
    if (rng() % 4 == 0) in += "@" + kDgst;
    for (auto parse : {&Parse, &ParseNormalized}) {
      auto r = parse(in);
      if (!r) continue;
      auto again = Parse(r->String());
      ASSERT_TRUE(again) << in << " -> " << r->String();
      EXPECT_EQ(again->String(), r->String());
    }
  }
}

}  // namespace
}  // namespace berth::reference

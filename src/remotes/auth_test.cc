#include "remotes/auth.h"

#include <gtest/gtest.h>

#include <random>

#include "remotes/http.h"
#include "remotes/session.h"

namespace berth::remotes {
namespace {

TEST(AuthTest, BearerChallenge) {
  auto cs = ParseWwwAuthenticate(
      R"(Bearer realm="http://127.0.0.1:5000/token",service="regproxy",scope="repository:test/busybox:pull")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].params["realm"], "http://127.0.0.1:5000/token");
  EXPECT_EQ(cs[0].params["service"], "regproxy");
  EXPECT_EQ(cs[0].params["scope"], "repository:test/busybox:pull");
}

TEST(AuthTest, BasicAndMultiple) {
  auto cs = ParseWwwAuthenticate(R"(Basic realm="berth-test")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "basic");
  EXPECT_EQ(cs[0].params["realm"], "berth-test");

  cs = ParseWwwAuthenticate(
      R"(Basic realm="a, b", Bearer Realm=https://x/t , service="s \"q\"", error=insufficient_scope)");
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0].params["realm"], "a, b");
  EXPECT_EQ(cs[1].scheme, "bearer");
  EXPECT_EQ(cs[1].params["realm"], "https://x/t");
  EXPECT_EQ(cs[1].params["service"], "s \"q\"");
  EXPECT_EQ(cs[1].params["error"], "insufficient_scope");
}

TEST(AuthTest, Base64RoundTrip) {
  for (std::string in : {"", "a", "ab", "abc", "user:p@ss\x01"}) {
    auto out = Base64Decode(Base64Encode(in));
    ASSERT_TRUE(out) << in;
    EXPECT_EQ(*out, in);
  }
  EXPECT_EQ(*Base64Decode("dXNlcjpwdw"), "user:pw");  // unpadded
  EXPECT_TRUE(Base64Decode("a*b").error().Is(Errc::kInvalidArgument));
}

TEST(AuthTest, MalformedNeverCrashes) {
  for (const char* h : {"", ",,,", "=", "realm=x", "Bearer realm=\"unterminated", "Bearer ,=,",
                        "\"", "Bearer realm", "Basic realm=\"\\"}) {
    auto cs = ParseWwwAuthenticate(h);
    for (const auto& c : cs) EXPECT_FALSE(c.scheme.empty()) << h;
  }
  EXPECT_TRUE(ParseWwwAuthenticate("realm=x").empty());
  auto cs = ParseWwwAuthenticate("Bearer realm=\"unterminated");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].params["realm"], "unterminated");
}

TEST(AuthTest, RandomHeadersNeverCrash) {
  std::mt19937 rng(7);
  const std::string alphabet = "Bearer basic realm=\"\\,x ";
  for (int i = 0; i < 20000; ++i) {
    std::string h;
    size_t n = rng() % 40;
    for (size_t k = 0; k < n; ++k) h += alphabet[rng() % alphabet.size()];
    for (const auto& c : ParseWwwAuthenticate(h)) EXPECT_FALSE(c.scheme.empty()) << h;
  }
}

TEST(AuthTest, Basic) {
  EXPECT_EQ(BasicAuthorization("aladdin", "opensesame"), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
}

TEST(AuthTest, TokenResponse) {
  EXPECT_EQ(*ParseTokenResponse(R"({"token":"abc"})"), "abc");
  EXPECT_EQ(*ParseTokenResponse(R"({"access_token":"xyz","expires_in":60})"), "xyz");
  EXPECT_EQ(*ParseTokenResponse(R"({"token":"","access_token":"xyz"})"), "xyz");
  EXPECT_FALSE(ParseTokenResponse(R"({"nothing":1})"));
  EXPECT_FALSE(ParseTokenResponse("not json"));
  EXPECT_FALSE(ParseTokenResponse("[1]"));
}

TEST(AuthTest, TokenUrl) {
  EXPECT_EQ(
      TokenUrl("http://h/token", "reg svc", {"repository:a/b:pull,push", "repository:c:pull"}),
      "http://h/token?service=reg%20svc&scope=repository%3Aa%2Fb%3Apull%2Cpush"
      "&scope=repository%3Ac%3Apull");
  EXPECT_EQ(TokenUrl("http://h/token?x=1", "", {"s"}), "http://h/token?x=1&scope=s");
}

TEST(HttpTest, Urls) {
  EXPECT_EQ(UrlOrigin("http://127.0.0.1:5000/v2/x?y"), "http://127.0.0.1:5000");
  EXPECT_EQ(UrlOrigin("HTTPS://Host"), "https://host");
  EXPECT_EQ(UrlOrigin("/v2/x"), "");
  EXPECT_EQ(ResolveUrl("http://h:1/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u?s=1"),
            "http://h:1/v2/a/blobs/uploads/u?s=1");
  EXPECT_EQ(ResolveUrl("http://h:1/v2/a/", "https://other/x"), "https://other/x");
  EXPECT_EQ(ResolveUrl("http://h:1/v2/a/b?q", "c"), "http://h:1/v2/a/c");
}

TEST(HttpTest, ErrorText) {
  HttpResponse r;
  r.status = 404;
  r.url = "http://h/v2/x/manifests/latest";
  r.body = R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})";
  Error e = HttpError("GET", r);
  EXPECT_EQ(e.Code(), Errc::kNotFound);
  EXPECT_EQ(
      e.What(),
      "GET http://h/v2/x/manifests/latest: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown");
  r.status = 401;
  r.body = "garbage";
  EXPECT_EQ(HttpError("HEAD", r).Code(), Errc::kPermissionDenied);
  r.status = 503;
  EXPECT_EQ(HttpError("HEAD", r).Code(), Errc::kUnavailable);
}

TEST(HttpTest, ConnectionRefusedIsUnavailable) {
  // Port 1 on loopback: nothing listens there in a test environment.
  HttpRequest req{.method = "GET", .url = "http://127.0.0.1:1/v2/"};
  auto r = Perform(req, nullptr, 1024);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().Code(), Errc::kUnavailable);
  EXPECT_NE(r.error().What().find("http://127.0.0.1:1/v2/"), std::string::npos);
}

TEST(HttpTest, TlsConfigErrors) {
  auto t = MakeTlsConfig({"/nonexistent/ca.crt"}, {}, false);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().ToString().find("/nonexistent/ca.crt"), std::string::npos);
  auto none = MakeTlsConfig({}, {}, true);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->skip_verify);
  EXPECT_FALSE(none->ca_pem);
}

}  // namespace
}  // namespace berth::remotes

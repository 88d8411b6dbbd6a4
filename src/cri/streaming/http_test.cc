#include "cri/streaming/http.h"

#include <gtest/gtest.h>

#include <string>

namespace berth::cri::streaming::http {
namespace {

constexpr std::string_view kCrictlExec =
    "POST /exec/AbCd-_12?x=1 HTTP/1.1\r\n"
    "Host: 127.0.0.1:34567\r\n"
    "User-Agent: Go-http-client/1.1\r\n"
    "Content-Length: 0\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: SPDY/3.1\r\n"
    "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
    "X-Stream-Protocol-Version: v3.channel.k8s.io\r\n"
    "X-Stream-Protocol-Version: v2.channel.k8s.io, channel.k8s.io\r\n"
    "\r\n";

Result<Request> ParseAll(std::string_view text, ParserLimits limits = {}) {
  RequestParser parser(limits);
  BERTH_ASSIGN_OR_RETURN(bool done, parser.Feed(text));
  if (!done) return InvalidArgument("incomplete");
  return parser.TakeRequest();
}

TEST(HttpRequestParser, ParsesAnUpgradeRequest) {
  RequestParser parser;
  auto done = parser.Feed(kCrictlExec);
  ASSERT_TRUE(done) << done.error().ToString();
  ASSERT_TRUE(*done);
  const Request& req = parser.Request();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/exec/AbCd-_12?x=1");
  EXPECT_EQ(req.path, "/exec/AbCd-_12");
  EXPECT_EQ(req.raw_query, "x=1");
  EXPECT_EQ(req.minor_version, 1);
  EXPECT_EQ(req.headers.Size(), 8u);
  EXPECT_EQ(req.headers.Get("upgrade"), "SPDY/3.1");
  EXPECT_EQ(req.headers.Get("CONNECTION"), "Upgrade");
  EXPECT_EQ(req.headers.Get("missing"), "");
  EXPECT_FALSE(req.headers.Has("missing"));
  EXPECT_EQ(req.headers.Values("x-stream-protocol-version").size(), 3u);
  EXPECT_EQ(req.headers.ListValues("X-Stream-Protocol-Version"),
            (std::vector<std::string>{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                                      "channel.k8s.io"}));
  EXPECT_TRUE(req.headers.HasToken("connection", "upgrade"));
  EXPECT_TRUE(parser.Leftover().empty());
}

TEST(HttpRequestParser, ByteByByteGivesTheSameRequestAndLeftover) {
  std::string input = std::string(kCrictlExec) + "\x80\x03\x00\x01rest";
  RequestParser parser;
  size_t i = 0;
  for (; i < input.size(); ++i) {
    auto done = parser.Feed(input.substr(i, 1));
    ASSERT_TRUE(done) << i;
    if (*done) break;
  }
  EXPECT_EQ(i, kCrictlExec.size() - 1);
  EXPECT_EQ(parser.Request().headers.Size(), 8u);
  EXPECT_TRUE(parser.Leftover().empty());  // the rest was never fed
  // Fed in one go, the bytes after the blank line come back.
  RequestParser whole;
  ASSERT_TRUE(*whole.Feed(input));
  EXPECT_EQ(whole.Leftover(), "\x80\x03\x00\x01rest");
  // Fed in two chunks split inside the blank line.
  RequestParser split;
  size_t cut = kCrictlExec.size() - 1;
  EXPECT_FALSE(*split.Feed(std::string_view(input).substr(0, cut)));
  EXPECT_TRUE(*split.Feed(std::string_view(input).substr(cut)));
  EXPECT_EQ(split.TakeLeftover(), "\x80\x03\x00\x01rest");
  // After completion the parser takes nothing more.
  EXPECT_TRUE(split.Feed("x").error().Is(Errc::kFailedPrecondition));
}

TEST(HttpRequestParser, BareLineFeedsAndLeadingEmptyLines) {
  auto req = ParseAll("\r\n\nGET /attach/t HTTP/1.0\nHost: x\nA:b\n\n");
  ASSERT_TRUE(req) << req.error().ToString();
  EXPECT_EQ(req->method, "GET");
  EXPECT_EQ(req->minor_version, 0);
  EXPECT_EQ(req->headers.Get("a"), "b");
}

TEST(HttpRequestParser, ValuesAreTrimmedAndMayBeEmpty) {
  auto req = ParseAll("GET / HTTP/1.1\r\nX:  \t v w \t\r\nEmpty:\r\n\r\n");
  ASSERT_TRUE(req);
  EXPECT_EQ(req->headers.Get("x"), "v w");
  EXPECT_TRUE(req->headers.Has("empty"));
  EXPECT_EQ(req->headers.Get("empty"), "");
}

TEST(HttpRequestParser, AbsoluteFormTargetAndQuery) {
  auto req = ParseAll(
      "GET http://10.0.0.1:10010/portforward/tok?port=80&port=443%2C8080&a+b=c%20d&&bad=%zz&flag"
      " HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(req) << req.error().ToString();
  EXPECT_EQ(req->path, "/portforward/tok");
  EXPECT_EQ(req->QueryValues("port"), (std::vector<std::string>{"80", "443,8080"}));
  EXPECT_EQ(req->QueryValues("a b"), (std::vector<std::string>{"c d"}));
  EXPECT_TRUE(req->QueryValues("bad").empty());  // a bad escape drops the pair
  EXPECT_EQ(req->QueryValues("flag"), (std::vector<std::string>{""}));
  auto bare = ParseAll("GET http://host HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->path, "/");
}

TEST(HttpRequestParser, PercentDecodesThePath) {
  auto req = ParseAll("GET /exec/a%2Db%2fc HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(req);
  EXPECT_EQ(req->path, "/exec/a-b/c");
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(*PercentDecode("a+b", true), "a b");
  EXPECT_FALSE(PercentDecode("%4", false));
  EXPECT_FALSE(PercentDecode("%g0", false));
}

TEST(HttpRequestParser, RefusesMalformedHeads) {
  for (std::string_view bad : {
           "GET\r\n\r\n",
           "GET /\r\n\r\n",
           "GET  / HTTP/1.1\r\n\r\n",
           "GET / HTTP/1.1 x\r\n\r\n",
           "GET / HTTP/2.0\r\n\r\n",
           "GET / http/1.1\r\n\r\n",
           "G(T / HTTP/1.1\r\n\r\n",
           "GET exec/x HTTP/1.1\r\n\r\n",
           "GET http://h?x HTTP/1.1\r\n\r\n",
           "GET /%zz HTTP/1.1\r\n\r\n",
           "GET /\x01 HTTP/1.1\r\n\r\n",
           "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
           "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
           "GET / HTTP/1.1\r\nName : v\r\n\r\n",
           "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
           "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",
           "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n",
           "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
       }) {
    RequestParser parser;
    auto r = parser.Feed(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << bad;
    EXPECT_EQ(RefusalForParseError(r.error()).status, 400);
    EXPECT_TRUE(parser.Feed("\r\n").error().Is(Errc::kFailedPrecondition));
  }
}

TEST(HttpRequestParser, RefusesOversizeHeads) {
  ParserLimits limits{.max_head_bytes = 64, .max_headers = 2};
  // A line that never ends is refused once it passes the limit, not buffered without end.
  RequestParser endless(limits);
  Result<bool> r = false;
  size_t fed = 0;
  while (r && fed < 1000) {
    r = endless.Feed("a");
    ++fed;
  }
  ASSERT_FALSE(r);
  EXPECT_EQ(fed, 65u);
  EXPECT_TRUE(r.error().Is(Errc::kResourceExhausted));
  EXPECT_EQ(RefusalForParseError(r.error()).status, 431);

  std::string exact = "GET / HTTP/1.1\r\nA: 1\r\n";
  exact += "B: " + std::string(64 - exact.size() - 7, 'x') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), 64u);
  EXPECT_TRUE(ParseAll(exact, limits).has_value());
  EXPECT_TRUE(ParseAll(exact.substr(0, 20) + "x" + exact.substr(20), limits)
                  .error()
                  .Is(Errc::kResourceExhausted));

  auto many = ParseAll("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits);
  ASSERT_FALSE(many);
  EXPECT_TRUE(many.error().Is(Errc::kResourceExhausted));
  // Empty lines before the request line count too.
  EXPECT_FALSE(ParseAll(std::string(100, '\n') + "GET / HTTP/1.1\r\n\r\n", limits));
}

TEST(HttpRequestParser, DefaultLimits) {
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(16 * 1024, 'a') + "\r\n\r\n";
  EXPECT_TRUE(ParseAll(big).error().Is(Errc::kResourceExhausted));
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "H: v\r\n";
  EXPECT_TRUE(ParseAll(many + "\r\n").error().Is(Errc::kResourceExhausted));
}

TEST(HttpRefusal, Bytes) {
  Refusal r{.status = 403,
            .text = "no",
            .headers = {{.name = "X-Accepted-Stream-Protocol-Versions", .value = "a"}}};
  EXPECT_EQ(r.Bytes(),
            "HTTP/1.1 403 Forbidden\r\n"
            "X-Accepted-Stream-Protocol-Versions: a\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            "Content-Length: 3\r\n"
            "Connection: close\r\n"
            "\r\n"
            "no\n");
  EXPECT_EQ(StatusText(101), "Switching Protocols");
  EXPECT_EQ(StatusText(599), "Unknown");
}

}  // namespace
}  // namespace berth::cri::streaming::http

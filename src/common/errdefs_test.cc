#include "common/errdefs.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

Result<int> Half(int v) {
  if (v % 2 != 0) return InvalidArgument("odd value " + std::to_string(v));
  return v / 2;
}

Result<int> Quarter(int v) {
  BERTH_ASSIGN_OR_RETURN(int h, Half(v));
  BERTH_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int v) {
  BERTH_TRY(Half(v));
  return Ok();
}

TEST(ErrdefsTest, ToStringAppendsClassSuffix) {
  EXPECT_EQ(NotFound("container \"x\" in namespace \"default\"").ToString(),
            "container \"x\" in namespace \"default\": not found");
  EXPECT_EQ(Unknown("shim died").ToString(), "shim died");
  EXPECT_EQ(FailedPrecondition("").ToString(), "failed precondition");
}

TEST(ErrdefsTest, WrapPrefixesContext) {
  Error e = NotFound("content digest sha256:abc").Wrap("unpack layer");
  EXPECT_EQ(e.ToString(), "unpack layer: content digest sha256:abc: not found");
  EXPECT_TRUE(e.Is(Errc::kNotFound));
}

TEST(ErrdefsTest, GrpcCodesRoundTrip) {
  for (Errc c : {Errc::kInvalidArgument, Errc::kNotFound, Errc::kAlreadyExists,
                 Errc::kFailedPrecondition, Errc::kUnavailable, Errc::kNotImplemented,
                 Errc::kCanceled, Errc::kDeadlineExceeded, Errc::kOutOfRange}) {
    EXPECT_EQ(ErrcFromGrpcCode(ErrcToGrpcCode(c)), c);
  }
  EXPECT_EQ(ErrcToGrpcCode(Errc::kNotImplemented), 12);
  EXPECT_EQ(ErrcToGrpcCode(Errc::kUnknown), 2);
}

TEST(ErrdefsTest, ErrorFromGrpcStripsOneSuffix) {
  Error e = ErrorFromGrpc(5, "namespace \"x\": not found");
  EXPECT_TRUE(e.Is(Errc::kNotFound));
  EXPECT_EQ(e.What(), "namespace \"x\"");
  EXPECT_EQ(e.ToString(), "namespace \"x\": not found");
  Error u = ErrorFromGrpc(13, "internal thing");
  EXPECT_TRUE(u.Is(Errc::kUnknown));
  EXPECT_EQ(u.ToString(), "internal thing");
}

TEST(ErrdefsTest, ErrnoMapping) {
  EXPECT_TRUE(ErrnoError(ENOENT, "open x").Is(Errc::kNotFound));
  EXPECT_TRUE(ErrnoError(EEXIST, "mkdir x").Is(Errc::kAlreadyExists));
  EXPECT_TRUE(ErrnoError(EINVAL, "x").Is(Errc::kInvalidArgument));
  EXPECT_EQ(ErrnoError(EIO, "read x").ToString(), "read x: Input/output error");
}

TEST(ErrdefsTest, ResultPropagation) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().ToString(), "odd value 3: invalid argument");
  EXPECT_TRUE(CheckEven(4));
  EXPECT_FALSE(CheckEven(5));
  EXPECT_EQ(Quarter(5).value_or(-1), -1);
}

TEST(ErrdefsTest, ResultHoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r);
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace berth

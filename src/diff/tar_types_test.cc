#include "diff/tar_types.h"

#include <gtest/gtest.h>

#include "diff/test_util.h"

namespace berth::diff {
namespace {

using namespace test;  // NOLINT(google-build-using-namespace): the tar-building helpers

// Feeds `tar` in one piece and byte by byte (the scanner keeps its place across reads).
std::optional<Error> Scan(const std::string& tar) {
  TarTypeScanner whole;
  whole.Feed(tar);
  TarTypeScanner bytes;
  for (char c : tar) bytes.Feed(std::string_view(&c, 1));
  EXPECT_EQ(whole.Refusal().has_value(), bytes.Refusal().has_value());
  return whole.Refusal();
}

const std::string kEnd(1024, '\0');

TEST(TarTypeScannerTest, HandledTypesPass) {
  std::string tar = TarHeader("d/", '5', 0) + TarHeader("d/f", '0', 5) + Pad512("hello") +
                    TarHeader("d/old", '\0', 3) + Pad512("abc") + TarHeader("d/l", '2', 0) +
                    TarHeader("d/h", '1', 0) + TarHeader("d/c", '3', 0) + TarHeader("d/b", '4', 0) +
                    TarHeader("d/p", '6', 0) + TarHeader("././@LongLink", 'L', 300) +
                    Pad512(std::string(300, 'n')) + TarHeader("g", 'g', 20) +
                    Pad512(PaxRecord("comment", "hi")) +
                    SparseEntry("s", 1 << 20, {{4096, "data"}}) + kEnd;
  EXPECT_EQ(Scan(tar), std::nullopt);
}

TEST(TarTypeScannerTest, UnhandledTypeIsRefusedNamingTheEntry) {
  std::string tar = TarHeader("a", '0', 1) + Pad512("a") + TarHeader("evil/zz", 'Z', 4) +
                    Pad512("zzzz") + TarHeader("b", '0', 0) + kEnd;
  auto refusal = Scan(tar);
  ASSERT_TRUE(refusal);
  EXPECT_TRUE(refusal->Is(Errc::kInvalidArgument));
  EXPECT_EQ(refusal->What(), "tar entry \"evil/zz\": unhandled tar header type 'Z'");
  // Reserved '7' (contiguous file) and GNU's 'V' (volume label) are refused too, as containerd.
  EXPECT_TRUE(Scan(TarHeader("c", '7', 0) + kEnd));
  EXPECT_TRUE(Scan(TarHeader("v", 'V', 0) + kEnd));
}

// The data of an entry is passed over by its size, the pax "size" record first: a header-like
// block inside a file's data is data.
TEST(TarTypeScannerTest, DataIsSkippedByPaxSizeThenHeaderSize) {
  std::string inner = TarHeader("inner", 'Z', 0);
  std::string by_header = TarHeader("f", '0', inner.size()) + inner + kEnd;
  EXPECT_EQ(Scan(by_header), std::nullopt);
  std::string records = PaxRecord("size", std::to_string(inner.size()));
  std::string by_pax = TarHeader("PaxHeaders/f", 'x', records.size()) + Pad512(records) +
                       TarHeader("f", '0', 0) + inner + TarHeader("after", 'Z', 0) + kEnd;
  auto refusal = Scan(by_pax);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->What(), "tar entry \"after\": unhandled tar header type 'Z'");
}

// What it cannot follow it leaves to libarchive: no refusal after a bad checksum, after the end
// of the archive, or after a header-only type that claims data.
TEST(TarTypeScannerTest, StopsWhereItCannotFollow) {
  std::string bad = TarHeader("x", 'Z', 0);
  bad[0] = 'y';  // the checksum no longer matches
  EXPECT_EQ(Scan(bad + kEnd), std::nullopt);
  EXPECT_EQ(Scan(kEnd + TarHeader("x", 'Z', 0)), std::nullopt);
  EXPECT_EQ(Scan(TarHeader("d", '5', 512) + TarHeader("x", 'Z', 0) + kEnd), std::nullopt);
}

}  // namespace
}  // namespace berth::diff

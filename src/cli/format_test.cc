#include "cli/format.h"
#include "cli/app.h"
#include "cli/tabwriter.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "common/digest.h"

namespace berth::cli {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(FormatTest, HumanSizeIsGoUnits) {
  EXPECT_EQ(HumanSize(0), "0B");
  EXPECT_EQ(HumanSize(5), "5B");
  EXPECT_EQ(HumanSize(999), "999B");
  EXPECT_EQ(HumanSize(1000), "1kB");
  EXPECT_EQ(HumanSize(1234), "1.234kB");
  EXPECT_EQ(HumanSize(12345), "12.35kB");
  EXPECT_EQ(HumanSize(2746000), "2.746MB");
  EXPECT_EQ(HumanSize(999999), "1000kB");
  EXPECT_EQ(HumanSize(1e9), "1GB");
}

TEST(FormatTest, ProgressBytesIsBinaryWithOneDecimal) {
  EXPECT_EQ(ProgressBytes(0), "0.0 B");
  EXPECT_EQ(ProgressBytes(512), "512.0 B");
  EXPECT_EQ(ProgressBytes(1024), "1.0 KiB");
  EXPECT_EQ(ProgressBytes(1536), "1.5 KiB");
  EXPECT_EQ(ProgressBytes(1 << 20), "1.0 MiB");
  EXPECT_EQ(ProgressBytes(int64_t{3} << 30), "3.0 GiB");
}

TEST(FormatTest, HumanDurationIsGoUnits) {
  EXPECT_EQ(HumanDuration(milliseconds(300)), "Less than a second");
  EXPECT_EQ(HumanDuration(-seconds(5)), "Less than a second");
  EXPECT_EQ(HumanDuration(seconds(1)), "1 second");
  EXPECT_EQ(HumanDuration(seconds(59)), "59 seconds");
  EXPECT_EQ(HumanDuration(seconds(60)), "About a minute");
  EXPECT_EQ(HumanDuration(seconds(119)), "About a minute");
  EXPECT_EQ(HumanDuration(minutes(2)), "2 minutes");
  EXPECT_EQ(HumanDuration(minutes(59)), "59 minutes");
  EXPECT_EQ(HumanDuration(minutes(60)), "About an hour");
  EXPECT_EQ(HumanDuration(minutes(89)), "About an hour");
  EXPECT_EQ(HumanDuration(minutes(90)), "2 hours");
  EXPECT_EQ(HumanDuration(hours(47)), "47 hours");
  EXPECT_EQ(HumanDuration(hours(48)), "2 days");
  EXPECT_EQ(HumanDuration(hours(24 * 14)), "2 weeks");
  EXPECT_EQ(HumanDuration(hours(24 * 60)), "2 months");
  EXPECT_EQ(HumanDuration(hours(24 * 365 * 2)), "2 years");
}

TEST(FormatTest, Rfc3339LocalUsesZForUtc) {
  setenv("TZ", "UTC", 1);
  tzset();
  EXPECT_EQ(FormatRfc3339Local(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339Local(1700000000), "2023-11-14T22:13:20Z");
}

TEST(FormatTest, CtrLabelArgsDefaultToTrue) {
  auto l = LabelArgs({"obj", "a=b", "c=", "d", "e=f=g"}, 1);
  EXPECT_EQ(
      l, (std::map<std::string, std::string>{{"a", "b"}, {"c", ""}, {"d", "true"}, {"e", "f=g"}}));
  EXPECT_EQ(JoinLabels(l), "a=b,c=,d=true,e=f=g");
  EXPECT_EQ(JoinLabels({}, "-"), "-");
}

TEST(FormatTest, ValidateDigestHasGoDigestMessages) {
  std::string hex(64, 'a');
  EXPECT_TRUE(ValidateDigest("sha256:" + hex));
  auto msg = [](std::string_view d) { return ValidateDigest(d).error().ToString(); };
  EXPECT_EQ(msg(""), "invalid checksum digest format");
  EXPECT_EQ(msg("foo"), "invalid checksum digest format");
  EXPECT_EQ(msg("sha256:"), "invalid checksum digest format");
  EXPECT_EQ(msg("sha256:abc"), "invalid checksum digest length");
  EXPECT_EQ(msg("sha256:" + std::string(64, 'A')), "invalid checksum digest format");
  EXPECT_EQ(msg("md5:abc"), "unsupported digest algorithm");
  EXPECT_EQ(msg("MD5:abc"), "invalid checksum digest format");
  EXPECT_TRUE(ValidateDigest("sha512:" + std::string(128, '0')));
}

TEST(FormatTest, TabPaddedWriterMatchesGoTabwriterWithTabs) {
  // Go: tabwriter.NewWriter(out, 1, 8, 1, '\t', 0)
  auto tw = TabWriter::Tabs(1, 8, 1);
  tw.Write("DIGEST\tSIZE\tAGE\tLABELS\n");
  tw.Write("sha256:0123456789\t5B\t2 minutes\t-\n");
  EXPECT_EQ(tw.Flush(),
            "DIGEST\t\t\tSIZE\tAGE\t\tLABELS\n"
            "sha256:0123456789\t5B\t2 minutes\t-\n");
  auto active = TabWriter::Tabs(1, 8, 1);
  active.Write("REF\tSIZE\tAGE\t\n");
  EXPECT_EQ(active.Flush(), "REF\tSIZE\tAGE\t\n");
}

}  // namespace
}  // namespace berth::cli

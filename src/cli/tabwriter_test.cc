#include "cli/tabwriter.h"

#include <gtest/gtest.h>

namespace berth::cli {
namespace {

TEST(TabWriterTest, AlignsLikeGo) {
  TabWriter tw(1, 1);
  tw.Write("NAME\tLABELS\t\n");
  tw.Write("default\t\t\n");
  tw.Write("ns1\ta=b\t\n");
  EXPECT_EQ(tw.Flush(), "NAME    LABELS \ndefault        \nns1     a=b    \n");
}

TEST(TabWriterTest, PluginsTableWidths) {
  TabWriter tw(4, 4);
  tw.Write("TYPE\tID\tPLATFORMS\tSTATUS\t\n");
  tw.Write("io.containerd.grpc.v1\tversion\t-\tok\t\n");
  EXPECT_EQ(tw.Flush(),
            "TYPE                     ID         PLATFORMS    STATUS    \n"
            "io.containerd.grpc.v1    version    -            ok        \n");
}

TEST(TabWriterTest, TrailingTextIsNotACell) {
  TabWriter tw(4, 4);
  tw.Write("Type:\t x\n");
  tw.Write("Platforms:\t linux/amd64\n");
  EXPECT_EQ(tw.Flush(), "Type:" + std::string(10, ' ') + "x\nPlatforms:" + std::string(5, ' ') +
                            "linux/amd64\n");
}

TEST(TabWriterTest, BlocksEndAtLinesWithoutTheColumn) {
  TabWriter tw(1, 1);
  tw.Write("a\tb\n");
  tw.Write("no tabs here\n");
  tw.Write("longer\tc\n");
  EXPECT_EQ(tw.Flush(), "a b\nno tabs here\nlonger c\n");
}

TEST(TabWriterTest, CountsUtf8AsCharacters) {
  TabWriter tw(1, 1);
  tw.Write("é\tx\t\n");
  tw.Write("ab\ty\t\n");
  EXPECT_EQ(tw.Flush(), "é  x \nab y \n");
}

}  // namespace
}  // namespace berth::cli

#include "cli/table.h"

#include <gtest/gtest.h>

namespace berth::cli {
namespace {

Table Sample(TableStyle style) {
  Table t({{"NAME", "name"}, {"SIZE", "size"}, {"", "hidden"}, {"LABELS", "labels"}},
          std::move(style));
  t.Add(
      {"alpha", NumberCell("1.0 KiB", 1024), Cell("", true), LabelsCell({{"b", "2"}, {"a", "1"}})});
  t.Add({"b", NumberCell("0.0 B", 0), Cell("", false), LabelsCell({})});
  return t;
}

TEST(TableTest, TableAsCtrPrintsIt) {
  auto t = Sample({});
  EXPECT_EQ(t.Render(OutputFormat::kTable),
            "NAME  SIZE    LABELS  \n"
            "alpha 1.0 KiB a=1,b=2 \n"
            "b     0.0 B   -       \n");
}

TEST(TableTest, RowEndsAndTabPadding) {
  auto t = Sample({.writer = TabWriter::Tabs(1, 8, 1), .header_end = "\n", .row_end = "\n"});
  EXPECT_EQ(t.Render(OutputFormat::kTable),
            "NAME\tSIZE\tLABELS\n"
            "alpha\t1.0 KiB\ta=1,b=2\n"
            "b\t0.0 B\t-\n");
}

TEST(TableTest, JsonHasTypedValuesAndHiddenColumns) {
  auto t = Sample({});
  EXPECT_EQ(t.Render(OutputFormat::kJson), R"([
  {
    "hidden": true,
    "labels": {
      "a": "1",
      "b": "2"
    },
    "name": "alpha",
    "size": 1024
  },
  {
    "hidden": false,
    "labels": {},
    "name": "b",
    "size": 0
  }
]
)");
}

TEST(TableTest, EmptyJsonIsAnEmptyArray) {
  Table t({{"A", "a"}}, {});
  EXPECT_EQ(t.Render(OutputFormat::kJson), "[]\n");
  EXPECT_EQ(t.Render(OutputFormat::kTable), "A \n");
}

TEST(TableTest, TimesAreRfc3339) {
  Cell c = TimeCell("3 hours", 1'700'000'000, 500'000'000);
  EXPECT_EQ(c.text, "3 hours");
  EXPECT_EQ(c.value, "2023-11-14T22:13:20.5Z");
}

TEST(TableTest, ParsesFormats) {
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*ParseOutputFormat("table"), OutputFormat::kTable);
  auto bad = ParseOutputFormat("yaml");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().ToString(),
            "unknown output format \"yaml\" (want table or json): invalid argument");
}

}  // namespace
}  // namespace berth::cli

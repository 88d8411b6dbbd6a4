#pragma once
// One list command's rows, printed either as ctr's tab-aligned table (byte for byte) or as a JSON
// array of objects (`--format json`). Each cell carries the text shown in the table and the
// value put in the JSON (numbers as numbers, times as RFC 3339 strings, labels as objects).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/tabwriter.h"
#include "common/errdefs.h"
#include "common/timeutil.h"

namespace berth::cli {

enum class OutputFormat { kTable, kJson };

// Parses "table" / "json"; InvalidArgument naming the value otherwise.
Result<OutputFormat> ParseOutputFormat(std::string_view text);

// Adds `--format table|json` (default table) to `cmd`; the value lands in `*format`.
void AddFormatFlag(CLI::App* cmd, const std::shared_ptr<std::string>& format);

struct Column {
  std::string header;  // table header; "" = JSON only
  std::string key;     // JSON key (lower_snake); "" = table only
};

struct Cell {
  std::string text;
  nlohmann::json value;
  // A cell whose JSON value is its text.
  Cell(std::string t) : text(t), value(std::move(t)) {}  // NOLINT(google-explicit-constructor)
  Cell(const char* t) : Cell(std::string(t)) {}          // NOLINT(google-explicit-constructor)
  Cell(std::string_view t) : Cell(std::string(t)) {}     // NOLINT(google-explicit-constructor)
  Cell(std::string t, nlohmann::json v) : text(std::move(t)), value(std::move(v)) {}
};

struct TableStyle {
  TabWriter writer{1, 1};
  std::string header_end = "\t\n";  // ctr's tables differ in whether a row ends with a tab
  std::string row_end = "\t\n";
};

class Table {
 public:
  Table(std::vector<Column> columns, TableStyle style)
      : columns_(std::move(columns)), style_(std::move(style)) {}

  // One row: a cell per column, in column order. Fewer cells than columns is a bug.
  void Add(std::vector<Cell> cells);
  size_t Size() const { return rows_.size(); }

  // The table as ctr prints it (header row first), or the JSON array (2-space indent, "\n").
  std::string Render(OutputFormat format);
  nlohmann::json Json() const;

 private:
  std::vector<Column> columns_;
  TableStyle style_;
  std::vector<std::vector<Cell>> rows_;
};

// Cells shared by the commands.
Cell LabelsCell(const std::map<std::string, std::string>& labels, std::string_view empty = "-");
// A protobuf Timestamp-like (seconds, nanos) as RFC 3339 in JSON; `text` in the table.
Cell TimeCell(std::string text, int64_t seconds, int32_t nanos);
Cell NumberCell(std::string text, int64_t value);

}  // namespace berth::cli

#include "cli/table.h"

#include <fmt/format.h>

#include "cli/format.h"

namespace berth::cli {

Result<OutputFormat> ParseOutputFormat(std::string_view text) {
  if (text.empty() || text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  return InvalidArgument(fmt::format("unknown output format \"{}\" (want table or json)", text));
}

void AddFormatFlag(CLI::App* cmd, const std::shared_ptr<std::string>& format) {
  cmd->add_option("--format", *format, "output format: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->default_str("table");
}

void Table::Add(std::vector<Cell> cells) {
  BERTH_CHECK(cells.size() == columns_.size(), "table row with a cell per column");
  rows_.push_back(std::move(cells));
}

nlohmann::json Table::Json() const {
  auto out = nlohmann::json::array();
  for (const auto& row : rows_) {
    auto obj = nlohmann::json::object();
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (!columns_[i].key.empty()) obj[columns_[i].key] = row[i].value;
    }
    out.push_back(std::move(obj));
  }
  return out;
}

std::string Table::Render(OutputFormat format) {
  if (format == OutputFormat::kJson) return Json().dump(2) + "\n";
  auto line = [&](auto&& cell_text, const std::string& end) {
    std::string text;
    bool first = true;
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (columns_[i].header.empty()) continue;
      if (!first) text += '\t';
      first = false;
      text += cell_text(i);
    }
    text += end;
    style_.writer.Write(text);
  };
  line([&](size_t i) { return columns_[i].header; }, style_.header_end);
  for (const auto& row : rows_) {
    line([&](size_t i) { return row[i].text; }, style_.row_end);
  }
  return style_.writer.Flush();
}

Cell LabelsCell(const std::map<std::string, std::string>& labels, std::string_view empty) {
  nlohmann::json obj = nlohmann::json::object();
  for (const auto& [k, v] : labels) obj[k] = v;
  return Cell(JoinLabels(labels, empty), std::move(obj));
}

Cell TimeCell(std::string text, int64_t seconds, int32_t nanos) {
  return Cell(std::move(text), FormatRfc3339Nano(ProtoTime{.seconds = seconds, .nanos = nanos}));
}

Cell NumberCell(std::string text, int64_t value) { return Cell(std::move(text), value); }

}  // namespace berth::cli

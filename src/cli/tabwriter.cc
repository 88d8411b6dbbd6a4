#include "cli/tabwriter.h"

namespace berth::cli {

int TextWidth(std::string_view s) {
  int n = 0;
  for (unsigned char c : s) {
    if ((c & 0xc0) != 0x80) ++n;
  }
  return n;
}

void TabWriter::Write(std::string_view text) {
  pending_.append(text);
  size_t nl;
  while ((nl = pending_.find('\n')) != std::string::npos) {
    std::string line = pending_.substr(0, nl);
    pending_.erase(0, nl + 1);
    std::vector<std::string> cells;
    size_t start = 0;
    size_t tab;
    while ((tab = line.find('\t', start)) != std::string::npos) {
      cells.push_back(line.substr(start, tab - start));
      start = tab + 1;
    }
    cells.push_back(line.substr(start));  // trailing text: not a cell
    lines_.push_back(std::move(cells));
  }
}

void TabWriter::WriteLines(size_t line0, size_t line1, std::string& out) {
  for (size_t i = line0; i < line1; ++i) {
    const auto& line = lines_[i];
    for (size_t j = 0; j < line.size(); ++j) {
      const std::string& c = line[j];
      out += c;
      if (j < widths_.size() && j + 1 < line.size()) {
        if (tab_width_ > 0) {
          int cell_width = (widths_[j] + tab_width_ - 1) / tab_width_ * tab_width_;
          int tabs = (cell_width - TextWidth(c) + tab_width_ - 1) / tab_width_;
          if (tabs > 0) out.append(static_cast<size_t>(tabs), '\t');
        } else if (int pad = widths_[j] - TextWidth(c); pad > 0) {
          out.append(static_cast<size_t>(pad), ' ');
        }
      }
    }
    out += '\n';
  }
}

void TabWriter::Format(size_t line0, size_t line1, std::string& out) {
  size_t column = widths_.size();
  for (size_t cur = line0; cur < line1; ++cur) {
    if (column + 1 >= lines_[cur].size()) continue;  // no cell in this column
    WriteLines(line0, cur, out);
    line0 = cur;
    int width = min_width_;
    for (; cur < line1; ++cur) {
      const auto& line = lines_[cur];
      if (column + 1 >= line.size()) break;
      int w = TextWidth(line[column]) + padding_;
      if (w > width) width = w;
    }
    widths_.push_back(width);
    Format(line0, cur, out);
    widths_.pop_back();
    line0 = cur;
    if (cur >= line1) break;
  }
  WriteLines(line0, line1, out);
}

std::string TabWriter::Flush() {
  if (!pending_.empty()) Write("\n");
  std::string out;
  Format(0, lines_.size(), out);
  lines_.clear();
  return out;
}

}  // namespace berth::cli

#pragma once
// Column alignment as Go's text/tabwriter does it (ctr's tables use it): a cell is text
// terminated by '\t'; consecutive lines that have a cell in the same column form a block whose
// width is the widest cell plus padding (at least minwidth). Text after the last tab of a line
// is not a cell and is not padded.
#include <string>
#include <string_view>
#include <vector>

namespace berth::cli {

class TabWriter {
 public:
  // Pads cells with spaces (Go: padchar ' ').
  TabWriter(int min_width, int padding) : min_width_(min_width), padding_(padding) {}
  // Pads cells with tabs (Go: padchar '\t'): cell widths round up to multiples of tab_width.
  static TabWriter Tabs(int min_width, int tab_width, int padding) {
    TabWriter w(min_width, padding);
    w.tab_width_ = tab_width;
    return w;
  }
  // Appends text; lines end at '\n'.
  void Write(std::string_view text);
  // Formats everything written so far.
  std::string Flush();

 private:
  void Format(size_t line0, size_t line1, std::string& out);
  void WriteLines(size_t line0, size_t line1, std::string& out);

  int min_width_;
  int padding_;
  int tab_width_ = 0;  // 0 = pad with spaces
  std::string pending_;
  std::vector<std::vector<std::string>> lines_;
  std::vector<int> widths_;
};

// Width of UTF-8 text in code points, as tabwriter counts it.
int TextWidth(std::string_view s);

}  // namespace berth::cli

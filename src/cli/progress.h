#pragma once
// The progress display of pull/push/fetch, after ctr's content.Display: one line per blob
// ("<ref>: <state> |+++---| <offset>/<total> <speed>") and a total line ("elapsed: 1.2 s
// total: 3.4 MiB (2.8 MiB/s)").
//
// On a terminal of known width the table is redrawn in place (ANSI cursor-up and erase-line) as
// updates arrive, at most ~10 times a second, each line cut to fit the width (a wrapped line
// would throw the cursor-up count off and leave fragments), and the final state stays on
// screen. Elsewhere, or when the width is unknown, nothing is printed while the transfer runs
// and Finish() writes the final table once, as plain text.
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "client/transfer.h"

namespace berth::cli {

class ProgressDisplay {
 public:
  // `width`: the terminal's columns to redraw live in (TerminalWidth(fileno(out))); 0 for
  // plain output.
  ProgressDisplay(std::FILE* out, int width);

  // A client::ProgressFn: [&d](const auto& rows) { d.Update(rows); }.
  void Update(const std::vector<client::TransferStatus>& rows);
  // Prints the final table (live: redraws it a last time).
  void Finish();

  // The table text for `rows` at `elapsed` (no ANSI); exposed for tests.
  static std::string Render(const std::vector<client::TransferStatus>& rows,
                            std::chrono::steady_clock::duration elapsed);
  // Render for `columns`: as Render when it fits; else digests shortened to 12 hex digits and
  // the bar narrowed (or dropped), so the state and sizes stay on screen.
  static std::string RenderToFit(const std::vector<client::TransferStatus>& rows,
                                 std::chrono::steady_clock::duration elapsed, int columns);
  // `line` cut to at most `columns` characters (UTF-8 aware).
  static std::string Fit(std::string_view line, int columns);

 private:
  void Draw(bool final);
  static std::string Render(const std::vector<client::TransferStatus>& rows,
                            std::chrono::steady_clock::duration elapsed, int bar_width,
                            bool short_refs);

  std::FILE* out_;
  int width_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::vector<client::TransferStatus> rows_;
  int drawn_lines_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

// The columns of the terminal on `fd`; 0 if it is no terminal or does not say.
int TerminalWidth(int fd);

// ctr's state words: "resolving", "waiting", "downloading", "done", "exists", ...
const char* StateName(client::TransferStatus::State state);

}  // namespace berth::cli

#pragma once
// The progress display of pull/push/fetch, after ctr's content.Display: one line per blob
// ("<ref>: <state> |+++---| <offset>/<total> <speed>") and a total line ("elapsed: 1.2 s
// total: 3.4 MiB (2.8 MiB/s)").
//
// On a terminal the table is redrawn in place (ANSI cursor-up and erase-line) as updates
// arrive, at most ~10 times a second, and the final state stays on screen. Elsewhere nothing is
// printed while the transfer runs and Finish() writes the final table once, as plain text.
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "client/transfer.h"

namespace berth::cli {

class ProgressDisplay {
 public:
  // `tty`: redraw live (normally isatty(fileno(out))).
  ProgressDisplay(std::FILE* out, bool tty);

  // A client::ProgressFn: [&d](const auto& rows) { d.Update(rows); }.
  void Update(const std::vector<client::TransferStatus>& rows);
  // Prints the final table (live: redraws it a last time).
  void Finish();

  // The table text for `rows` at `elapsed` (no ANSI); exposed for tests.
  static std::string Render(const std::vector<client::TransferStatus>& rows,
                            std::chrono::steady_clock::duration elapsed);

 private:
  void Draw(bool final);

  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::vector<client::TransferStatus> rows_;
  int drawn_lines_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

// ctr's state words: "resolving", "waiting", "downloading", "done", "exists", ...
const char* StateName(client::TransferStatus::State state);

}  // namespace berth::cli

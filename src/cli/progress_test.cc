// The progress table as ctr's content.Display prints it.
#include "cli/progress.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>

namespace berth::cli {
namespace {

using client::TransferStatus;
using State = TransferStatus::State;

TransferStatus Row(std::string ref, State state, int64_t offset, int64_t total) {
  TransferStatus s;
  s.ref = std::move(ref);
  s.state = state;
  s.offset = offset;
  s.total = total;
  s.started = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  s.updated = std::chrono::steady_clock::now();
  return s;
}

TEST(ProgressDisplay, RendersCtrLines) {
  std::string text = ProgressDisplay::Render(
      {Row("reg/x:1", State::kDone, 0, 0), Row("layer-sha256:ab", State::kDownloading, 512, 1024),
       Row("config-sha256:cd", State::kExists, 10, 10)},
      std::chrono::milliseconds(1500));
  EXPECT_NE(text.find("reg/x:1: "), std::string::npos) << text;
  EXPECT_NE(text.find("resolved"), std::string::npos) << text;
  EXPECT_NE(text.find("downloading"), std::string::npos) << text;
  EXPECT_NE(text.find("|+++++++++++++++++++-------------------|"), std::string::npos) << text;
  EXPECT_NE(text.find("512.0 B/1.0 KiB"), std::string::npos) << text;
  EXPECT_NE(text.find("exists"), std::string::npos) << text;
  EXPECT_NE(text.find("elapsed: 1.5 s"), std::string::npos) << text;
  EXPECT_NE(text.find("total: 522.0 B"), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
}

TEST(ProgressDisplay, PlainOutputOnlyAtTheEnd) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* f = ::open_memstream(&buf, &len);
  ASSERT_NE(f, nullptr);
  {
    ProgressDisplay d(f, /*width=*/0);
    d.Update({Row("layer-sha256:ab", State::kDownloading, 1, 2)});
    std::fflush(f);
    EXPECT_EQ(len, 0u) << "nothing while running";
    d.Update({Row("layer-sha256:ab", State::kDone, 2, 2)});
    d.Finish();
  }
  std::fclose(f);
  std::string out(buf, len);
  std::free(buf);
  EXPECT_NE(out.find("layer-sha256:ab:"), std::string::npos) << out;
  EXPECT_NE(out.find("done"), std::string::npos) << out;
  EXPECT_EQ(out.find("downloading"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
}

TEST(ProgressDisplay, TerminalFramesRedrawInPlace) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* f = ::open_memstream(&buf, &len);
  ASSERT_NE(f, nullptr);
  {
    ProgressDisplay d(f, /*width=*/200);
    d.Update({Row("layer-sha256:ab", State::kDownloading, 1, 2)});
    d.Finish();
  }
  std::fclose(f);
  std::string out(buf, len);
  std::free(buf);
  // Frame 1: two lines (row + total); frame 2 goes up two lines first.
  EXPECT_EQ(out.find("\x1b[2A"), out.rfind("\x1b[2A")) << out;
  EXPECT_NE(out.find("\x1b[2A"), std::string::npos) << out;
  EXPECT_NE(out.find("\x1b[2K"), std::string::npos) << out;
}

// At 80 columns ctr's rows (a 40-column bar after a 70-character ref) would wrap and each
// redraw would leave fragments: every line of a frame is cut to the width, less one column.
TEST(ProgressDisplay, FramesFitTheTerminalWidth) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* f = ::open_memstream(&buf, &len);
  ASSERT_NE(f, nullptr);
  {
    ProgressDisplay d(f, /*width=*/80);
    d.Update({Row("layer-sha256:" + std::string(64, 'a'), State::kDownloading, 1, 2)});
    d.Finish();
  }
  std::fclose(f);
  std::string out(buf, len);
  std::free(buf);
  size_t pos = 0;
  int lines = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string line = out.substr(pos, nl - pos);
    // Drop the ANSI sequences (ESC [ ... letter) to count what shows.
    std::string shown;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\x1b') {
        while (i < line.size() && !std::isalpha(static_cast<unsigned char>(line[i]))) ++i;
        continue;
      }
      shown += line[i];
    }
    EXPECT_LE(shown.size(), 79u) << shown;
    ++lines;
    pos = nl + 1;
  }
  EXPECT_EQ(lines, 4) << "two frames of two lines\n" << out;
  // What matters stays: the digest is shortened and the bar narrowed, not the state cut off.
  EXPECT_NE(out.find("layer-sha256:aaaaaaaaaaaa: downloading"), std::string::npos) << out;
  EXPECT_NE(out.find("/2.0 B"), std::string::npos) << out;
}

TEST(ProgressDisplay, FitCountsCharactersNotBytes) {
  EXPECT_EQ(ProgressDisplay::Fit("abcdef", 4), "abcd");
  EXPECT_EQ(ProgressDisplay::Fit("abc", 4), "abc");
  EXPECT_EQ(ProgressDisplay::Fit("1.5 µs/s", 5), "1.5 µ");
  EXPECT_EQ(ProgressDisplay::Fit("abc", 0), "");
}

}  // namespace
}  // namespace berth::cli

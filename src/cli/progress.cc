#include "cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "cli/format.h"
#include "cli/tabwriter.h"

namespace berth::cli {
namespace {

using State = client::TransferStatus::State;
using Clock = std::chrono::steady_clock;

constexpr int kBarWidth = 40;

// progress.Bar at width 40: "|" + "+" * done + "-" * rest + "|". A width under 3 is no bar.
std::string Bar(double fraction, int width) {
  if (width < 3) return "";
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int inner = width - 2;
  const int positive = static_cast<int>(inner * fraction);
  return "|" + std::string(static_cast<size_t>(positive), '+') +
         std::string(static_cast<size_t>(inner - positive), '-') + "|";
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// "layer-sha256:<64 hex>" -> "layer-sha256:<12 hex>", as docker shortens ids.
std::string ShortRef(const std::string& ref) {
  auto at = ref.find("sha256:");
  if (at == std::string::npos || ref.size() < at + 7 + 64) return ref;
  return ref.substr(0, at + 7 + 12) + ref.substr(at + 7 + 64);
}

size_t WidestLine(const std::string& text) {
  size_t widest = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    widest = std::max(widest, nl - pos);
    pos = nl + 1;
  }
  return widest;
}

}  // namespace

const char* StateName(State state) {
  switch (state) {
    case State::kWaiting:
      return "waiting";
    case State::kResolving:
      return "resolving";
    case State::kDownloading:
      return "downloading";
    case State::kUploading:
      return "uploading";
    case State::kExists:
      return "exists";
    case State::kDone:
      return "done";
    case State::kUnpacking:
      return "unpacking";
    case State::kUnpacked:
      return "unpacked";
    case State::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string ProgressDisplay::Render(const std::vector<client::TransferStatus>& rows,
                                    Clock::duration elapsed, int bar_width, bool short_refs) {
  TabWriter tw(1, 1);
  int64_t total = 0;
  for (const auto& r : rows) {
    total += r.offset;
    // The root reference reads "resolved" once resolved, as ctr prints it.
    std::string state = StateName(r.state);
    const bool job = r.ref.starts_with("manifest-") || r.ref.starts_with("index-") ||
                     r.ref.starts_with("layer-") || r.ref.starts_with("config-") ||
                     r.ref.starts_with("unknown-");
    if (!job && r.state == State::kDone) state = "resolved";
    const std::string ref = short_refs ? ShortRef(r.ref) : r.ref;
    switch (r.state) {
      case State::kDownloading:
      case State::kUploading: {
        double f = r.total > 0 ? static_cast<double>(r.offset) / static_cast<double>(r.total) : 0;
        double secs = Seconds(r.updated - r.started);
        std::string speed =
            secs > 0
                ? ProgressBytes(static_cast<int64_t>(static_cast<double>(r.offset) / secs)) + "/s"
                : "";
        tw.Write(fmt::format("{}:\t{}\t{}\t{:>8}/{}\t{}\t\n", ref, state, Bar(f, bar_width),
                             ProgressBytes(r.offset), ProgressBytes(r.total), speed));
        break;
      }
      case State::kWaiting:
      case State::kResolving:
        tw.Write(fmt::format("{}:\t{}\t{}\t\n", ref, state, Bar(0, bar_width)));
        break;
      case State::kFailed:
        tw.Write(fmt::format(
            "{}:\t{}\t{}\t\n", ref, state,
            Bar(r.total > 0 ? static_cast<double>(r.offset) / static_cast<double>(r.total) : 0,
                bar_width)));
        break;
      default:
        tw.Write(fmt::format("{}:\t{}\t{}\t\n", ref, state, Bar(1, bar_width)));
        break;
    }
  }
  double secs = Seconds(elapsed);
  tw.Write(fmt::format(
      "elapsed: {:<4.1f}s\ttotal: {:>7}\t({}/s)\t\n", secs, ProgressBytes(total),
      ProgressBytes(secs > 0 ? static_cast<int64_t>(static_cast<double>(total) / secs) : 0)));
  return tw.Flush();
}

std::string ProgressDisplay::Render(const std::vector<client::TransferStatus>& rows,
                                    Clock::duration elapsed) {
  return Render(rows, elapsed, kBarWidth, false);
}

std::string ProgressDisplay::RenderToFit(const std::vector<client::TransferStatus>& rows,
                                         Clock::duration elapsed, int columns) {
  std::string text = Render(rows, elapsed);
  if (static_cast<int>(WidestLine(text)) <= columns) return text;
  // Narrower: digests shortened, then the bar shrunk (dropped under 10 columns); whatever is
  // still too wide is cut at the edge by Draw.
  text = Render(rows, elapsed, kBarWidth, true);
  const int over = static_cast<int>(WidestLine(text)) - columns;
  if (over <= 0) return text;
  int bar = kBarWidth - over;
  return Render(rows, elapsed, bar >= 10 ? bar : 0, true);
}

ProgressDisplay::ProgressDisplay(std::FILE* out, int width)
    : out_(out), width_(width), start_(Clock::now()) {}

int TerminalWidth(int fd) {
  if (::isatty(fd) != 1) return 0;
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col;
}

std::string ProgressDisplay::Fit(std::string_view line, int columns) {
  if (columns <= 0) return "";
  size_t chars = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    // A character starts at every byte that is not a UTF-8 continuation byte.
    if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80 &&
        chars++ == static_cast<size_t>(columns)) {
      return std::string(line.substr(0, i));
    }
  }
  return std::string(line);
}

void ProgressDisplay::Update(const std::vector<client::TransferStatus>& rows) {
  std::lock_guard lock(mu_);
  rows_ = rows;
  if (width_ <= 0) return;
  auto now = Clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw(false);
}

void ProgressDisplay::Finish() {
  std::lock_guard lock(mu_);
  Draw(true);
}

void ProgressDisplay::Draw(bool final) {
  // One column short of the width: a line that fills it wraps on some terminals.
  const int columns = std::max(1, width_ - 1);
  std::string text = width_ <= 0 ? Render(rows_, Clock::now() - start_)
                                 : RenderToFit(rows_, Clock::now() - start_, columns);
  if (width_ <= 0) {
    if (final) std::fputs(text.c_str(), out_);
    std::fflush(out_);
    return;
  }
  std::string frame;
  // Back to the first line of the previous frame, then each line erased before it is written.
  if (drawn_lines_ > 0) frame += fmt::format("\x1b[{}A", drawn_lines_);
  int lines = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    frame += "\x1b[2K";
    frame += Fit(std::string_view(text).substr(pos, nl - pos), columns);
    frame += '\n';
    ++lines;
    pos = nl + 1;
  }
  // A shorter frame than the last one: clear what is left below.
  for (int i = lines; i < drawn_lines_; ++i) frame += "\x1b[2K\n";
  if (drawn_lines_ > lines) frame += fmt::format("\x1b[{}A", drawn_lines_ - lines);
  drawn_lines_ = lines;
  std::fputs(frame.c_str(), out_);
  std::fflush(out_);
}

}  // namespace berth::cli

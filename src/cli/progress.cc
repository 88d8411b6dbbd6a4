#include "cli/progress.h"

#include <algorithm>

#include <fmt/format.h>

#include "cli/format.h"
#include "cli/tabwriter.h"

namespace berth::cli {
namespace {

using State = client::TransferStatus::State;
using Clock = std::chrono::steady_clock;

constexpr int kBarWidth = 40;

// progress.Bar at width 40: "|" + "+" * done + "-" * rest + "|".
std::string Bar(double fraction) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int inner = kBarWidth - 2;
  const int positive = static_cast<int>(inner * fraction);
  return "|" + std::string(static_cast<size_t>(positive), '+') +
         std::string(static_cast<size_t>(inner - positive), '-') + "|";
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

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
                                    Clock::duration elapsed) {
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
    switch (r.state) {
      case State::kDownloading:
      case State::kUploading: {
        double f = r.total > 0 ? static_cast<double>(r.offset) / static_cast<double>(r.total) : 0;
        double secs = Seconds(r.updated - r.started);
        std::string speed =
            secs > 0
                ? ProgressBytes(static_cast<int64_t>(static_cast<double>(r.offset) / secs)) + "/s"
                : "";
        tw.Write(fmt::format("{}:\t{}\t{}\t{:>8}/{}\t{}\t\n", r.ref, state, Bar(f),
                             ProgressBytes(r.offset), ProgressBytes(r.total), speed));
        break;
      }
      case State::kWaiting:
      case State::kResolving:
        tw.Write(fmt::format("{}:\t{}\t{}\t\n", r.ref, state, Bar(0)));
        break;
      case State::kFailed:
        tw.Write(fmt::format(
            "{}:\t{}\t{}\t\n", r.ref, state,
            Bar(r.total > 0 ? static_cast<double>(r.offset) / static_cast<double>(r.total) : 0)));
        break;
      default:
        tw.Write(fmt::format("{}:\t{}\t{}\t\n", r.ref, state, Bar(1)));
        break;
    }
  }
  double secs = Seconds(elapsed);
  tw.Write(fmt::format(
      "elapsed: {:<4.1f}s\ttotal: {:>7}\t({}/s)\t\n", secs, ProgressBytes(total),
      ProgressBytes(secs > 0 ? static_cast<int64_t>(static_cast<double>(total) / secs) : 0)));
  return tw.Flush();
}

ProgressDisplay::ProgressDisplay(std::FILE* out, bool tty)
    : out_(out), tty_(tty), start_(Clock::now()) {}

void ProgressDisplay::Update(const std::vector<client::TransferStatus>& rows) {
  std::lock_guard lock(mu_);
  rows_ = rows;
  if (!tty_) return;
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
  std::string text = Render(rows_, Clock::now() - start_);
  if (!tty_) {
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
    frame.append(text, pos, nl - pos);
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

#pragma once
// What ctr adds to a process's stdio on a terminal: the local terminal in raw mode with its size
// forwarded (ResizePty), and the signals ctr forwards to the task. The FIFOs and their copies are
// the client library's (berth/cio.h over client/process_io.h).
#include <atomic>
#include <csignal>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <termios.h>

#include "common/errdefs.h"
#include "common/fs.h"

namespace berth::cli {

// The local terminal in raw mode (containerd/console SetRaw: cfmakeraw but keeping OPOST);
// restored when destroyed.
class RawTerminal {
 public:
  // NotFound-ish error (the errno of tcgetattr) if `fd` is not a terminal.
  static Result<std::unique_ptr<RawTerminal>> Make(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  RawTerminal(int fd, const termios& saved) : fd_(fd), saved_(saved) {}
  int fd_;
  termios saved_;
};

struct WinSize {
  uint32_t width = 0;
  uint32_t height = 0;
};
// TIOCGWINSZ of `fd`.
Result<WinSize> TerminalSize(int fd);

// Catches signals through a signalfd and hands each to `fn` on its own thread. The signals must
// be blocked in every thread, so BlockForwardedSignals() runs first thing in the command, before
// gRPC starts threads. Stopped and joined when destroyed.
class SignalLoop {
 public:
  static Result<std::unique_ptr<SignalLoop>> Start(const sigset_t& set,
                                                   std::function<void(int)> fn);
  ~SignalLoop();
  SignalLoop(const SignalLoop&) = delete;
  SignalLoop& operator=(const SignalLoop&) = delete;

 private:
  SignalLoop(fs::UniqueFd sfd, fs::UniqueFd stop, std::function<void(int)> fn);
  fs::UniqueFd sfd_;
  fs::UniqueFd stop_;
  std::function<void(int)> fn_;
  std::thread thread_;
};

// The signals ctr's ForwardAllSignals relays (everything catchable a terminal or a supervisor
// sends; SIGCHLD, SIGURG and synchronous faults excluded) plus SIGWINCH.
sigset_t ForwardedSignals();
// Blocks ForwardedSignals() in the calling thread (and the threads it starts later).
void BlockForwardedSignals();

}  // namespace berth::cli

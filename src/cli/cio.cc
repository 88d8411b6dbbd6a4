#include "cli/cio.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

namespace berth::cli {
namespace {

void Signal(int efd) {
  uint64_t one = 1;
  (void)!::write(efd, &one, sizeof one);
}

}  // namespace

// ---- Terminal ----

Result<std::unique_ptr<RawTerminal>> RawTerminal::Make(int fd) {
  termios saved{};
  if (::tcgetattr(fd, &saved) != 0) return ErrnoError(errno, "get terminal attributes");
  termios raw = saved;
  ::cfmakeraw(&raw);
  raw.c_oflag |= OPOST;  // as containerd/console: output keeps its newline translation
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  if (::tcsetattr(fd, TCSANOW, &raw) != 0) return ErrnoError(errno, "set terminal raw");
  return std::unique_ptr<RawTerminal>(new RawTerminal(fd, saved));
}

RawTerminal::~RawTerminal() { ::tcsetattr(fd_, TCSANOW, &saved_); }

Result<WinSize> TerminalSize(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return ErrnoError(errno, "get terminal size");
  return WinSize{ws.ws_col, ws.ws_row};
}

// ---- Signals ----

sigset_t ForwardedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT, SIGTSTP,
                  SIGTTIN, SIGTTOU, SIGWINCH, SIGPWR, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF}) {
    sigaddset(&set, sig);
  }
  return set;
}

void BlockForwardedSignals() {
  sigset_t set = ForwardedSignals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalLoop::SignalLoop(fs::UniqueFd sfd, fs::UniqueFd stop, std::function<void(int)> fn)
    : sfd_(std::move(sfd)), stop_(std::move(stop)), fn_(std::move(fn)) {}

Result<std::unique_ptr<SignalLoop>> SignalLoop::Start(const sigset_t& set,
                                                      std::function<void(int)> fn) {
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) return ErrnoError(errno, "signalfd");
  int stop = ::eventfd(0, EFD_CLOEXEC);
  if (stop < 0) {
    ::close(sfd);
    return ErrnoError(errno, "eventfd");
  }
  std::unique_ptr<SignalLoop> loop(
      new SignalLoop(fs::UniqueFd(sfd), fs::UniqueFd(stop), std::move(fn)));
  loop->thread_ = std::thread([l = loop.get()] {
    while (true) {
      pollfd fds[2] = {{l->sfd_.Get(), POLLIN, 0}, {l->stop_.Get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      signalfd_siginfo info{};
      if (::read(l->sfd_.Get(), &info, sizeof info) != sizeof info) continue;
      l->fn_(static_cast<int>(info.ssi_signo));
    }
  });
  return loop;
}

SignalLoop::~SignalLoop() {
  Signal(stop_.Get());
  if (thread_.joinable()) thread_.join();
}

}  // namespace berth::cli

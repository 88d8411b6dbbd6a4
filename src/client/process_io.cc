#include "client/process_io.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <random>

#include <fmt/format.h>

namespace berth::client {
namespace {

// cio's random directory names: 32 hex digits.
std::string RandomHex() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", rd());
  return out;
}

Status MakeFifo(const std::string& path) {
  if (::mkfifo(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "mkfifo " + path);
  }
  return Ok();
}

// Writes everything unless `stop_fd` becomes readable first (fd is non-blocking).
bool WriteAll(int fd, const char* data, size_t len, int stop_fd) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n > 0) {
      data += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd fds[2] = {{fd, POLLOUT, 0}, {stop_fd, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) return false;
      if (fds[1].revents != 0) return false;
      continue;
    }
    return false;
  }
  return true;
}

// Blocking write of everything to a local fd (our stdout/stderr).
void WriteLocal(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    len -= static_cast<size_t>(n);
  }
}

void Signal(int efd) {
  uint64_t one = 1;
  (void)!::write(efd, &one, sizeof one);
}

}  // namespace

Result<FifoSet> NewFifoSet(const std::string& root, const std::string& id, bool with_stdin,
                           bool terminal) {
  BERTH_TRY(fs::MkdirAll(root, 0700));
  FifoSet set;
  set.dir = root + "/" + RandomHex();
  if (::mkdir(set.dir.c_str(), 0700) != 0) return ErrnoError(errno, "mkdir " + set.dir);
  set.terminal = terminal;
  if (with_stdin) set.in = fmt::format("{}/{}-stdin", set.dir, id);
  set.out = fmt::format("{}/{}-stdout", set.dir, id);
  if (!terminal) set.err = fmt::format("{}/{}-stderr", set.dir, id);
  for (const auto* p : {&set.in, &set.out, &set.err}) {
    if (p->empty()) continue;
    if (Status st = MakeFifo(*p); !st) {
      (void)fs::RemoveAll(set.dir);
      return std::move(st).error();
    }
  }
  return set;
}

// ---- ProcessIo ----

ProcessIo::ProcessIo(FifoSet fifos, Streams streams)
    : fifos_(std::move(fifos)), streams_(streams) {}

Result<std::unique_ptr<ProcessIo>> ProcessIo::Start(FifoSet fifos, Streams streams) {
  // A shim that goes away must not kill us with SIGPIPE while we feed its stdin.
  ::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<ProcessIo> io(new ProcessIo(std::move(fifos), streams));
  int cfd = ::eventfd(0, EFD_CLOEXEC);
  if (cfd < 0) return ErrnoError(errno, "eventfd");
  io->cancel_fd_.Reset(cfd);
  int sfd = ::eventfd(0, EFD_CLOEXEC);
  if (sfd < 0) return ErrnoError(errno, "eventfd");
  io->stop_fd_.Reset(sfd);
  if (!io->fifos_.out.empty() && streams.out >= 0) {
    io->outputs_.emplace_back(&ProcessIo::CopyOut, io.get(), 0, io->fifos_.out, streams.out);
  } else {
    io->output_opened_[0] = true;  // nothing to wake
  }
  if (!io->fifos_.err.empty() && streams.err >= 0) {
    io->outputs_.emplace_back(&ProcessIo::CopyOut, io.get(), 1, io->fifos_.err, streams.err);
  } else {
    io->output_opened_[1] = true;
  }
  if (!io->fifos_.in.empty() && streams.in >= 0) {
    io->input_ = std::thread(&ProcessIo::CopyIn, io.get(), io->fifos_.in, streams.in);
  }
  return io;
}

ProcessIo::~ProcessIo() {
  {
    // The closer's captures may not outlive us: no call from here on.
    std::lock_guard lock(mu_);
    stdin_closer_ = nullptr;
    stdin_eof_ = true;
  }
  Cancel();
  Signal(stop_fd_.Get());
  if (input_.joinable()) input_.join();
  for (auto& t : outputs_) {
    if (t.joinable()) t.join();
  }
  if (!detached_ && !fifos_.dir.empty()) (void)fs::RemoveAll(fifos_.dir);
}

void ProcessIo::SetStdinCloser(std::function<void()> closer) {
  std::unique_lock lock(mu_);
  if (stdin_eof_) {
    lock.unlock();
    if (closer) closer();
    return;
  }
  stdin_closer_ = std::move(closer);
}

void ProcessIo::CopyIn(std::string path, int from) {
  // Blocks until the shim opens its reading side (or Cancel opens one to wake us).
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  input_opened_ = true;
  if (fd < 0) return;
  fs::UniqueFd fifo(fd);
  if (cancelled_) return;
  ::fcntl(fifo.Get(), F_SETFL, ::fcntl(fifo.Get(), F_GETFL) | O_NONBLOCK);
  char buf[32 * 1024];
  while (true) {
    pollfd fds[2] = {{from, POLLIN, 0}, {cancel_fd_.Get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // EOF (or an unreadable stdin, which ends it the same way)
    if (!WriteAll(fifo.Get(), buf, static_cast<size_t>(n), cancel_fd_.Get())) return;
  }
  fifo.Reset();
  std::function<void()> closer;
  {
    std::lock_guard lock(mu_);
    stdin_eof_ = true;
    closer = std::move(stdin_closer_);
  }
  if (closer) closer();
}

void ProcessIo::CopyOut(int index, std::string path, int to) {
  // Blocks until the shim opens the writing side (or Cancel opens one to wake us).
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  output_opened_[index] = true;
  if (fd < 0) return;
  fs::UniqueFd fifo(fd);
  ::fcntl(fifo.Get(), F_SETFL, ::fcntl(fifo.Get(), F_GETFL) | O_NONBLOCK);
  char buf[32 * 1024];
  while (true) {
    pollfd fds[2] = {{fifo.Get(), POLLIN, 0}, {stop_fd_.Get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) {
      ssize_t n = ::read(fifo.Get(), buf, sizeof buf);
      if (n > 0) {
        WriteLocal(to, buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      return;  // every writer has gone
    }
    if (fds[1].revents != 0) return;  // hard stop (detach or destruction)
  }
}

void ProcessIo::Cancel() {
  if (cancelled_.exchange(true)) return;
  Signal(cancel_fd_.Get());
  // Wake a stdin copy still waiting in open(2) for the shim's reader.
  if (input_.joinable() && !input_opened_) {
    for (int i = 0; i < 400 && !input_opened_; ++i) {
      int fd = ::open(fifos_.in.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) {
        // Held until the writer's open returned, so that it cannot block again.
        for (int j = 0; j < 400 && !input_opened_; ++j) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        ::close(fd);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // Wake output copies whose FIFO no writer ever opened: a writer that comes and goes at once
  // gives them EOF. Opening for writing fails (ENXIO) until the reader sits in open(2).
  const std::string* paths[2] = {&fifos_.out, &fifos_.err};
  for (int index = 0; index < 2; ++index) {
    if (paths[index]->empty() || output_opened_[index]) continue;
    for (int i = 0; i < 400 && !output_opened_[index]; ++i) {
      int fd = ::open(paths[index]->c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) {
        ::close(fd);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

void ProcessIo::Detach() {
  detached_ = true;
  Signal(stop_fd_.Get());
}

void ProcessIo::Wait() {
  for (auto& t : outputs_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace berth::client

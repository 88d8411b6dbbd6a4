#pragma once
// Helpers for cri/io's tests: an io_context on its own thread, child processes reaped by PID
// even when a test fails, bounded waits on conditions (never timing assertions).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/fs.h"

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace berth::cri::io::testing {

// Runs an io_context on one thread, as the CRI plugin does; stops and joins on destruction.
class IoThread {
 public:
  IoThread() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    guard_.reset();
    io_.stop();
  }
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;
  asio::io_context& Io() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::jthread thread_;  // declared last: joined first, before io_ goes
};

// Polls `cond` every 5 ms for up to `limit`; returns whether it became true. A bound, not a
// timing assertion: the limit is far above what any run needs.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// A child process started with posix_spawn; killed (SIGKILL) and reaped by PID on destruction
// unless already waited for.
class Child {
 public:
  // `fds`: (child fd, our fd) pairs dup2'ed in the child.
  static std::optional<Child> Spawn(const std::vector<std::string>& argv,
                                    const std::vector<std::pair<int, int>>& fds = {}) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (auto [target, fd] : fds) {
      posix_spawn_file_actions_adddup2(&fa, fd, target);
    }
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      return std::nullopt;
    }
    return Child(pid);
  }

  Child(Child&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  Child& operator=(Child&&) = delete;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }

  pid_t Pid() const { return pid_; }
  // Waits (bounded) for the exit; the exit status, or nullopt if it did not exit in time.
  std::optional<int> Wait(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    std::optional<int> status;
    WaitFor(
        [&] {
          int st = 0;
          pid_t r = ::waitpid(pid_, &st, WNOHANG);
          if (r == pid_) {
            status = st;
            return true;
          }
          return r < 0;
        },
        limit);
    if (status) {
      pid_ = -1;
    }
    return status;
  }

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

inline std::string ReadAll(const std::string& path) {
  auto r = fs::ReadFile(path);
  return r ? *r : std::string();
}

// Splits at '\n' (the last element is what follows the last '\n', usually empty).
inline std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
}

}  // namespace berth::cri::io::testing

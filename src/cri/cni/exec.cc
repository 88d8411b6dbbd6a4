#include "cri/cni/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include <fmt/format.h>

#include "common/fs.h"

namespace berth::cri::cni::internal {
namespace {

constexpr size_t kMaxOutput = 16u << 20;
constexpr int kBusyRetries = 5;

// A pipe whose ends are both >= 3: if the daemon runs with stdio closed, an end numbered 0-2
// would be overwritten by the child's dup2 onto 0-2 before it is itself dup2-ed.
Status MakePipe(fs::UniqueFd& read_end, fs::UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  read_end.Reset(fds[0]);
  write_end.Reset(fds[1]);
  for (fs::UniqueFd* end : {&read_end, &write_end}) {
    if (end->Get() < 3) {
      int moved = ::fcntl(end->Get(), F_DUPFD_CLOEXEC, 3);
      if (moved < 0) return ErrnoError(errno, "dup pipe");
      end->Reset(moved);
    }
  }
  return Ok();
}

// Blocks SIGPIPE in this thread while a plugin's stdin is written, and swallows the SIGPIPE a
// write to a plugin that exited raised (thread-directed, so it is pending here), unless one was
// already pending before. Test binaries and library users need not ignore SIGPIPE.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    ::sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;
  ~SigpipeGuard() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      ::sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{};
        while (::sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_{};
  sigset_t old_{};
  bool was_pending_ = false;
};

// One spawn attempt: the raw posix_spawn error (0 on success) and the child's pid.
struct Spawned {
  int rc = 0;
  pid_t pid = -1;
};

Spawned Spawn(const std::string& path, const std::vector<std::string>& env, int in, int out,
              int err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in, 0);
  posix_spawn_file_actions_adddup2(&fa, out, 1);
  posix_spawn_file_actions_adddup2(&fa, err, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv = {const_cast<char*>(path.c_str()), nullptr};
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  Spawned s;
  s.rc = ::posix_spawn(&s.pid, path.c_str(), &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return s;
}

void Reap(pid_t pid, int& wstatus) {
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

Result<ExecOutput> Exec(const std::string& path, const std::vector<std::string>& env,
                        std::string_view input, std::chrono::milliseconds timeout) {
  SigpipeGuard sigpipe;
  fs::UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  BERTH_TRY(MakePipe(in_r, in_w));
  BERTH_TRY(MakePipe(out_r, out_w));
  BERTH_TRY(MakePipe(err_r, err_w));

  Spawned child;
  for (int attempt = 0;; ++attempt) {
    child = Spawn(path, env, in_r.Get(), out_w.Get(), err_w.Get());
    if (child.rc != ETXTBSY || attempt == kBusyRetries) break;
    // libcni retries "text file busy": the plugin binary is being installed right now.
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (child.rc != 0) return ErrnoError(child.rc, fmt::format("exec {}", path));
  const pid_t pid = child.pid;
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();

  // A pidfd tells when the plugin exits even if a grandchild keeps its output pipes open.
  fs::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  int wstatus = 0;
  if (!pidfd.Valid()) {
    int e = errno;
    ::kill(-pid, SIGKILL);
    Reap(pid, wstatus);
    return ErrnoError(e, "pidfd_open");
  }
  if (input.empty()) {
    in_w.Reset();
  } else {
    ::fcntl(in_w.Get(), F_SETFL, ::fcntl(in_w.Get(), F_GETFL) | O_NONBLOCK);
  }

  ExecOutput result;
  bool exited = false;
  size_t written = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pollfd pfds[4];
    int kinds[4];  // 0 stdin, 1 stdout, 2 stderr, 3 pidfd
    int n = 0;
    if (in_w.Valid()) {
      pfds[n] = {.fd = in_w.Get(), .events = POLLOUT, .revents = 0};
      kinds[n++] = 0;
    }
    if (out_r.Valid()) {
      pfds[n] = {.fd = out_r.Get(), .events = POLLIN, .revents = 0};
      kinds[n++] = 1;
    }
    if (err_r.Valid()) {
      pfds[n] = {.fd = err_r.Get(), .events = POLLIN, .revents = 0};
      kinds[n++] = 2;
    }
    if (!exited) {
      pfds[n] = {.fd = pidfd.Get(), .events = POLLIN, .revents = 0};
      kinds[n++] = 3;
    }
    if (n == 0) break;
    int wait_ms = 0;  // after the exit, only drain what is already buffered
    if (!exited) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      wait_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    int pr = ::poll(pfds, static_cast<nfds_t>(n), wait_ms);
    if (pr < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::kill(-pid, SIGKILL);
      Reap(pid, wstatus);
      return ErrnoError(e, "poll plugin output");
    }
    if (pr == 0) {
      if (exited) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(-pid, SIGKILL);  // the plugin's own process group, created above
        Reap(pid, wstatus);
        return Error(Errc::kDeadlineExceeded,
                     fmt::format("plugin {} did not finish within {} ms", path, timeout.count()));
      }
      continue;
    }
    for (int k = 0; k < n; ++k) {
      if (pfds[k].revents == 0) continue;
      if (kinds[k] == 0) {
        ssize_t w = ::write(in_w.Get(), input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
          in_w.Reset();  // done, or EPIPE: the plugin stopped reading
        }
      } else if (kinds[k] == 3) {
        exited = true;
        in_w.Reset();
      } else {
        fs::UniqueFd& fd = kinds[k] == 1 ? out_r : err_r;
        std::string& buf = kinds[k] == 1 ? result.out : result.err;
        char chunk[8192];
        ssize_t r = ::read(fd.Get(), chunk, sizeof chunk);
        if (r > 0) {
          if (buf.size() < kMaxOutput) buf.append(chunk, static_cast<size_t>(r));
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
          fd.Reset();
        }
      }
    }
  }
  Reap(pid, wstatus);
  result.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return result;
}

}  // namespace berth::cri::cni::internal

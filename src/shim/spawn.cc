#include "shim/spawn.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>

#include "common/fs.h"

extern char** environ;  // NOLINT

namespace berth::shim {

int ExitCodeFromWaitStatus(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return 255;
}

Result<std::string> LookPath(const std::string& name) {
  if (name.empty()) {
    return InvalidArgument("empty program name");
  }
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0) {
      return ErrnoError(errno, "exec: " + name);
    }
    return name;
  }
  const char* path_env = std::getenv("PATH");
  std::string path = path_env != nullptr
                         ? path_env
                         : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) {
      end = path.size();
    }
    std::string candidate(path, start, end - start);
    if (candidate.empty()) {
      candidate.push_back('.');
    }
    candidate.push_back('/');
    candidate.append(name);
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return NotFound("exec: \"" + name + "\": executable file not found in $PATH");
}

Result<pid_t> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) {
    return InvalidArgument("spawn: empty argv");
  }
  BERTH_ASSIGN_OR_RETURN(std::string program, LookPath(options.argv[0]));

  std::vector<char*> argv;
  argv.reserve(options.argv.size() + 1);
  for (const auto& a : options.argv) {
    argv.push_back(const_cast<char*>(a.c_str()));  // NOLINT: execve's signature
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; !options.clear_env && e != nullptr && *e != nullptr; ++e) {
    envp.push_back(*e);
  }
  for (const auto& e : options.env) {
    envp.push_back(const_cast<char*>(e.c_str()));  // NOLINT
  }
  envp.push_back(nullptr);

  // Move every source above the highest target first, so a dup2 onto a target never clobbers
  // a source that is still needed. The duplicates are close-on-exec; dup2 clears the flag on the
  // targets.
  int max_target = 2;
  for (const auto& [target, source] : options.fds) {
    max_target = std::max(max_target, target);
  }
  std::vector<fs::UniqueFd> moved;
  std::vector<std::pair<int, int>> plan;  // target, high source
  for (const auto& [target, source] : options.fds) {
    int high = ::fcntl(source, F_DUPFD_CLOEXEC, max_target + 1);
    if (high < 0) {
      return ErrnoError(errno, "spawn: dup descriptor");
    }
    moved.emplace_back(high);
    plan.emplace_back(target, high);
  }
  fs::UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull.Valid()) {
    return ErrnoError(errno, "spawn: open /dev/null");
  }
  int null_high = ::fcntl(devnull.Get(), F_DUPFD_CLOEXEC, max_target + 1);
  fs::UniqueFd null_fd(null_high);
  bool has_target[3] = {false, false, false};
  for (const auto& [target, source] : plan) {
    if (target >= 0 && target < 3) {
      has_target[target] = true;
    }
  }
  const char* dir = options.dir.empty() ? nullptr : options.dir.c_str();
  const char* prog = program.c_str();
  int parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    return ErrnoError(errno, "fork");
  }
  if (pid == 0) {
    // Child: system calls only.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
      signal(sig, SIG_DFL);  // NOLINT: async-signal-safe
    }
    if (options.parent_death_signal != 0) {
      prctl(PR_SET_PDEATHSIG, options.parent_death_signal);
      if (getppid() != parent) {
        _exit(127);
      }
    }
    if (options.new_session) {
      setsid();
    } else if (options.new_pgid) {
      setpgid(0, 0);
    }
    for (const auto& [target, source] : plan) {
      if (dup2(source, target) < 0) {
        _exit(127);
      }
    }
    for (int t = 0; t < 3; ++t) {
      if (!has_target[t]) {
        dup2(null_high, t);
      }
    }
    if (dir != nullptr && chdir(dir) != 0) {
      _exit(127);
    }
    execve(prog, argv.data(), envp.data());
    _exit(127);
  }
  return pid;
}

}  // namespace berth::shim

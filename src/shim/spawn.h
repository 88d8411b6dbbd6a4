#pragma once
// Starting helper processes (the OCI runtime, the shim's own re-exec) without running C++ between
// fork and exec: everything the child needs is prepared in the parent, the child only makes
// async-signal-safe system calls.
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "common/errdefs.h"

namespace berth::shim {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  // Extra environment entries ("K=V") appended to the current environment (or, with
  // `clear_env`, the whole environment).
  std::vector<std::string> env;
  bool clear_env = false;
  // Descriptors the child gets: {target fd, source fd}. Targets 0..2 not listed get /dev/null.
  // Every other descriptor of ours is close-on-exec and does not reach the child.
  std::vector<std::pair<int, int>> fds;
  std::string dir;              // working directory; empty = ours
  bool new_pgid = false;        // setpgid(0, 0)
  bool new_session = false;     // setsid()
  int parent_death_signal = 0;  // prctl(PR_SET_PDEATHSIG) when non-zero
};

// Starts the process; returns its pid. The caller owns reaping it.
Result<pid_t> Spawn(const SpawnOptions& options);

// Resolves a program name as exec does: a name with a '/' is used as is, else the first
// executable match in $PATH. NotFound naming the program otherwise.
Result<std::string> LookPath(const std::string& name);

// Exit code of a wait(2) status: the exit status, or 128 + signal number when killed.
int ExitCodeFromWaitStatus(int status);

}  // namespace berth::shim

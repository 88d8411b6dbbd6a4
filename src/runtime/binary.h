#pragma once
// Shim binaries: which binary serves a runtime name, and the `start` / `delete` invocations
// (containerd 1.6 runtime/v2/binary.go, runtime/v2/shim/util.go; reference/shim.md).
#include <sys/types.h>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/errdefs.h"

namespace berth::runtime {

// containerd's shim binary name: the last two dot-separated parts of the runtime name,
// "io.containerd.runc.v2" -> "containerd-shim-runc-v2". "" when there are fewer than two parts.
std::string BinaryName(std::string_view runtime);

// Maps runtime names to absolute shim paths, with a cache (containerd's resolveRuntimePath).
class ShimResolver {
 public:
  // `shims`: Config::shims. `daemon_dir`: directory of the daemon binary. `path_env`: $PATH.
  ShimResolver(std::map<std::string, std::string> shims, std::string daemon_dir,
               std::string path_env);

  // An absolute runtime (a Tasks.Create runtime_path, or a name that is a path) is used as is
  // and must exist. A configured name maps to its binary: an absolute path, or a bare name
  // searched in the daemon's directory, then $PATH. Any other name maps to BinaryName(runtime),
  // searched in $PATH, then the daemon's directory (containerd's order).
  // InvalidArgument for a malformed name; NotFound "runtime %q binary not installed %q".
  Result<std::string> Resolve(std::string_view runtime);

 private:
  Result<std::string> Search(const std::string& name, bool daemon_dir_first) const;

  std::map<std::string, std::string> shims_;
  std::string daemon_dir_;
  std::vector<std::string> path_;
  std::mutex mu_;
  std::map<std::string, std::string> cache_;  // runtime -> path
};

// What a shim invocation needs (containerd's client.CommandConfig).
struct ShimCommand {
  std::string binary;          // absolute path
  std::string ns;              // -namespace
  std::string id;              // -id
  std::string bundle;          // cwd (and -bundle for delete)
  std::string grpc_address;    // -address
  std::string ttrpc_address;   // env TTRPC_ADDRESS
  std::string publish_binary;  // -publish-binary (the daemon's executable)
  bool debug = false;          // -debug
  bool sched_core = false;     // env SCHED_CORE=1
};

struct CommandResult {
  int status = -1;  // exit code, or 128+signal
  std::string out;
  std::string err;
};

// Runs argv[0] (an absolute path) with `env`, in `cwd`, in its own process group, with `input`
// on stdin; collects stdout and stderr (into `out` for both when `combine`). Returns when the
// process has exited and its output pipes are drained (a daemonized grandchild that keeps them
// open does not hold it up). Fds other than 0-2 are not inherited. A process still running after
// `timeout` is killed (SIGKILL) and DeadlineExceeded returned.
Result<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env, const std::string& cwd,
                                 std::string_view input, bool combine,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Bounds of the shim invocations: `start` forks the serving shim and exits; `delete` is
// containerd's cleanup (io.containerd.timeout.shim.cleanup is 5 s; runc delete --force of a
// busy container may need longer).
inline constexpr std::chrono::milliseconds kStartTimeout = std::chrono::seconds(60);
inline constexpr std::chrono::milliseconds kDeleteTimeout = std::chrono::seconds(10);

// `<shim> -namespace NS -address ADDR -publish-binary EXE -id ID [-debug] start`, stdin = the
// serialized runtime options Any (or nothing). Returns the trimmed address it prints. A non-zero
// exit is an error carrying its combined output.
Result<std::string> ShimStart(const ShimCommand& cmd, std::string_view options);

// What `delete` printed (containerd.task.v2.DeleteResponse fields).
struct DeleteResult {
  uint32_t pid = 0;
  uint32_t exit_status = 0;
  int64_t exited_at_nanos = 0;  // unix nanos; 0 if unset
};
// `<shim> ... -id ID -bundle B delete` in cwd = bundle, for a shim that is gone.
Result<DeleteResult> ShimDelete(const ShimCommand& cmd);

// The environment for shim invocations: ours minus TTRPC_ADDRESS/GOMAXPROCS/SCHED_CORE, plus
// those set as containerd sets them.
std::vector<std::string> ShimEnv(const ShimCommand& cmd);

}  // namespace berth::runtime

#pragma once
// The OCI runtime driver: runc's command line as go-runc builds it, run synchronously.
//
// Every command runs with the global flags `--root <root> --log <bundle>/log.json --log-format
// json [--systemd-cgroup]` and dies with the shim (PR_SET_PDEATHSIG SIGKILL). Run() waits for
// exactly the runtime's pid, so exits of other children stay queued for the reaper. A failing
// command becomes an Error whose message is the last "error" line of log.json (the runtime's own
// words), else "<exit status>: <output>" as go-runc words it.
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "common/errdefs.h"

namespace berth::shim {

struct RuncConfig {
  std::string binary = "runc";  // Options.binary_name; absolute or looked up in PATH
  std::string root;             // --root (Options.root, else <state>/runc/<ns>: RuncRootFor)
  std::string log_path;         // --log (<bundle>/log.json)
  bool systemd_cgroup = false;  // Options.systemd_cgroup
};

struct CreateOpts {
  std::string bundle;
  std::string pid_file;
  std::string console_socket;  // empty = no terminal
  bool no_pivot = false;
  bool no_new_keyring = false;
};

struct ExecOpts {
  std::string process_file;  // the OCI process JSON
  std::string pid_file;
  std::string console_socket;
};

// The runtime's stdio for commands that start a process (create, exec): target fd -> our fd.
using StdioFds = std::vector<std::pair<int, int>>;

class Runc {
 public:
  explicit Runc(RuncConfig config) : config_(std::move(config)) {}
  const RuncConfig& Config() const { return config_; }

  // The full argument vector: binary, global flags, then `command` (exposed for tests).
  std::vector<std::string> Args(const std::vector<std::string>& command) const;

  Status Create(const std::string& id, const CreateOpts& opts, const StdioFds& stdio) const;
  Status Start(const std::string& id) const;
  Status Exec(const std::string& id, const ExecOpts& opts, const StdioFds& stdio) const;
  Status Kill(const std::string& id, int signal, bool all) const;
  Status Delete(const std::string& id, bool force) const;
  Status Pause(const std::string& id) const;
  Status Resume(const std::string& id) const;
  Result<std::vector<int>> Ps(const std::string& id) const;
  // `update --resources - <id>` with the LinuxResources JSON on stdin.
  Status Update(const std::string& id, const std::string& resources_json) const;

  struct Output {
    int exit_code = 0;
    std::string output;  // stdout (+ stderr when combined)
  };
  // Runs the runtime with `args` (after the global flags), feeding `input` on stdin. When `stdio`
  // is given the runtime gets those descriptors instead and output is not captured.
  Result<Output> Run(const std::vector<std::string>& command, const std::string& input,
                     const StdioFds* stdio, bool combined) const;

 private:
  // Error for a failed command: the last log.json error, else go-runc's text.
  Error CommandError(const std::string& what, const Output& out) const;
  Status RunChecked(const std::vector<std::string>& command, const std::string& what) const;

  RuncConfig config_;
};

// Commands (after the global flags), as go-runc builds them.
std::vector<std::string> CreateCommand(const std::string& id, const CreateOpts& opts);
std::vector<std::string> ExecCommand(const std::string& id, const ExecOpts& opts);
std::vector<std::string> KillCommand(const std::string& id, int signal, bool all);
std::vector<std::string> DeleteCommand(const std::string& id, bool force);

// The "msg" of the last line whose "level" is "error" in runc's JSON log text; "" if none.
std::string LastRuntimeError(const std::string& log_json);

// Parses `runc ps --format json` output (a JSON array of pids).
Result<std::vector<int>> ParsePsOutput(const std::string& json);

// Reads a pid file as go-runc does (decimal, surrounding whitespace allowed).
Result<int> ReadPidFile(const std::string& path);

}  // namespace berth::shim

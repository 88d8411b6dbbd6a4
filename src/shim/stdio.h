#pragma once
// A process's stdio as containerd hands it to the shim (pkg/process/io.go): FIFO paths (plain or
// fifo://), file:///path, binary:///path?args, or nothing.
//
// Without a terminal the runtime gets pipes and the shim copies between them and the client's
// FIFOs on its io_context: stdin FIFO -> process (EOF on the FIFO closes the process's stdin),
// process stdout/stderr -> FIFOs. Output FIFOs are opened read-write, so a client that goes
// away never causes EPIPE (output just stops once the FIFO buffer is full). With a terminal the
// pty master (received over the console socket) replaces the pipes: stdin FIFO -> master ->
// stdout FIFO. A binary:// stdout starts that logging program (args from the query; env only
// CONTAINER_ID and CONTAINER_NAMESPACE; the process's stdout on its fd 3, stderr on fd 4, and fd 5
// a pipe it closes when ready) and hands the runtime the pipes' write ends directly.
#include <sys/types.h>

#include <asio.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/errdefs.h"
#include "common/fs.h"
#include "shim/runc.h"

namespace berth::shim {

struct Stdio {
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  bool terminal = false;
  bool IsNull() const { return stdin_path.empty() && stdout_path.empty() && stderr_path.empty(); }
};

enum class StdioScheme { kNone, kFifo, kFile, kBinary };

struct StdioUri {
  StdioScheme scheme = StdioScheme::kNone;
  std::string path;
  // binary:// query arguments, in order ("k=v" pairs become "k", "v").
  std::vector<std::pair<std::string, std::string>> args;
};

// Parses one stdio string: "" -> kNone, "/p" or "fifo:///p" -> kFifo, "file:///p" -> kFile,
// "binary:///p?k=v&k2" -> kBinary. InvalidArgument for other schemes or relative file paths.
Result<StdioUri> ParseStdioUri(std::string_view text);

// Copies between a process and its client-side stdio. Lives on one io_context; not thread-safe.
class ProcessIo {
 public:
  // Prepares stdio for a process about to be started by the runtime: pipes (owned by uid/gid
  // when non-zero) for the streams the client asked for. `RuntimeFds()` then lists what the
  // runtime gets; call `Started()` once it has run.
  static Result<std::unique_ptr<ProcessIo>> Create(asio::io_context& io, const Stdio& stdio,
                                                   int uid, int gid,
                                                   const std::string& container_id = "",
                                                   const std::string& ns = "");
  ~ProcessIo();
  ProcessIo(const ProcessIo&) = delete;
  ProcessIo& operator=(const ProcessIo&) = delete;

  const StdioFds& RuntimeFds() const { return runtime_fds_; }
  // Closes the runtime's ends and starts copying.
  Status Started();
  // Terminal: copies stdin FIFO -> master -> stdout FIFO (takes the master).
  Status StartConsole(fs::UniqueFd master);
  // TIOCSWINSZ on the master (no-op without a terminal).
  Status Resize(unsigned width, unsigned height);
  // Stops copying stdin and closes the process's stdin (CloseIO).
  void CloseStdin();
  // Runs `fn` once every output copy has reached EOF (at once if none is running).
  void OnOutputDone(std::function<void()> fn);
  bool OutputDone() const { return active_outputs_ == 0; }
  // Stops everything and closes all descriptors (a logging binary gets SIGTERM).
  void Close();
  pid_t LoggerPid() const { return logger_pid_; }
  // The reaper collected the logger: never signal that pid again.
  void LoggerExited() { logger_pid_ = 0; }

 private:
  struct Pump;
  explicit ProcessIo(asio::io_context& io) : io_(io) {}
  void StartPump(fs::UniqueFd source, std::shared_ptr<fs::UniqueFd> sink, bool wait_for_writer,
                 bool is_output, bool is_stdin);
  void PumpDone(bool is_output);
  Status StartLogger(const StdioUri& uri, const std::string& container_id, const std::string& ns);

  asio::io_context& io_;
  Stdio stdio_;
  StdioFds runtime_fds_;
  std::vector<fs::UniqueFd> runtime_ends_;  // closed by Started()
  fs::UniqueFd stdin_fifo_;                 // our read end of the client's stdin FIFO
  fs::UniqueFd stdin_pipe_w_;               // writes to the process's stdin
  fs::UniqueFd stdout_pipe_r_;
  fs::UniqueFd stderr_pipe_r_;
  std::shared_ptr<fs::UniqueFd> stdout_sink_;
  std::shared_ptr<fs::UniqueFd> stderr_sink_;
  std::shared_ptr<fs::UniqueFd> master_;
  std::vector<std::shared_ptr<Pump>> pumps_;
  std::shared_ptr<Pump> stdin_pump_;
  int active_outputs_ = 0;
  pid_t logger_pid_ = 0;
  std::vector<std::function<void()>> output_waiters_;
};

}  // namespace berth::shim

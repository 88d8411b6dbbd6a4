#pragma once
// How a task's or exec'd process's stdio is wired (containerd's cio package). An IO creator is
// called with the process id when the task/process is created; the IO it makes names the paths
// the shim opens (FIFOs, a log file, nothing) and copies between them and local fds.
#include <functional>
#include <memory>
#include <string>

#include "berth/errors.h"

namespace berth::cio {

// Where FIFO directories go unless an option says otherwise (ctr: /run/containerd/fifo).
inline constexpr const char* kDefaultFifoDir = "/run/berth/fifo";

// The paths handed to the shim ("" = stream not used), cio.Config.
struct Config {
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  bool terminal = false;
};

// One process's stdio (cio.IO). Destroying it cancels what still copies, joins its threads and
// removes its FIFO directory.
class IO {
 public:
  virtual ~IO() = default;
  virtual const cio::Config& Config() const = 0;
  // Stops copies whose FIFO the shim never opened and the stdin copy; output the shim has
  // opened keeps flowing until it closes it (no output is lost).
  virtual void Cancel() = 0;
  // Blocks until the output copies are done (the process and everything holding its stdio has
  // exited).
  virtual void Wait() = 0;
  // Runs (once) when local stdin reaches EOF: the task closes the process's stdin then
  // (Task::CloseIO). Called by the library; nothing to do for IO without stdin.
  virtual void SetStdinCloser(std::function<void()> closer) = 0;
  // Leaves the stdio to the process (ctr run -d): local copies stop now and the FIFOs stay, so a
  // later attach finds them through the task's state.
  virtual void Detach() { Cancel(); }
};

// Makes the IO of process `id` (the container id for a task, the exec id for an exec).
using Creator = std::function<Result<std::unique_ptr<IO>>(const std::string& id)>;

struct StreamOptions {
  bool terminal = false;  // one pty stream: stdout only, no stderr (spec process.terminal)
  std::string fifo_dir;   // "" = kDefaultFifoDir
};

// cio.NullIO: no stdio at all (the shim gets /dev/null).
Creator NullIO();
// cio.NewCreator(cio.WithStreams(in, out, err)): FIFOs in a fresh directory under the fifo dir;
// threads copy `in` into the process's stdin (at EOF its stdin is closed) and its stdout/stderr
// into `out`/`err`. A negative fd leaves that stream out. The fds stay owned by the caller and
// must stay open until the IO is gone.
Creator WithStreams(int in, int out, int err, StreamOptions options = {});
// cio.WithStdio: this process's own stdin, stdout and stderr.
Creator Stdio(StreamOptions options = {});
// cio.LogFile: the shim appends stdout and stderr to `path` (absolute); no stdin.
Creator LogFile(const std::string& path);
// cio.LogURI: stdout and stderr go to a URI the shim understands (file://, binary://...).
Creator LogUri(const std::string& uri);

// Makes the IO of a process that exists from the stdio paths it was created with (cio.Attach).
using Attacher = std::function<Result<std::unique_ptr<IO>>(const Config& existing)>;
// cio.NewAttach(cio.WithStdio): this process's stdin, stdout and stderr copied to and from the
// process's FIFOs; the FIFOs are never removed (they belong to whoever created the process).
Attacher AttachStdio();

}  // namespace berth::cio

#pragma once
// The stdio of one exec process (containerd pkg/cri/io/exec_io.go, server/container_execsync.go):
// its FIFOs, its stdout/stderr captured into buffers capped at a size (ExecSync: 16 MiB each,
// the rest read and dropped) and/or handed to a live callback (streaming exec), its stdin, and
// the moment its output is complete.
//
// Completion = EOF on every output FIFO. Our readers are O_RDONLY|O_NONBLOCK, which would see
// EOF before the shim has opened its ends, so Create() also opens a placeholder writer on each
// output and holds it until the caller says the shim has its ends open (Started()). The shim
// opens them in the exec's Start and closes them once the process's output is complete (the
// process and every child that inherited its stdout/stderr exited); then EOF arrives.
//
// How the CRI plugin drives it (ExecSync; streaming exec alike with `on_output` and stdin):
//   1. exec_io = ExecIo::Create(io_context, <criState>/containers/<id>, exec_id,
//                               {.stdin = false, .tty = false, .max_output = 16 MiB})
//   2. task Exec(exec_id, process spec, stdin/stdout/stderr = exec_io.Fifos() paths,
//                terminal = tty)                         -- on error: exec_io.Close()
//   3. task Wait(exec_id) (asynchronously), task Start(exec_id)  -- on error: exec_io.Close()
//   4. after Start returned OK:  exec_io.Started()      -- never before: EOF would come at once
//   5. wait for the process exit and for exec_io to be done: OnDone(callback) on the io thread,
//      or Wait(remaining timeout) on a blocking thread (never the io thread).
//      Timeout: SIGKILL the exec, wait for its exit, then Cancel() (a background child may still
//      hold the output open) and answer DeadlineExceeded.
//   6. task Delete(exec_id); TakeOutput(); Close() (or destroy): FIFOs and their dir removed.
#include <asio.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/errdefs.h"
#include "cri/io/cri_log.h"
#include "cri/io/fifo.h"

namespace berth::cri::io {

// ExecSync's cap per stream (container_execsync.go: 16 MiB each for stdout and stderr).
inline constexpr size_t kDefaultExecOutputLimit = size_t{16} * 1024 * 1024;

struct ExecIoOptions {
  bool stdin = false;  // make and open a stdin FIFO (WriteStdin/CloseStdin)
  bool tty = false;    // terminal: no stderr FIFO
  // Bytes of each output kept for TakeOutput(); the rest is read and dropped. 0 keeps nothing.
  size_t max_output = kDefaultExecOutputLimit;
  // Optional live output (streaming exec): each chunk in order, called with an internal lock
  // held on the io thread (or in Cancel()/Close()'s caller), never twice at once for one
  // stream; must not block and must not call this ExecIo.
  std::function<void(StreamType, std::string_view)> on_output;
};

struct ExecOutput {
  std::string stdout_data;  // at most max_output bytes
  std::string stderr_data;
  uint64_t stdout_dropped = 0;  // bytes read beyond the cap
  uint64_t stderr_dropped = 0;
};

// Thread-safe; a movable handle, destroyed = Close(). The io_context must outlive it.
class ExecIo {
 public:
  // Makes `<root>/<random>/` (0700; `root` created 0700 if missing) with `<exec_id>-stdout`,
  // `<exec_id>-stderr` unless tty and `<exec_id>-stdin` if asked, opens the output readers plus
  // their placeholder writers (and stdin O_RDWR|O_NONBLOCK) and starts reading on `io`. Errors
  // as CreateFifoSet() and open(2); nothing is left behind on error.
  static Result<ExecIo> Create(asio::io_context& io, const std::string& root,
                               std::string_view exec_id, ExecIoOptions options = {});

  ExecIo(ExecIo&&) noexcept;
  ExecIo& operator=(ExecIo&&) noexcept;
  ExecIo(const ExecIo&) = delete;
  ExecIo& operator=(const ExecIo&) = delete;
  ~ExecIo();

  // The paths to give the exec (immutable).
  const FifoSet& Fifos() const;

  // The shim has opened its ends (the exec's Start returned OK): drops the placeholder writers,
  // so EOF arrives when the shim closes its ends. Idempotent.
  void Started();

  // `fn` is posted to the io_context once, with Ok() when every output reached EOF, or with
  // Canceled after Cancel()/Close() came first. Posted at once if that already happened.
  void OnDone(std::function<void(Status)> fn);
  // Blocks up to `timeout` for the same outcome: Ok, Canceled, or DeadlineExceeded when the
  // time ran out (nothing is cancelled then). Never call it on the io thread.
  Status Wait(std::chrono::nanoseconds timeout);
  bool Done() const;

  // Stops waiting: reads what is readable now, closes the readers and placeholder writers;
  // done callbacks get Canceled unless EOF came first. Idempotent. The FIFOs stay until Close().
  void Cancel();

  // Moves out what was captured so far (everything, once done). Later output, if any, is
  // captured afresh.
  ExecOutput TakeOutput();

  // As ContainerIo::WriteStdin/CloseStdin (writes may start right after Create(); CloseStdin
  // only after Started()). NotFound without stdin, FailedPrecondition after
  // CloseStdin()/Cancel()/Close().
  Status WriteStdin(std::string data, std::function<void(Status)> done);
  void CloseStdin();

  // Cancel() if not done, close stdin, remove the FIFO directory. Idempotent; errors: removing
  // the directory failed.
  Status Close();

 private:
  struct Impl;
  explicit ExecIo(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace berth::cri::io

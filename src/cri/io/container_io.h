#pragma once
// A CRI container's stdio (containerd pkg/cri/io/container_io.go): its FIFOs, the copy of its
// stdout/stderr into the CRI log file, live output for attach clients and its stdin.
//
// How the CRI plugin drives it (all on one asio::io_context it runs; nothing here blocks):
//   CreateContainer   io = ContainerIo::Create(<criState>/containers/<id>/io, id,
//                                             config.stdin, config.tty)
//                     keep `io` with the container (the FIFOs exist from now on).
//   StartContainer    log = config log path empty ? nullptr : LogFile::Open(<log dir>/<log_path>)
//                     io.Start(io_context, log, max_container_log_line_size)
//                     task Create with stdin/stdout/stderr = io.Fifos() paths,
//                     terminal = io.Fifos().terminal; task Wait; task Start.
//                     (Start may also come after the task Create: both sides open the FIFOs
//                     read-write and non-blocking, so neither waits for the other.)
//   ReopenContainerLog  log->Reopen()  (the LogFile the container record keeps)
//   attach            id = io.AddSink(...) for output; io.WriteStdin(...) for input;
//                     io.CloseStdin() at the client's stdin EOF when the container has
//                     stdin_once; io.RemoveSink(id) when the client goes.
//   task exit         task Delete first (the shim has then written all the output it had into
//                     the FIFOs), then io.Close(): reads what is left, flushes an unterminated
//                     line as P, removes the FIFOs. Also on a failed start and in
//                     RemoveContainer (Close is idempotent).
//   daemon restart    running task: io = ContainerIo::Reattach(FifoSet with the task's
//                     stdin/stdout/stderr paths and terminal flag), then Start() as above with
//                     a new LogFile on the stored LogPath. Created container without a task:
//                     Create() anew.
#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/errdefs.h"
#include "cri/io/cri_log.h"
#include "cri/io/fifo.h"
#include "cri/io/log_file.h"

namespace berth::cri::io {

// A receiver of a container's raw output (an attach client).
struct OutputSink {
  // Gets each chunk as read from the FIFO, stdout and stderr in their own order. Calls are
  // serialised (never two at once for one ContainerIo) and made with an internal lock held, on
  // the io thread (or in Close()'s caller): it must not block (queue the data) and must not call
  // AddSink/RemoveSink/Close of this ContainerIo. Return false to be removed.
  std::function<bool(StreamType, std::string_view)> write;
  // Called once when the ContainerIo closes with the sink still registered (no more output:
  // the attach stream ends); not called on RemoveSink or when `write` returned false. May be
  // empty. Same calling rules as `write`.
  std::function<void()> close;
};

// Thread-safe: every method may be called from any thread, the io thread included. A movable
// handle; destroying it detaches it (as Detach(): the FIFOs stay, for a container that may
// outlive the daemon; Close() removes them). The io_context given to Start() must outlive it.
class ContainerIo {
 public:
  // Makes `<fifo_root>/<random>/` (0700) with `<id>-stdout`, `<id>-stderr` (not with `tty`: a
  // terminal has no stderr) and `<id>-stdin` (only if `with_stdin`); Close() removes that
  // directory. Errors as CreateFifoSet().
  static Result<ContainerIo> Create(const std::string& fifo_root, std::string_view id,
                                    bool with_stdin, bool tty);
  // Takes FIFOs that already exist (those of a task still running after a daemon restart).
  // `fifos.stdout_path` must be set; `dir` may be empty. Close() removes just these FIFOs and
  // their directory if it is then empty. NotFound if a given path does not exist,
  // InvalidArgument if it is not a FIFO or stdout is missing.
  static Result<ContainerIo> Reattach(FifoSet fifos);

  ContainerIo(ContainerIo&&) noexcept;
  ContainerIo& operator=(ContainerIo&&) noexcept;
  ContainerIo(const ContainerIo&) = delete;
  ContainerIo& operator=(const ContainerIo&) = delete;
  ~ContainerIo();

  // The paths to give the task (immutable).
  const FifoSet& Fifos() const;

  // Opens the FIFOs O_RDWR|O_NONBLOCK (never blocks; the read side never sees EOF, even while the
  // shim is being restarted) and from then on, on `io`, copies stdout and stderr into `log` as
  // CRI records (CriLineEncoder with `max_line_size`, <= 0 = unlimited; `now` for tests) and to
  // the sinks. With a terminal only stdout exists and is logged as "stdout". A null `log`
  // discards the output (the FIFOs are still read, so the container never blocks on them).
  // FailedPrecondition if already started or closed; open errors as OpenFifoReadWrite(); nothing
  // stays open on error.
  Status Start(asio::io_context& io, std::shared_ptr<LogFile> log,
               int64_t max_line_size = kDefaultMaxLineSize, TimeSource now = nullptr);

  // Registers an attach client; it sees only output read after this call. Returns its id for
  // RemoveSink; returns 0 and calls `sink.close` at once if already closed.
  uint64_t AddSink(OutputSink sink);
  // Unregisters a sink; once this returns it gets no more calls. Unknown ids are ignored.
  void RemoveSink(uint64_t id);

  bool HasStdin() const { return !Fifos().stdin_path.empty(); }
  // Queues `data` for the container's stdin, written in call order. On acceptance returns Ok
  // and `done` (may be empty) is later posted to the io_context with Ok() once all of `data` is
  // in the FIFO, or with Canceled if stdin is closed first. The FIFO holds 64 KiB: wait for
  // `done` before sending more to keep memory bounded. NotFound when the container has no
  // stdin, FailedPrecondition before Start(), after CloseStdin() or Close().
  Status WriteStdin(std::string data, std::function<void(Status)> done);
  // Closes our end of the stdin FIFO once queued data is written: the shim sees EOF and closes
  // the process's stdin (stdin_once). Only once the task runs: before the shim has opened its
  // end, queued data would be lost and the shim would never see EOF. Idempotent; no-op without
  // stdin or before Start().
  void CloseStdin();

  // Stops copying: reads what is readable now without waiting, writes an unterminated last
  // line as P records, closes the FIFOs (queued stdin writes get Canceled), calls the sinks'
  // `close`, drops its reference to the LogFile and removes the FIFOs (see Create/Reattach).
  // Idempotent: later calls return Ok. Errors: removing the FIFOs failed (everything else is
  // closed anyway).
  Status Close();
  // Stops copying and closes our ends like Close(), but keeps the FIFOs: for a daemon shutting
  // down while the container runs (the shim keeps writing into them; the next daemon reattaches
  // with Reattach()). Idempotent; a later Close() removes the FIFOs.
  void Detach();

 private:
  struct Impl;
  explicit ContainerIo(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace berth::cri::io

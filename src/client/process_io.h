#pragma once
// The client side of a process's stdio as containerd's cio package does it: FIFOs in a fresh
// directory whose paths travel in Tasks.Create/Exec, and threads copying local fds into the
// stdin FIFO and the stdout/stderr FIFOs out. Shared by the client library (berth/cio.h) and the
// CLI (cli/cio.h adds the terminal and signal handling).
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/errdefs.h"
#include "common/fs.h"

namespace berth::client {

// cio.FIFOSet: paths handed to the shim ("" = stream not used). `dir` is removed by Close.
struct FifoSet {
  std::string dir;
  std::string in;
  std::string out;
  std::string err;
  bool terminal = false;
};

// cio.NewFIFOSetInDir: `root` (created 0700 if missing) / <random> / <id>-stdin|-stdout|-stderr
// (stderr omitted with a terminal; stdin omitted when `with_stdin` is false). The FIFOs are
// created here (mkfifo 0700) so both sides can open them in any order.
Result<FifoSet> NewFifoSet(const std::string& root, const std::string& id, bool with_stdin,
                           bool terminal);

// Copies between local fds and a FifoSet (cio.NewCreator + WithStreams): stdin (if any) is
// copied into the stdin FIFO once the shim opens it; at EOF the FIFO is closed and `on_stdin_eof`
// runs (ctr's stdinCloser: CloseIO). Each output FIFO is copied to its fd until the shim's side
// hangs up. Destroying it cancels what still runs, joins the threads and removes the directory.
class ProcessIo {
 public:
  struct Streams {
    int in = -1;  // -1: none
    int out = 1;
    int err = 2;
  };
  static Result<std::unique_ptr<ProcessIo>> Start(FifoSet fifos, Streams streams);
  ~ProcessIo();
  ProcessIo(const ProcessIo&) = delete;
  ProcessIo& operator=(const ProcessIo&) = delete;

  const FifoSet& Fifos() const { return fifos_; }
  // Runs (once) when local stdin reaches EOF; if EOF came before this is set, runs now.
  void SetStdinCloser(std::function<void()> closer);
  // cio Cancel: stops streams whose FIFO the shim never opened and the stdin copy. Streams the
  // shim has opened keep copying until it closes them (no output is lost).
  void Cancel();
  // Waits until the output copies are done.
  void Wait();
  // ctr -d: stops every copy now and keeps the FIFOs (the shim holds them; `tasks attach` finds
  // them through the task's state).
  void Detach();

 private:
  ProcessIo(FifoSet fifos, Streams streams);
  void CopyIn(std::string path, int from);
  void CopyOut(int index, std::string path, int to);

  FifoSet fifos_;
  Streams streams_;
  fs::UniqueFd cancel_fd_;  // eventfd: readable once cancelled (stdin copy stops)
  fs::UniqueFd stop_fd_;    // eventfd: readable once every copy must stop
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> detached_{false};
  std::atomic<bool> input_opened_{false};
  std::atomic<bool> output_opened_[2] = {false, false};
  std::mutex mu_;
  std::function<void()> stdin_closer_;
  bool stdin_eof_ = false;
  std::vector<std::thread> outputs_;
  std::thread input_;
};

}  // namespace berth::client

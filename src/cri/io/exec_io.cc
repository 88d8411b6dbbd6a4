#include "cri/io/exec_io.h"

#include <fcntl.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "common/log.h"
#include "cri/io/fifo_stream.h"

namespace berth::cri::io {
namespace {

struct Capture {
  std::string data;
  uint64_t dropped = 0;
};

}  // namespace

// Lock order: a FifoReader's lock, then mu_ (the readers' callbacks take mu_). So mu_ is never
// held while calling into a reader.
struct ExecIo::Impl {
  Impl(asio::io_context& io, FifoSet f, ExecIoOptions& o)
      : io(io), fifos(std::move(f)), max_output(o.max_output), on_output(std::move(o.on_output)) {}

  void OnData(StreamType type, std::string_view data) {
    {
      std::lock_guard lock(mu_);
      Capture& c = type == StreamType::kStdout ? out : err;
      size_t room = max_output > c.data.size() ? max_output - c.data.size() : 0;
      size_t take = std::min(room, data.size());
      c.data.append(data.substr(0, take));
      c.dropped += data.size() - take;  // read and dropped: the writer never blocks on the cap
    }
    if (on_output) {
      on_output(type, data);
    }
  }

  void OnEnd(bool eof) {
    std::lock_guard lock(mu_);
    if (eof && --open_outputs == 0 && !cancel_requested) {
      FinishLocked(Ok());
    }
  }

  void FinishLocked(const Status& st) {
    if (done) {
      return;
    }
    done = true;
    result = st;
    placeholders.clear();
    cv.notify_all();
    for (auto& fn : std::exchange(waiters, {})) {
      asio::post(io, [fn = std::move(fn), st] { fn(st); });
    }
  }

  asio::io_context& io;
  const FifoSet fifos;
  const size_t max_output;
  const std::function<void(StreamType, std::string_view)> on_output;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv;
  Capture out;
  Capture err;
  int open_outputs = 0;
  bool cancel_requested = false;
  bool done = false;
  bool closed = false;
  Status result;
  std::vector<std::function<void(Status)>> waiters;
  std::vector<fs::UniqueFd> placeholders;  // until Started()
  std::vector<std::shared_ptr<FifoReader>> readers;
  std::shared_ptr<FifoWriter> stdin_writer;
};

Result<ExecIo> ExecIo::Create(asio::io_context& io, const std::string& root,
                              std::string_view exec_id, ExecIoOptions options) {
  BERTH_ASSIGN_OR_RETURN(FifoSet fifos, CreateFifoSet(root, exec_id, options.stdin, options.tty));
  auto impl = std::make_shared<Impl>(io, std::move(fifos), options);
  ExecIo handle(impl);  // from here on an error return closes it and removes the FIFOs
  const FifoSet& f = impl->fifos;

  std::vector<std::pair<StreamType, std::string>> outputs = {{StreamType::kStdout, f.stdout_path}};
  if (!f.stderr_path.empty()) {
    outputs.emplace_back(StreamType::kStderr, f.stderr_path);
  }
  std::vector<std::shared_ptr<FifoReader>> readers;
  for (const auto& [type, path] : outputs) {
    fs::UniqueFd rd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!rd.Valid()) {
      return ErrnoError(errno, "open exec fifo " + path);
    }
    // Succeeds without blocking: a reader exists. Keeps EOF away until Started().
    fs::UniqueFd placeholder(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    if (!placeholder.Valid()) {
      return ErrnoError(errno, "open exec fifo " + path);
    }
    StreamType t = type;
    BERTH_ASSIGN_OR_RETURN(
        auto reader,
        FifoReader::Create(
            io, std::move(rd), [impl, t](std::string_view data) { impl->OnData(t, data); },
            [impl](bool eof) { impl->OnEnd(eof); }));
    std::lock_guard lock(impl->mu_);
    impl->placeholders.push_back(std::move(placeholder));
    impl->readers.push_back(reader);
    ++impl->open_outputs;
    readers.push_back(std::move(reader));
  }
  if (!f.stdin_path.empty()) {
    BERTH_ASSIGN_OR_RETURN(fs::UniqueFd fd, OpenFifoReadWrite(f.stdin_path));
    BERTH_ASSIGN_OR_RETURN(auto writer, FifoWriter::Create(io, std::move(fd)));
    std::lock_guard lock(impl->mu_);
    impl->stdin_writer = std::move(writer);
  }
  for (auto& r : readers) {
    r->Start();
  }
  return handle;
}

ExecIo::ExecIo(ExecIo&&) noexcept = default;

ExecIo& ExecIo::operator=(ExecIo&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      (void)Close();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

ExecIo::~ExecIo() {
  if (impl_) {
    Status st = Close();
    if (!st) {
      log::L().WithError(st.error()).Warn("close exec io");
    }
  }
}

const FifoSet& ExecIo::Fifos() const { return impl_->fifos; }

void ExecIo::Started() {
  std::lock_guard lock(impl_->mu_);
  impl_->placeholders.clear();
}

void ExecIo::OnDone(std::function<void(Status)> fn) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu_);
  if (d.done) {
    asio::post(d.io, [fn = std::move(fn), st = d.result] { fn(st); });
    return;
  }
  d.waiters.push_back(std::move(fn));
}

Status ExecIo::Wait(std::chrono::nanoseconds timeout) {
  Impl& d = *impl_;
  std::unique_lock lock(d.mu_);
  if (!d.cv.wait_for(lock, timeout, [&] { return d.done; })) {
    return Error(Errc::kDeadlineExceeded, "waiting for exec output");
  }
  return d.result;
}

bool ExecIo::Done() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->done;
}

void ExecIo::Cancel() {
  Impl& d = *impl_;
  std::vector<std::shared_ptr<FifoReader>> readers;
  {
    std::lock_guard lock(d.mu_);
    if (d.done) {
      d.readers.clear();  // all at EOF already
      return;
    }
    d.cancel_requested = true;
    readers = std::move(d.readers);
  }
  // Outside mu_: the readers' callbacks take it.
  for (auto& r : readers) {
    r->Stop(true);
  }
  std::lock_guard lock(d.mu_);
  d.FinishLocked(Error(Errc::kCanceled, "exec io canceled"));
}

ExecOutput ExecIo::TakeOutput() {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu_);
  ExecOutput o{.stdout_data = std::move(d.out.data),
               .stderr_data = std::move(d.err.data),
               .stdout_dropped = d.out.dropped,
               .stderr_dropped = d.err.dropped};
  d.out = {};
  d.err = {};
  return o;
}

Status ExecIo::WriteStdin(std::string data, std::function<void(Status)> done) {
  Impl& d = *impl_;
  if (d.fifos.stdin_path.empty()) {
    return NotFound("exec has no stdin");
  }
  std::shared_ptr<FifoWriter> writer;
  {
    std::lock_guard lock(d.mu_);
    if (!d.stdin_writer || d.cancel_requested || d.closed) {
      return FailedPrecondition("exec stdin is not open");
    }
    writer = d.stdin_writer;
  }
  writer->Write(std::move(data), std::move(done));
  return Ok();
}

void ExecIo::CloseStdin() {
  std::shared_ptr<FifoWriter> writer;
  {
    std::lock_guard lock(impl_->mu_);
    writer = std::move(impl_->stdin_writer);
  }
  if (writer) {
    writer->CloseWhenDrained();
  }
}

Status ExecIo::Close() {
  Impl& d = *impl_;
  Cancel();
  std::shared_ptr<FifoWriter> writer;
  {
    std::lock_guard lock(d.mu_);
    if (d.closed) {
      return Ok();
    }
    d.closed = true;
    writer = std::move(d.stdin_writer);
  }
  if (writer) {
    writer->Close();
  }
  return RemoveFifoSetDir(d.fifos);
}

}  // namespace berth::cri::io

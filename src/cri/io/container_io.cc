#include "cri/io/container_io.h"

#include <sys/stat.h>

#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "common/log.h"
#include "cri/io/fifo_stream.h"

namespace berth::cri::io {
namespace {

// Attach clients. Sinks are called with mu_ held: that serialises them (stdout and stderr may be
// read on different io threads) and makes "no call after RemoveSink returns" hold, which lets
// an attach session free itself right after RemoveSink. A sink removes itself by returning
// false, never by calling RemoveSink (that would deadlock).
class SinkList {
 public:
  uint64_t Add(OutputSink sink) {
    {
      std::lock_guard lock(mu_);
      if (!closed_) {
        uint64_t id = next_++;
        sinks_.emplace_back(id, std::move(sink));
        return id;
      }
    }
    if (sink.close) {
      sink.close();
    }
    return 0;
  }

  void Remove(uint64_t id) {
    std::lock_guard lock(mu_);
    std::erase_if(sinks_, [id](const auto& s) { return s.first == id; });
  }

  void Broadcast(StreamType stream, std::string_view data) {
    std::lock_guard lock(mu_);
    std::erase_if(sinks_, [&](const auto& s) { return !s.second.write(stream, data); });
  }

  void CloseAll() {
    std::lock_guard lock(mu_);
    closed_ = true;
    for (auto& [id, sink] : sinks_) {
      if (sink.close) {
        sink.close();
      }
    }
    sinks_.clear();
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<uint64_t, OutputSink>> sinks_;
  uint64_t next_ = 1;
  bool closed_ = false;
};

// One output stream's consumer: CRI records into the log, raw bytes to the sinks. Used only by
// its FifoReader, under the reader's lock.
struct LogStream {
  LogStream(StreamType type, std::shared_ptr<LogFile> log, int64_t max_line_size, TimeSource now,
            std::shared_ptr<SinkList> sinks)
      : type(type), log(std::move(log)), sinks(std::move(sinks)) {
    if (this->log) {
      encoder.emplace(type, max_line_size, std::move(now));
    }
  }

  void OnData(std::string_view data) {
    if (encoder) {
      records.clear();
      encoder->Encode(data, records);
      WriteRecords();
    }
    sinks->Broadcast(type, data);
  }

  void OnEnd() {
    if (encoder) {
      records.clear();
      encoder->Flush(records);
      WriteRecords();
    }
  }

  void WriteRecords() {
    if (records.empty()) {
      return;
    }
    // As containerd: a failed write is logged and the output still drained. Warn once per run
    // of failures, not per line.
    Status st = log->Write(records);
    if (!st && !failing) {
      log::L()
          .With("path", log->Path())
          .With("stream", StreamName(type))
          .WithError(st.error())
          .Warn("failed to write container log");
    }
    failing = !st;
    if (records.capacity() > size_t{64} * 1024) {
      std::string().swap(records);  // do not keep a big line's buffer around
    }
  }

  StreamType type;
  std::shared_ptr<LogFile> log;
  std::optional<CriLineEncoder> encoder;  // only with a log
  std::shared_ptr<SinkList> sinks;
  std::string records;
  bool failing = false;
};

enum class State { kCreated, kStarted, kClosed };

}  // namespace

struct ContainerIo::Impl {
  Impl(FifoSet f, bool owns) : fifos(std::move(f)), owns_dir(owns) {}

  const FifoSet fifos;
  const bool owns_dir;  // Create(): remove the whole dir; Reattach(): just the FIFOs
  const std::shared_ptr<SinkList> sinks = std::make_shared<SinkList>();

  std::mutex mu_;  // guards the rest; held across Close() so a second Close waits for the first
  State state = State::kCreated;
  std::shared_ptr<FifoReader> stdout_reader;
  std::shared_ptr<FifoReader> stderr_reader;
  std::shared_ptr<FifoWriter> stdin_writer;
};

Result<ContainerIo> ContainerIo::Create(const std::string& fifo_root, std::string_view id,
                                        bool with_stdin, bool tty) {
  BERTH_ASSIGN_OR_RETURN(FifoSet fifos, CreateFifoSet(fifo_root, id, with_stdin, tty));
  return ContainerIo(std::make_shared<Impl>(std::move(fifos), true));
}

Result<ContainerIo> ContainerIo::Reattach(FifoSet fifos) {
  if (fifos.stdout_path.empty()) {
    return InvalidArgument("reattach container io: no stdout fifo");
  }
  for (const std::string* p : {&fifos.stdin_path, &fifos.stdout_path, &fifos.stderr_path}) {
    if (p->empty()) {
      continue;
    }
    struct stat st {};
    if (::lstat(p->c_str(), &st) != 0) {
      return ErrnoError(errno, "reattach container io: " + *p);
    }
    if (!S_ISFIFO(st.st_mode)) {
      return InvalidArgument("reattach container io: " + *p + " is not a fifo");
    }
  }
  if (fifos.dir.empty()) {
    auto slash = fifos.stdout_path.find_last_of('/');
    if (slash != std::string::npos) {
      fifos.dir = fifos.stdout_path.substr(0, slash);
    }
  }
  return ContainerIo(std::make_shared<Impl>(std::move(fifos), false));
}

ContainerIo::ContainerIo(ContainerIo&&) noexcept = default;

ContainerIo& ContainerIo::operator=(ContainerIo&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      (void)Close();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

ContainerIo::~ContainerIo() {
  if (impl_) Detach();
}

const FifoSet& ContainerIo::Fifos() const { return impl_->fifos; }

Status ContainerIo::Start(asio::io_context& io, std::shared_ptr<LogFile> log, int64_t max_line_size,
                          TimeSource now) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu_);
  if (d.state != State::kCreated) {
    return FailedPrecondition("container io already started or closed");
  }
  auto make_reader = [&](const std::string& path,
                         StreamType type) -> Result<std::shared_ptr<FifoReader>> {
    BERTH_ASSIGN_OR_RETURN(fs::UniqueFd fd, OpenFifoReadWrite(path));
    auto stream = std::make_shared<LogStream>(type, log, max_line_size, now, d.sinks);
    return FifoReader::Create(
        io, std::move(fd), [stream](std::string_view data) { stream->OnData(data); },
        [stream](bool) { stream->OnEnd(); });
  };
  // Open everything before starting anything, so an error leaves nothing behind.
  std::shared_ptr<FifoReader> out;
  std::shared_ptr<FifoReader> err;
  std::shared_ptr<FifoWriter> in;
  BERTH_ASSIGN_OR_RETURN(out, make_reader(d.fifos.stdout_path, StreamType::kStdout));
  if (!d.fifos.stderr_path.empty() && !d.fifos.terminal) {
    auto r = make_reader(d.fifos.stderr_path, StreamType::kStderr);
    if (!r) {
      out->Stop(false);
      return std::move(r).error();
    }
    err = std::move(*r);
  }
  if (!d.fifos.stdin_path.empty()) {
    auto w = [&]() -> Result<std::shared_ptr<FifoWriter>> {
      BERTH_ASSIGN_OR_RETURN(fs::UniqueFd fd, OpenFifoReadWrite(d.fifos.stdin_path));
      return FifoWriter::Create(io, std::move(fd));
    }();
    if (!w) {
      out->Stop(false);
      if (err) {
        err->Stop(false);
      }
      return std::move(w).error();
    }
    in = std::move(*w);
  }
  d.stdout_reader = std::move(out);
  d.stderr_reader = std::move(err);
  d.stdin_writer = std::move(in);
  d.stdout_reader->Start();
  if (d.stderr_reader) {
    d.stderr_reader->Start();
  }
  d.state = State::kStarted;
  return Ok();
}

uint64_t ContainerIo::AddSink(OutputSink sink) { return impl_->sinks->Add(std::move(sink)); }

void ContainerIo::RemoveSink(uint64_t id) { impl_->sinks->Remove(id); }

Status ContainerIo::WriteStdin(std::string data, std::function<void(Status)> done) {
  Impl& d = *impl_;
  if (d.fifos.stdin_path.empty()) {
    return NotFound("container has no stdin");
  }
  std::shared_ptr<FifoWriter> writer;
  {
    std::lock_guard lock(d.mu_);
    if (d.state != State::kStarted || !d.stdin_writer) {
      return FailedPrecondition("container stdin is not open");
    }
    writer = d.stdin_writer;
  }
  writer->Write(std::move(data), std::move(done));
  return Ok();
}

void ContainerIo::CloseStdin() {
  Impl& d = *impl_;
  std::shared_ptr<FifoWriter> writer;
  {
    std::lock_guard lock(d.mu_);
    writer = std::move(d.stdin_writer);
  }
  if (writer) {
    writer->CloseWhenDrained();
  }
}

void ContainerIo::Detach() {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu_);
  if (d.state == State::kClosed) return;
  d.state = State::kClosed;
  if (d.stdout_reader) d.stdout_reader->Stop(true);
  if (d.stderr_reader) d.stderr_reader->Stop(true);
  d.stdout_reader.reset();
  d.stderr_reader.reset();
  if (d.stdin_writer) {
    d.stdin_writer->Close();
    d.stdin_writer.reset();
  }
  d.sinks->CloseAll();
}

Status ContainerIo::Close() {
  Impl& d = *impl_;
  std::lock_guard lock(d.mu_);
  if (d.state == State::kClosed) {
    return d.owns_dir ? RemoveFifoSetDir(d.fifos) : RemoveFifoPaths(d.fifos);
  }
  d.state = State::kClosed;
  // Drain first: the shim has written everything it had, and an unterminated last line is
  // flushed as P by the reader's end callback.
  if (d.stdout_reader) {
    d.stdout_reader->Stop(true);
  }
  if (d.stderr_reader) {
    d.stderr_reader->Stop(true);
  }
  d.stdout_reader.reset();  // drops the streams' LogFile references
  d.stderr_reader.reset();
  if (d.stdin_writer) {
    d.stdin_writer->Close();
    d.stdin_writer.reset();
  }
  d.sinks->CloseAll();
  return d.owns_dir ? RemoveFifoSetDir(d.fifos) : RemoveFifoPaths(d.fifos);
}

}  // namespace berth::cri::io

#include "shim/stdio.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>

#include "common/log.h"
#include "shim/spawn.h"

namespace berth::shim {
namespace {

constexpr size_t kCopyBufferSize = 32 * 1024;  // as containerd's bufPool

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// %XX decoding as Go's url.PathUnescape / QueryUnescape (`plus` turns '+' into ' ').
std::string PercentDecode(std::string_view s, bool plus) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

Result<fs::UniqueFd> OpenOutput(const StdioUri& uri, const std::string& text) {
  switch (uri.scheme) {
    case StdioScheme::kNone:
      return fs::UniqueFd();
    case StdioScheme::kFifo: {
      // Read-write: we are a reader too, so writing never fails with EPIPE when the client goes
      // away (containerd opens the FIFO O_WRONLY and O_RDONLY for the same reason).
      int fd = ::open(uri.path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) {
        return ErrnoError(errno, "containerd-shim: opening w/o fifo \"" + uri.path + "\" failed");
      }
      return fs::UniqueFd(fd);
    }
    case StdioScheme::kFile: {
      auto slash = uri.path.find_last_of('/');
      if (slash != std::string::npos && slash > 0) {
        BERTH_TRY(fs::MkdirAll(uri.path.substr(0, slash), 0755));
      }
      int fd = ::open(uri.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) {
        return ErrnoError(errno, "containerd-shim: opening file \"" + uri.path + "\" failed");
      }
      return fs::UniqueFd(fd);
    }
    case StdioScheme::kBinary:
      return NotImplemented("stdio " + text + ": a binary:// logger must be given as stdout");
  }
  return InvalidArgument("stdio " + text);
}

}  // namespace

Result<StdioUri> ParseStdioUri(std::string_view text) {
  StdioUri uri;
  if (text.empty()) {
    return uri;
  }
  auto sep = text.find("://");
  if (sep == std::string_view::npos) {
    // A plain path is a FIFO (containerd's default).
    uri.scheme = StdioScheme::kFifo;
    uri.path = std::string(text);
    return uri;
  }
  std::string_view scheme = text.substr(0, sep);
  std::string_view rest = text.substr(sep + 3);
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  // url.Parse: "scheme://host/path"; containerd uses an empty host.
  if (!rest.empty() && rest.front() != '/') {
    auto slash = rest.find('/');
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  }
  uri.path = PercentDecode(rest, false);
  if (scheme == "fifo") {
    uri.scheme = StdioScheme::kFifo;
  } else if (scheme == "file") {
    uri.scheme = StdioScheme::kFile;
  } else if (scheme == "binary") {
    uri.scheme = StdioScheme::kBinary;
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view kv = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (kv.empty()) {
        continue;
      }
      auto eq = kv.find('=');
      if (eq == std::string_view::npos) {
        uri.args.emplace_back(PercentDecode(kv, true), "");
      } else {
        uri.args.emplace_back(PercentDecode(kv.substr(0, eq), true),
                              PercentDecode(kv.substr(eq + 1), true));
      }
    }
  } else {
    return InvalidArgument("unknown STDIO scheme " + std::string(scheme));
  }
  if (uri.path.empty() || uri.path.front() != '/') {
    return InvalidArgument("stdio " + std::string(text) + ": path must be absolute");
  }
  return uri;
}

// One copy loop: waits for the source to be readable, reads, writes everything to the sink
// (waiting for writability on EAGAIN), until EOF or an error on either side.
struct ProcessIo::Pump : std::enable_shared_from_this<ProcessIo::Pump> {
  Pump(asio::io_context& io, int src_fd, int dst_fd) : src(io, src_fd), dst(io, dst_fd) {}

  void ReadSome() {
    src.async_wait(asio::posix::stream_descriptor::wait_read,
                   [self = shared_from_this()](const asio::error_code& ec) {
                     if (ec || self->finished) {
                       self->Finish();
                       return;
                     }
                     self->Transfer();
                   });
  }

  // Moves what the source has. splice(2) first: one side is always a pipe or FIFO, so the data
  // goes kernel to kernel and an idle stream costs no buffer. Falls back to read/write with a
  // buffer that only lives while data is in flight (O_APPEND files refuse splice).
  void Transfer() {
    while (use_splice) {
      ssize_t n = ::splice(src.native_handle(), nullptr, dst.native_handle(), nullptr,
                           kCopyBufferSize, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) {
        ReadSome();
        return;
      }
      if (n == 0) {
        Finish();  // EOF
        return;
      }
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN) {
        // The source was readable, so the destination is full: wait for room.
        dst.async_wait(asio::posix::stream_descriptor::wait_write,
                       [self = shared_from_this()](const asio::error_code& ec) {
                         if (ec || self->finished) {
                           self->Finish();
                           return;
                         }
                         self->ReadSome();
                       });
        return;
      }
      if (errno == EINVAL || errno == ENOSYS) {
        use_splice = false;
        break;
      }
      Finish();  // EPIPE (reader gone), EIO (pty slave gone)
      return;
    }
    buf.resize(kCopyBufferSize);
    ssize_t n = ::read(src.native_handle(), buf.data(), buf.size());
    if (n > 0) {
      len = static_cast<size_t>(n);
      off = 0;
      WriteSome();
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      ReadSome();
    } else {
      Finish();  // EOF, or EIO from a pty master whose slave is gone
    }
  }

  void WriteSome() {
    while (off < len) {
      ssize_t n = ::write(dst.native_handle(), buf.data() + off, len - off);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        dst.async_wait(asio::posix::stream_descriptor::wait_write,
                       [self = shared_from_this()](const asio::error_code& ec) {
                         if (ec || self->finished) {
                           self->Finish();
                           return;
                         }
                         self->WriteSome();
                       });
        return;
      }
      Finish();  // EPIPE: the reader is gone
      return;
    }
    std::vector<char>().swap(buf);  // drained: idle streams hold no buffer
    ReadSome();
  }

  void Finish() { Stop(); }

  // Closes both ends, frees the buffer and reports completion once (unless `done` was dropped).
  void Stop() {
    finished = true;
    asio::error_code ignored;
    src.close(ignored);
    dst.close(ignored);
    std::vector<char>().swap(buf);
    if (auto fn = std::exchange(done, nullptr)) {
      fn();
    }
  }

  asio::posix::stream_descriptor src;
  asio::posix::stream_descriptor dst;
  std::vector<char> buf;  // only while a read/write copy is in flight
  bool use_splice = true;
  size_t len = 0;
  size_t off = 0;
  bool finished = false;
  std::function<void()> done;
};

Result<std::unique_ptr<ProcessIo>> ProcessIo::Create(asio::io_context& io, const Stdio& stdio,
                                                     int uid, int gid,
                                                     const std::string& container_id,
                                                     const std::string& ns) {
  std::unique_ptr<ProcessIo> pio(new ProcessIo(io));
  pio->stdio_ = stdio;
  BERTH_ASSIGN_OR_RETURN(StdioUri out_uri, ParseStdioUri(stdio.stdout_path));
  if (out_uri.scheme == StdioScheme::kBinary && !stdio.terminal) {
    BERTH_TRY(pio->StartLogger(out_uri, container_id, ns));
    return pio;
  }
  BERTH_ASSIGN_OR_RETURN(StdioUri err_uri, ParseStdioUri(stdio.stderr_path));
  BERTH_ASSIGN_OR_RETURN(StdioUri in_uri, ParseStdioUri(stdio.stdin_path));

  BERTH_ASSIGN_OR_RETURN(fs::UniqueFd out_sink, OpenOutput(out_uri, stdio.stdout_path));
  if (out_sink.Valid()) {
    pio->stdout_sink_ = std::make_shared<fs::UniqueFd>(std::move(out_sink));
  }
  if (!stdio.terminal) {
    if (err_uri.scheme == StdioScheme::kFile && out_uri.scheme == StdioScheme::kFile &&
        err_uri.path == out_uri.path) {
      pio->stderr_sink_ = pio->stdout_sink_;  // one file for both, as containerd's sameFile
    } else {
      BERTH_ASSIGN_OR_RETURN(fs::UniqueFd err_sink, OpenOutput(err_uri, stdio.stderr_path));
      if (err_sink.Valid()) {
        pio->stderr_sink_ = std::make_shared<fs::UniqueFd>(std::move(err_sink));
      }
    }
  }
  if (in_uri.scheme != StdioScheme::kNone) {
    // Non-blocking: the client may open its writing end later; we wait for readability.
    int fd = ::open(in_uri.path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      return ErrnoError(errno, "failed to open stdin fifo " + in_uri.path);
    }
    pio->stdin_fifo_.Reset(fd);
  }
  if (stdio.terminal) {
    return pio;  // the runtime's stdio is /dev/null; the pty carries everything
  }
  auto make_pipe = [&](int target, bool runtime_reads) -> Result<fs::UniqueFd> {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return ErrnoError(errno, "failed to create stdio pipes");
    }
    fs::UniqueFd r(p[0]);
    fs::UniqueFd w(p[1]);
    if (uid != 0 || gid != 0) {
      if (::fchown(r.Get(), uid, gid) != 0 || ::fchown(w.Get(), uid, gid) != 0) {
        return ErrnoError(errno, "chown stdio pipes");
      }
    }
    fs::UniqueFd& theirs = runtime_reads ? r : w;
    fs::UniqueFd& ours = runtime_reads ? w : r;
    pio->runtime_fds_.emplace_back(target, theirs.Get());
    pio->runtime_ends_.push_back(std::move(theirs));
    ::fcntl(ours.Get(), F_SETFL, O_NONBLOCK);
    return std::move(ours);
  };
  if (pio->stdin_fifo_.Valid()) {
    BERTH_ASSIGN_OR_RETURN(pio->stdin_pipe_w_, make_pipe(0, true));
  }
  if (pio->stdout_sink_) {
    BERTH_ASSIGN_OR_RETURN(pio->stdout_pipe_r_, make_pipe(1, false));
  }
  if (pio->stderr_sink_) {
    BERTH_ASSIGN_OR_RETURN(pio->stderr_pipe_r_, make_pipe(2, false));
  }
  return pio;
}

ProcessIo::~ProcessIo() { Close(); }

Status ProcessIo::StartLogger(const StdioUri& uri, const std::string& container_id,
                              const std::string& ns) {
  int out[2];
  int err[2];
  int ready[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "failed to create stdout pipes");
  }
  fs::UniqueFd out_r(out[0]);
  fs::UniqueFd out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "failed to create stderr pipes");
  }
  fs::UniqueFd err_r(err[0]);
  fs::UniqueFd err_w(err[1]);
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    return ErrnoError(errno, "pipe");
  }
  fs::UniqueFd ready_r(ready[0]);
  fs::UniqueFd ready_w(ready[1]);
  SpawnOptions so{.argv = {uri.path},
                  .env = {"CONTAINER_ID=" + container_id, "CONTAINER_NAMESPACE=" + ns},
                  .clear_env = true,
                  .fds = {{3, out_r.Get()}, {4, err_r.Get()}, {5, ready_w.Get()}}};
  for (const auto& [k, v] : uri.args) {
    so.argv.push_back(k);
    if (!v.empty()) {
      so.argv.push_back(v);
    }
  }
  auto pid = Spawn(so);
  if (!pid) {
    return std::move(pid).error().Wrap("failed to start binary process");
  }
  logger_pid_ = *pid;
  ready_w.Reset();
  // Wait until the logger is ready (it closes fd 5, or exits), as containerd does.
  char b;
  while (::read(ready_r.Get(), &b, 1) < 0 && errno == EINTR) {
  }
  runtime_fds_ = {{1, out_w.Get()}, {2, err_w.Get()}};
  runtime_ends_.push_back(std::move(out_w));
  runtime_ends_.push_back(std::move(err_w));
  return Ok();
}

void ProcessIo::StartPump(fs::UniqueFd source, std::shared_ptr<fs::UniqueFd> sink,
                          bool wait_for_writer, bool is_output, bool is_stdin) {
  (void)wait_for_writer;
  int dst = ::fcntl(sink->Get(), F_DUPFD_CLOEXEC, 3);
  if (dst < 0) {
    log::L().With("error", std::strerror(errno)).Warn("stdio: dup sink");
    return;
  }
  ::fcntl(dst, F_SETFL, ::fcntl(dst, F_GETFL) | O_NONBLOCK);
  auto pump = std::make_shared<Pump>(io_, source.Release(), dst);
  if (is_output) {
    ++active_outputs_;
  }
  pump->done = [this, is_output] { PumpDone(is_output); };
  pumps_.push_back(pump);
  if (is_stdin) {
    stdin_pump_ = pump;
  }
  pump->ReadSome();
}

void ProcessIo::PumpDone(bool is_output) {
  if (!is_output) {
    return;
  }
  if (--active_outputs_ == 0) {
    // Release the client's FIFOs so it sees EOF once the process's output is complete.
    stdout_sink_.reset();
    stderr_sink_.reset();
    for (auto& fn : std::exchange(output_waiters_, {})) {
      fn();
    }
  }
}

Status ProcessIo::Started() {
  runtime_ends_.clear();
  runtime_fds_.clear();
  if (stdout_pipe_r_.Valid()) {
    StartPump(std::move(stdout_pipe_r_), stdout_sink_, false, true, false);
  }
  if (stderr_pipe_r_.Valid()) {
    StartPump(std::move(stderr_pipe_r_), stderr_sink_, false, true, false);
  }
  if (stdin_fifo_.Valid() && stdin_pipe_w_.Valid()) {
    auto sink = std::make_shared<fs::UniqueFd>(std::move(stdin_pipe_w_));
    StartPump(std::move(stdin_fifo_), sink, true, false, true);
  }
  if (active_outputs_ == 0) {
    stdout_sink_.reset();
    stderr_sink_.reset();
  }
  return Ok();
}

Status ProcessIo::StartConsole(fs::UniqueFd master) {
  runtime_ends_.clear();
  runtime_fds_.clear();
  ::fcntl(master.Get(), F_SETFL, ::fcntl(master.Get(), F_GETFL) | O_NONBLOCK);
  master_ = std::make_shared<fs::UniqueFd>(std::move(master));
  if (stdin_fifo_.Valid()) {
    StartPump(std::move(stdin_fifo_), master_, true, false, true);
  }
  if (stdout_sink_) {
    int src = ::fcntl(master_->Get(), F_DUPFD_CLOEXEC, 3);
    if (src < 0) {
      return ErrnoError(errno, "failed to start console copy");
    }
    StartPump(fs::UniqueFd(src), stdout_sink_, false, true, false);
  }
  return Ok();
}

Status ProcessIo::Resize(unsigned width, unsigned height) {
  if (!master_) {
    return Ok();
  }
  struct winsize ws {};
  ws.ws_col = static_cast<unsigned short>(width);   // NOLINT(google-runtime-int)
  ws.ws_row = static_cast<unsigned short>(height);  // NOLINT(google-runtime-int)
  if (::ioctl(master_->Get(), TIOCSWINSZ, &ws) != 0) {
    return ErrnoError(errno, "resize console");
  }
  return Ok();
}

void ProcessIo::CloseStdin() {
  if (stdin_pump_) {
    stdin_pump_->done = nullptr;
    stdin_pump_->Stop();
    stdin_pump_.reset();
  }
  stdin_fifo_.Reset();
  stdin_pipe_w_.Reset();
}

void ProcessIo::OnOutputDone(std::function<void()> fn) {
  if (active_outputs_ == 0) {
    fn();
    return;
  }
  output_waiters_.push_back(std::move(fn));
}

void ProcessIo::Close() {
  if (logger_pid_ > 0) {
    // The logger flushes and exits on SIGTERM; the shim's reaper collects it.
    ::kill(logger_pid_, SIGTERM);
    logger_pid_ = 0;
  }
  for (auto& p : pumps_) {
    p->done = nullptr;
    p->Stop();
  }
  pumps_.clear();
  stdin_pump_.reset();
  active_outputs_ = 0;
  output_waiters_.clear();
  runtime_ends_.clear();
  runtime_fds_.clear();
  stdin_fifo_.Reset();
  stdin_pipe_w_.Reset();
  stdout_pipe_r_.Reset();
  stderr_pipe_r_.Reset();
  stdout_sink_.reset();
  stderr_sink_.reset();
  master_.reset();
}

}  // namespace berth::shim

#include "runtime/shim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>

#include "common/log.h"
#include "common/proto_time.h"

namespace berth::runtime {

Result<std::shared_ptr<LogCopier>> LogCopier::Open(asio::io_context& io, const std::string& path) {
  if (::mkfifo(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "create shim log fifo " + path);
  }
  int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open shim log fifo " + path);
  auto copier = std::make_shared<LogCopier>(io);
  asio::error_code ec;
  copier->stream_.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return Unknown("watch shim log fifo " + path + ": " + ec.message());
  }
  asio::post(io, [copier] { copier->ReadMore(); });
  return copier;
}

void LogCopier::ReadMore() {
  auto self = shared_from_this();
  stream_.async_read_some(asio::buffer(buf_), [self](const asio::error_code& ec, size_t n) {
    if (ec) {
      return;  // closed (operation_aborted) or a read error: stop copying
    }
    self->Copy(n);
    self->ReadMore();
  });
}

void LogCopier::Copy(size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::write(STDERR_FILENO, buf_ + off, n - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    off += static_cast<size_t>(w);
  }
}

void LogCopier::Close() {
  asio::post(io_, [self = shared_from_this()] {
    asio::error_code ec;
    self->stream_.close(ec);
  });
}

Shim::~Shim() { Close(); }

void Shim::Close() {
  if (closed_.exchange(true)) return;
  client_->Close();
  if (log_) log_->Close();
}

namespace {

namespace v2 = containerd::task::v2;

// Go's zero time (and anything else outside int64 nanoseconds) means "not exited".
std::optional<Timestamp> ExitedAt(const google::protobuf::Timestamp& ts) {
  Timestamp t = FromProtoTime(ts);
  if (t == Timestamp{} && (ts.seconds() != 0 || ts.nanos() != 0)) return std::nullopt;
  return t;
}

Status Done(const Result<google::protobuf::Empty>& r) {
  if (!r) return r.error();
  return Ok();
}

}  // namespace

Result<uint32_t> Shim::Start(const std::string& exec_id) {
  v2::StartRequest req;
  req.set_id(Id());
  req.set_exec_id(exec_id);
  BERTH_ASSIGN_OR_RETURN(auto resp, Call<v2::StartResponse>("Start", req));
  return resp.pid();
}

Status Shim::Kill(const std::string& exec_id, uint32_t signal, bool all) {
  v2::KillRequest req;
  req.set_id(Id());
  req.set_exec_id(exec_id);
  req.set_signal(signal);
  req.set_all(all);
  return Done(Call<google::protobuf::Empty>("Kill", req));
}

void Shim::Wait(const std::string& exec_id, std::function<void(Result<ExitStatus>)> done) {
  v2::WaitRequest req;
  req.set_id(Id());
  req.set_exec_id(exec_id);
  CallAsync<v2::WaitResponse>("Wait", req, [done = std::move(done)](Result<v2::WaitResponse> r) {
    if (!r) {
      done(std::move(r).error());
      return;
    }
    done(ExitStatus{.status = r->exit_status(), .exited_at = FromProtoTime(r->exited_at())});
  });
}

Result<ProcessState> Shim::State(const std::string& exec_id, std::chrono::milliseconds timeout) {
  v2::StateRequest req;
  req.set_id(Id());
  req.set_exec_id(exec_id);
  auto r = Call<v2::StateResponse>("State", req, timeout);
  if (!r) {
    if (Closed()) return NotFound(fmt::format("task {} not found", Id()));
    return std::move(r).error();
  }
  return ProcessState{.id = exec_id.empty() ? Id() : exec_id,
                      .pid = r->pid(),
                      .status = static_cast<ProcessStatus>(r->status()),
                      .stdin_path = r->stdin(),
                      .stdout_path = r->stdout(),
                      .stderr_path = r->stderr(),
                      .terminal = r->terminal(),
                      .exit_status = r->exit_status(),
                      .exited_at = ExitedAt(r->exited_at())};
}

Status Shim::Exec(const std::string& exec_id, const ExecOpts& opts) {
  v2::ExecProcessRequest req;
  req.set_id(Id());
  req.set_exec_id(exec_id);
  req.set_stdin(opts.stdin_path);
  req.set_stdout(opts.stdout_path);
  req.set_stderr(opts.stderr_path);
  req.set_terminal(opts.terminal);
  *req.mutable_spec() = opts.spec;
  return Done(Call<google::protobuf::Empty>("Exec", req));
}

Result<Exit> Shim::DeleteProcess(const std::string& exec_id) {
  v2::DeleteRequest req;
  req.set_id(Id());
  req.set_exec_id(exec_id);
  BERTH_ASSIGN_OR_RETURN(auto r, Call<v2::DeleteResponse>("Delete", req));
  return Exit{.pid = r.pid(), .status = r.exit_status(), .exited_at = FromProtoTime(r.exited_at())};
}

Status Shim::ResizePty(const std::string& exec_id, uint32_t width, uint32_t height) {
  v2::ResizePtyRequest req;
  req.set_id(Id());
  req.set_exec_id(exec_id);
  req.set_width(width);
  req.set_height(height);
  return Done(Call<google::protobuf::Empty>("ResizePty", req));
}

Status Shim::CloseStdin(const std::string& exec_id) {
  v2::CloseIORequest req;
  req.set_id(Id());
  req.set_exec_id(exec_id);
  req.set_stdin(true);
  return Done(Call<google::protobuf::Empty>("CloseIO", req));
}

Status Shim::Pause() {
  v2::PauseRequest req;
  req.set_id(Id());
  return Done(Call<google::protobuf::Empty>("Pause", req));
}

Status Shim::Resume() {
  v2::ResumeRequest req;
  req.set_id(Id());
  return Done(Call<google::protobuf::Empty>("Resume", req));
}

Result<std::vector<ProcessInfo>> Shim::Pids() {
  v2::PidsRequest req;
  req.set_id(Id());
  BERTH_ASSIGN_OR_RETURN(auto r, Call<v2::PidsResponse>("Pids", req));
  std::vector<ProcessInfo> out;
  for (const auto& p : r.processes()) {
    ProcessInfo info{.pid = p.pid()};
    if (p.has_info()) info.info = p.info();
    out.push_back(std::move(info));
  }
  return out;
}

Status Shim::Update(const std::optional<google::protobuf::Any>& resources,
                    const std::map<std::string, std::string>& annotations) {
  v2::UpdateTaskRequest req;
  req.set_id(Id());
  if (resources) *req.mutable_resources() = *resources;
  req.mutable_annotations()->insert(annotations.begin(), annotations.end());
  return Done(Call<google::protobuf::Empty>("Update", req));
}

Result<google::protobuf::Any> Shim::Stats() {
  v2::StatsRequest req;
  req.set_id(Id());
  BERTH_ASSIGN_OR_RETURN(auto r, Call<v2::StatsResponse>("Stats", req));
  return r.stats();
}

Status Shim::Checkpoint(const std::string& path,
                        const std::optional<google::protobuf::Any>& options) {
  v2::CheckpointTaskRequest req;
  req.set_id(Id());
  req.set_path(path);
  if (options) *req.mutable_options() = *options;
  return Done(Call<google::protobuf::Empty>("Checkpoint", req));
}

ttrpc::Metadata Shim::Meta() const {
  ttrpc::Metadata md;
  md.Add(ttrpc::kNamespaceKey, bundle_.Namespace());
  return md;
}

}  // namespace berth::runtime

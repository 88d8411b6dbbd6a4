// The Tasks service client and ctr's foreground task loop (tasks.NewTask + run/start's wait,
// signal and resize handling), shared by `run`, `tasks start|exec|attach`.
#include <github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cio.h"
#include "cli/run.h"
#include "common/fs.h"
#include "common/log.h"

namespace berth::cli {
namespace {

using json = nlohmann::json;

// Signal names as Go's syscall / moby's signal map (without the SIG prefix).
constexpr std::pair<const char*, int> kSignals[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},       {"CHLD", SIGCHLD},
    {"CLD", SIGCHLD},  {"CONT", SIGCONT}, {"FPE", SIGFPE},       {"HUP", SIGHUP},
    {"ILL", SIGILL},   {"INT", SIGINT},   {"IO", SIGIO},         {"IOT", SIGIOT},
    {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"POLL", SIGPOLL},     {"PROF", SIGPROF},
    {"PWR", SIGPWR},   {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},     {"STKFLT", SIGSTKFLT},
    {"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM},     {"TRAP", SIGTRAP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH},
    {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
};

Status WritePidFile(const std::string& path, int pid) {
  std::string abs = path;
  if (!abs.empty() && abs[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) != nullptr) abs = std::string(cwd) + "/" + abs;
  }
  return fs::WriteFileAtomic(abs, std::to_string(pid), 0666);
}

}  // namespace

Result<int> ParseSignal(std::string_view text) {
  std::string raw(text);
  if (!raw.empty() &&
      std::all_of(raw.begin(), raw.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int n = raw.size() > 9 ? 0 : std::stoi(raw);
    if (n == 0) return Unknown(fmt::format("invalid signal: {}", text));
    return n;
  }
  std::string up;
  for (char c : raw) up += static_cast<char>((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
  if (up.starts_with("SIG")) up = up.substr(3);
  for (const auto& [name, num] : kSignals) {
    if (up == name) return num;
  }
  return Unknown(fmt::format("invalid signal: {}", text));
}

void SetCodeAction(CLI::App* cmd, std::function<Result<int>()> action) {
  cmd->callback([action = std::move(action)] {
    // Before any RPC: gRPC's threads must inherit the mask, or a forwarded signal could be
    // delivered to one of them with its default action.
    BlockForwardedSignals();
    int code = 0;
    {
      Result<int> r = action();
      if (!r) {
        std::fprintf(stderr, "berth: %s\n", r.error().ToString().c_str());
        code = 1;
      } else {
        code = *r;
      }
    }
    std::fflush(stdout);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

// ---- TaskClient ----

TaskClient::TaskClient(Session session, std::string container_id)
    : session_(std::move(session)),
      id_(std::move(container_id)),
      stub_(tasks_api::Tasks::NewStub(session_.Channel())) {}

Result<containerd::v1::types::Process> TaskClient::Get(const std::string& exec_id) const {
  tasks_api::GetRequest req;
  req.set_container_id(id_);
  req.set_exec_id(exec_id);
  tasks_api::GetResponse resp;
  auto ctx = session_.Context();
  if (auto st = stub_->Get(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return resp.process();
}

Status TaskClient::Kill(int signal, const std::string& exec_id, bool all) const {
  tasks_api::KillRequest req;
  req.set_container_id(id_);
  req.set_exec_id(exec_id);
  req.set_signal(static_cast<uint32_t>(signal));
  req.set_all(all);
  google::protobuf::Empty resp;
  auto ctx = session_.Context();
  if (auto st = stub_->Kill(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return Ok();
}

Status TaskClient::ResizePty(uint32_t width, uint32_t height, const std::string& exec_id) const {
  tasks_api::ResizePtyRequest req;
  req.set_container_id(id_);
  req.set_exec_id(exec_id);
  req.set_width(width);
  req.set_height(height);
  google::protobuf::Empty resp;
  auto ctx = session_.Context();
  if (auto st = stub_->ResizePty(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return Ok();
}

Status TaskClient::CloseStdin(const std::string& exec_id) const {
  tasks_api::CloseIORequest req;
  req.set_container_id(id_);
  req.set_exec_id(exec_id);
  req.set_stdin(true);
  google::protobuf::Empty resp;
  auto ctx = session_.Context();
  if (auto st = stub_->CloseIO(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return Ok();
}

Result<uint32_t> TaskClient::Start(const std::string& exec_id) const {
  tasks_api::StartRequest req;
  req.set_container_id(id_);
  req.set_exec_id(exec_id);
  tasks_api::StartResponse resp;
  auto ctx = session_.Context();
  if (auto st = stub_->Start(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return resp.pid();
}

Result<uint32_t> TaskClient::Delete(const std::string& exec_id) const {
  tasks_api::DeleteResponse resp;
  auto ctx = session_.Context();
  grpc::Status st;
  if (exec_id.empty()) {
    tasks_api::DeleteTaskRequest req;
    req.set_container_id(id_);
    st = stub_->Delete(ctx.get(), req, &resp);
  } else {
    tasks_api::DeleteProcessRequest req;
    req.set_container_id(id_);
    req.set_exec_id(exec_id);
    st = stub_->DeleteProcess(ctx.get(), req, &resp);
  }
  if (!st.ok()) return FromGrpc(st);
  return resp.exit_status();
}

Status TaskClient::Pause() const {
  tasks_api::PauseTaskRequest req;
  req.set_container_id(id_);
  google::protobuf::Empty resp;
  auto ctx = session_.Context();
  if (auto st = stub_->Pause(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return Ok();
}

Status TaskClient::Resume() const {
  tasks_api::ResumeTaskRequest req;
  req.set_container_id(id_);
  google::protobuf::Empty resp;
  auto ctx = session_.Context();
  if (auto st = stub_->Resume(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  return Ok();
}

TaskClient::Waiter::~Waiter() {
  if (ctx_) ctx_->TryCancel();
  if (thread_.joinable()) thread_.join();
}

Result<uint32_t> TaskClient::Waiter::Get() {
  if (thread_.joinable()) thread_.join();
  if (!result_) return Unknown("wait: no result");
  return *result_;
}

std::optional<Result<uint32_t>> TaskClient::Waiter::GetFor(std::chrono::nanoseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return result_.has_value(); })) return std::nullopt;
  return *result_;
}

Result<std::unique_ptr<TaskClient::Waiter>> TaskClient::Wait(const std::string& exec_id) const {
  std::unique_ptr<Waiter> w(new Waiter());
  // No --timeout on Wait: it lasts as long as the process (the Go client's Wait uses its own ctx).
  w->ctx_ = std::make_unique<grpc::ClientContext>();
  w->ctx_->AddMetadata("containerd-namespace", session_.Namespace());
  tasks_api::WaitRequest req;
  req.set_container_id(id_);
  req.set_exec_id(exec_id);
  w->thread_ = std::thread([w = w.get(), req, stub = stub_.get()] {
    tasks_api::WaitResponse resp;
    grpc::Status st = stub->Wait(w->ctx_.get(), req, &resp);
    std::lock_guard lock(w->mu_);
    if (!st.ok()) {
      w->result_ = Result<uint32_t>(FromGrpc(st));
    } else {
      w->result_ = Result<uint32_t>(resp.exit_status());
    }
    w->cv_.notify_all();
  });
  return w;
}

// ---- The foreground loop ----

Status WithContainerRoot(const Session& session, const containers_api::Container& c,
                         const std::function<Status(const std::optional<std::string>&)>& fn) {
  if (c.snapshot_key().empty() || c.snapshotter().empty()) return fn(std::nullopt);
  SnapshotClient snapshots(session, c.snapshotter());
  BERTH_ASSIGN_OR_RETURN(auto mounts, snapshots.Mounts(c.snapshot_key()));
  // Go's mount.WithTempMount: a fresh directory in os.TempDir(), removed afterwards.
  const char* tmp = std::getenv("TMPDIR");
  std::string tmp_root = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  return mount::WithTempMount(mount::ReadonlyMounts(std::move(mounts)), tmp_root,
                              [&](const std::string& root) { return fn(root); });
}

namespace {

// Wires the process's stdio as ctr's NewTask/exec do; `fifo_id` names the FIFOs.
Result<std::unique_ptr<ProcessIo>> MakeIo(const TaskIoOptions& o, const std::string& fifo_id,
                                          bool tty) {
  FifoSet set;
  if (tty) {
    if (o.null_io) return Unknown("tty and null-io cannot be used together");
    if (!o.log_uri.empty()) return Unknown("can't use log-uri with tty");
  }
  if (o.null_io) {
    set.terminal = false;  // cio.NullIO: no paths at all
  } else if (!o.log_uri.empty()) {
    // cio.LogURI: stdout and stderr both name the URI (a bare path means file://).
    std::string uri = o.log_uri;
    if (uri.find("://") == std::string::npos) uri = "file://" + uri;
    set.out = uri;
    set.err = uri;
    return ProcessIo::Start(set, {.in = -1, .out = -1, .err = -1});
  } else {
    std::string dir = o.fifo_dir.empty() ? kDefaultFifoDir : o.fifo_dir;
    BERTH_ASSIGN_OR_RETURN(set, NewFifoSet(dir, fifo_id, /*with_stdin=*/true, tty));
  }
  ProcessIo::Streams streams{.in = 0, .out = 1, .err = tty ? -1 : 2};
  if (o.null_io) streams = {.in = -1, .out = -1, .err = -1};
  return ProcessIo::Start(std::move(set), streams);
}

// While the process runs in the foreground: terminal size or forwarded signals.
Result<std::unique_ptr<SignalLoop>> Relay(const TaskClient& task, const std::string& exec_id,
                                          bool tty) {
  auto resize = [&task, exec_id] {
    auto size = TerminalSize(0);
    if (!size) {
      log::L().WithError(size.error()).Error("get pty size");
      return;
    }
    if (Status st = task.ResizePty(size->width, size->height, exec_id); !st) {
      log::L().WithError(st.error()).Error("resize pty");
    }
  };
  if (tty) resize();
  // Signals are blocked since the command began (SetCodeAction), so they are forwarded with a
  // terminal too: unlike ctr, which dies of them and leaves the task running.
  auto gone = std::make_shared<std::atomic<bool>>(false);
  return SignalLoop::Start(ForwardedSignals(), [&task, exec_id, gone, tty, resize](int sig) {
    if (tty && sig == SIGWINCH) {
      resize();
      return;
    }
    if (*gone) return;
    if (Status st = task.Kill(sig, exec_id); !st) {
      if (st.error().Is(Errc::kNotFound)) {
        *gone = true;  // as ctr: stop forwarding once the process is gone
        return;
      }
      log::L().WithError(st.error()).Error(fmt::format("forward signal {}", sig));
    }
  });
}

// The Go client's task.Delete: the IO finishes first (Cancel only stops unopened streams, so no
// output is lost), then the Delete call; the FIFOs go with `io`.
Result<uint32_t> DeleteWithIo(const TaskClient& task, const std::string& exec_id,
                              std::unique_ptr<ProcessIo>& io) {
  if (io) {
    io->Cancel();
    io->Wait();
  }
  auto r = task.Delete(exec_id);
  io.reset();
  return r;
}

}  // namespace

Result<int> StartTask(const Session& session, const containers_api::Container& container,
                      const StartTaskOptions& options) {
  BERTH_ASSIGN_OR_RETURN(std::string spec_text, ContainerSpecJson(container));
  json spec = json::parse(spec_text, nullptr, false);
  bool tty =
      spec.is_object() && spec.contains("process") && spec["process"].value("terminal", false);

  std::unique_ptr<RawTerminal> raw;
  if (tty) {
    if (options.io.null_io) return Unknown("tty and null-io cannot be used together");
    BERTH_ASSIGN_OR_RETURN(raw, RawTerminal::Make(0));
  }
  // Declared before `io`, so it outlives the stdin closer that io's threads may call.
  TaskClient task(session, container.id());
  BERTH_ASSIGN_OR_RETURN(auto io, MakeIo(options.io, container.id(), tty));

  // container.NewTask: rootfs = the snapshot's mounts, stdio paths, runtime options.
  tasks_api::CreateTaskRequest req;
  req.set_container_id(container.id());
  if (!container.snapshot_key().empty()) {
    SnapshotClient snapshots(session, container.snapshotter());
    BERTH_ASSIGN_OR_RETURN(auto mounts, snapshots.Mounts(container.snapshot_key()));
    for (const auto& m : mounts) {
      auto* pm = req.add_rootfs();
      pm->set_type(m.type);
      pm->set_source(m.source);
      pm->set_target(m.target);
      for (const auto& o : m.options) pm->add_options(o);
    }
  }
  req.set_stdin(io->Fifos().in);
  req.set_stdout(io->Fifos().out);
  req.set_stderr(io->Fifos().err);
  req.set_terminal(tty);
  if (options.no_pivot) {
    containerd::runc::v1::Options runc;
    runc.set_no_pivot_root(true);
    req.mutable_options()->set_type_url(kRuncOptionsTypeUrl);
    req.mutable_options()->set_value(runc.SerializeAsString());
  }
  {
    auto stub = tasks_api::Tasks::NewStub(session.Channel());
    tasks_api::CreateTaskResponse resp;
    auto ctx = session.Context();
    if (auto st = stub->Create(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  }
  io->SetStdinCloser([&task] {
    if (Status st = task.CloseStdin(); !st) {
      log::L().WithError(st.error()).Debug("close stdin");
    }
  });

  std::unique_ptr<TaskClient::Waiter> waiter;
  if (!options.detach) {
    auto w = task.Wait();
    if (!w) {
      (void)DeleteWithIo(task, "", io);
      return std::move(w).error();
    }
    waiter = std::move(*w);
  }
  auto process = task.Get();
  if (!options.pid_file.empty() && process) {
    if (Status st = WritePidFile(options.pid_file, static_cast<int>(process->pid())); !st) {
      if (!options.detach) (void)DeleteWithIo(task, "", io);
      return std::move(st).error();
    }
  }
  if (auto started = task.Start(); !started) {
    if (!options.detach) {
      waiter.reset();
      (void)DeleteWithIo(task, "", io);
    }
    return std::move(started).error();
  }
  if (options.detach) {
    io->Detach();
    return 0;
  }
  BERTH_ASSIGN_OR_RETURN(auto relay, Relay(task, "", tty));
  auto status = waiter->Get();
  relay.reset();
  if (!status) {
    (void)DeleteWithIo(task, "", io);
    return std::move(status).error();
  }
  BERTH_TRY(DeleteWithIo(task, "", io));
  return static_cast<int>(*status);
}

// `tasks exec`: ctr's exec over an existing task.
Result<int> ExecProcess(const Session& session, const containers_api::Container& container,
                        const std::string& exec_id, const json& process_spec, bool tty, bool detach,
                        const TaskIoOptions& io_options) {
  if (tty && !io_options.log_uri.empty()) return Unknown("can't use log-uri with tty");
  if (!io_options.log_uri.empty() && !io_options.fifo_dir.empty()) {
    return Unknown("can't use log-uri with fifo-dir");
  }
  std::unique_ptr<RawTerminal> raw;
  if (tty) {
    BERTH_ASSIGN_OR_RETURN(raw, RawTerminal::Make(0));
  }
  TaskClient task(session, container.id());  // outlives io (see StartTask)
  BERTH_ASSIGN_OR_RETURN(auto io, MakeIo(io_options, exec_id, tty));
  tasks_api::ExecProcessRequest req;
  req.set_container_id(container.id());
  req.set_exec_id(exec_id);
  req.set_stdin(io->Fifos().in);
  req.set_stdout(io->Fifos().out);
  req.set_stderr(io->Fifos().err);
  req.set_terminal(tty);
  req.mutable_spec()->set_type_url("types.containerd.io/opencontainers/runtime-spec/1/Process");
  req.mutable_spec()->set_value(process_spec.dump());
  {
    auto stub = tasks_api::Tasks::NewStub(session.Channel());
    google::protobuf::Empty resp;
    auto ctx = session.Context();
    if (auto st = stub->Exec(ctx.get(), req, &resp); !st.ok()) return FromGrpc(st);
  }
  io->SetStdinCloser([&task, exec_id] {
    if (Status st = task.CloseStdin(exec_id); !st) {
      log::L().WithError(st.error()).Debug("close stdin");
    }
  });
  auto waiter = task.Wait(exec_id);
  if (!waiter) {
    if (!detach) (void)DeleteWithIo(task, exec_id, io);
    return std::move(waiter).error();
  }
  if (auto started = task.Start(exec_id); !started) {
    waiter->reset();
    if (!detach) (void)DeleteWithIo(task, exec_id, io);
    return std::move(started).error();
  }
  if (detach) {
    waiter->reset();
    io->Detach();
    return 0;
  }
  BERTH_ASSIGN_OR_RETURN(auto relay, Relay(task, exec_id, tty));
  auto status = (*waiter)->Get();
  relay.reset();
  // ctr defers process.Delete (its result is not checked) and returns the exit status.
  (void)DeleteWithIo(task, exec_id, io);
  if (!status) return std::move(status).error();
  return static_cast<int>(*status);
}

// `tasks attach`: the FIFOs the task was created with, as cio.NewAttach(cio.WithStdio).
Result<int> AttachTask(const Session& session, const containers_api::Container& container) {
  BERTH_ASSIGN_OR_RETURN(std::string spec_text, ContainerSpecJson(container));
  json spec = json::parse(spec_text, nullptr, false);
  bool tty =
      spec.is_object() && spec.contains("process") && spec["process"].value("terminal", false);
  std::unique_ptr<RawTerminal> raw;
  if (tty) {
    BERTH_ASSIGN_OR_RETURN(raw, RawTerminal::Make(0));
  }
  TaskClient task(session, container.id());
  BERTH_ASSIGN_OR_RETURN(auto process, task.Get());
  FifoSet set;  // no dir: attaching never removes the FIFOs
  set.in = process.stdin();
  set.out = process.stdout();
  set.err = process.stderr();
  set.terminal = process.terminal();
  BERTH_ASSIGN_OR_RETURN(auto io, ProcessIo::Start(set, {.in = 0, .out = 1, .err = 2}));
  io->SetStdinCloser([&task] { (void)task.CloseStdin(); });
  BERTH_ASSIGN_OR_RETURN(auto waiter, task.Wait());
  BERTH_ASSIGN_OR_RETURN(auto relay, Relay(task, "", tty));
  auto status = waiter->Get();
  relay.reset();
  (void)DeleteWithIo(task, "", io);  // ctr: defer task.Delete(ctx)
  if (!status) return std::move(status).error();
  return static_cast<int>(*status);
}

}  // namespace berth::cli

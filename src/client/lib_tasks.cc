// berth::Task, berth::Process and Container::NewTask/LoadTask over the Tasks service.
#include <github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h>
#include <github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h>

#include <condition_variable>
#include <thread>

#include <fmt/format.h>

#include "client/lib_internal.h"
#include "client/unpack.h"
#include "oci/spec.h"

namespace berth {
namespace {

namespace tasks_api = containerd::services::tasks::v1;
using TaskStatus = containerd::v1::types::Status;

std::unique_ptr<tasks_api::Tasks::Stub> Stub(const detail::ClientState& s) {
  return tasks_api::Tasks::NewStub(s.session.Channel());
}

std::string Describe(const detail::ProcessState& p) {
  if (p.exec_id.empty()) return fmt::format("task {:?}", p.container_id);
  return fmt::format("process {:?} of task {:?}", p.exec_id, p.container_id);
}

TaskState StateOf(TaskStatus s) {
  switch (s) {
    case containerd::v1::types::CREATED:
      return TaskState::kCreated;
    case containerd::v1::types::RUNNING:
      return TaskState::kRunning;
    case containerd::v1::types::STOPPED:
      return TaskState::kStopped;
    case containerd::v1::types::PAUSED:
      return TaskState::kPaused;
    case containerd::v1::types::PAUSING:
      return TaskState::kPausing;
    default:
      return TaskState::kUnknown;
  }
}

// The stdin closer an IO calls at local EOF: CloseIO of that process (no reference to the
// process state, which owns the IO).
std::function<void()> StdinCloser(std::shared_ptr<const detail::ClientState> client,
                                  std::string container_id, std::string exec_id) {
  return [client = std::move(client), container_id = std::move(container_id),
          exec_id = std::move(exec_id)] {
    tasks_api::CloseIORequest req;
    req.set_container_id(container_id);
    req.set_exec_id(exec_id);
    req.set_stdin(true);
    google::protobuf::Empty resp;
    auto ctx = client->session.Context();
    (void)Stub(*client)->CloseIO(ctx.get(), req, &resp);
  };
}

}  // namespace

std::string_view StateName(TaskState state) {
  switch (state) {
    case TaskState::kCreated:
      return "created";
    case TaskState::kRunning:
      return "running";
    case TaskState::kStopped:
      return "stopped";
    case TaskState::kPaused:
      return "paused";
    case TaskState::kPausing:
      return "pausing";
    case TaskState::kUnknown:
      break;
  }
  return "unknown";
}

// ---- ExitWaiter ----

struct ExitWaiter::Impl {
  std::unique_ptr<grpc::ClientContext> ctx;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<ExitStatus>> result;
  ~Impl() {
    ctx->TryCancel();
    if (thread.joinable()) thread.join();
  }
};

ExitWaiter::ExitWaiter(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExitWaiter::~ExitWaiter() = default;
ExitWaiter::ExitWaiter(ExitWaiter&&) noexcept = default;
ExitWaiter& ExitWaiter::operator=(ExitWaiter&&) noexcept = default;

Result<ExitStatus> ExitWaiter::Get() {
  if (!impl_) return FailedPrecondition("exit waiter: moved from");
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [this] { return impl_->result.has_value(); });
  return *impl_->result;
}

std::optional<Result<ExitStatus>> ExitWaiter::GetFor(std::chrono::nanoseconds timeout) {
  if (!impl_) return Result<ExitStatus>(FailedPrecondition("exit waiter: moved from"));
  std::unique_lock lock(impl_->mu);
  if (!impl_->cv.wait_for(lock, timeout, [this] { return impl_->result.has_value(); })) {
    return std::nullopt;
  }
  return *impl_->result;
}

void ExitWaiter::Cancel() {
  if (impl_) impl_->ctx->TryCancel();
}

// ---- Process ----

Process::Process(std::shared_ptr<detail::ProcessState> state) : state_(std::move(state)) {}
Process::~Process() = default;

const std::string& Process::ContainerId() const { return state_->container_id; }
const std::string& Process::ExecId() const { return state_->exec_id; }
uint32_t Process::Pid() const { return state_->pid; }

cio::IO* Process::IO() const {
  std::lock_guard lock(state_->mu);
  return state_->io.get();
}

Result<uint32_t> Process::Start() {
  tasks_api::StartRequest req;
  req.set_container_id(state_->container_id);
  req.set_exec_id(state_->exec_id);
  tasks_api::StartResponse resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->Start(ctx.get(), req, &resp); !st.ok()) {
    // As the Go client: a process that cannot start gives up its IO.
    std::lock_guard lock(state_->mu);
    if (state_->io) state_->io->Cancel();
    return client::FromGrpc(st);
  }
  state_->pid = resp.pid();
  return resp.pid();
}

Status Process::Kill(int signal, bool all) const {
  tasks_api::KillRequest req;
  req.set_container_id(state_->container_id);
  req.set_exec_id(state_->exec_id);
  req.set_signal(static_cast<uint32_t>(signal));
  req.set_all(all);
  google::protobuf::Empty resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->Kill(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st);
  }
  return Ok();
}

Result<ExitWaiter> Process::Wait() const {
  auto impl = std::make_shared<ExitWaiter::Impl>();
  impl->ctx = detail::LongContext(state_->client->session);
  tasks_api::WaitRequest req;
  req.set_container_id(state_->container_id);
  req.set_exec_id(state_->exec_id);
  impl->thread = std::thread([w = impl.get(), req, client = state_->client] {
    tasks_api::WaitResponse resp;
    grpc::Status st = Stub(*client)->Wait(w->ctx.get(), req, &resp);
    Result<ExitStatus> r = st.ok() ? Result<ExitStatus>(ExitStatus{
                                         resp.exit_status(), detail::FromProto(resp.exited_at())})
                                   : Result<ExitStatus>(client::FromGrpc(st));
    std::lock_guard lock(w->mu);
    w->result = std::move(r);
    w->cv.notify_all();
  });
  return ExitWaiter(std::move(impl));
}

Status Process::CloseIO() const {
  tasks_api::CloseIORequest req;
  req.set_container_id(state_->container_id);
  req.set_exec_id(state_->exec_id);
  req.set_stdin(true);
  google::protobuf::Empty resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->CloseIO(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st);
  }
  return Ok();
}

Status Process::Resize(uint32_t width, uint32_t height) const {
  tasks_api::ResizePtyRequest req;
  req.set_container_id(state_->container_id);
  req.set_exec_id(state_->exec_id);
  req.set_width(width);
  req.set_height(height);
  google::protobuf::Empty resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->ResizePty(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st);
  }
  return Ok();
}

Result<ProcessStatus> Process::GetStatus() const {
  tasks_api::GetRequest req;
  req.set_container_id(state_->container_id);
  req.set_exec_id(state_->exec_id);
  tasks_api::GetResponse resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->Get(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st);
  }
  const auto& p = resp.process();
  return ProcessStatus{StateOf(p.status()), p.exit_status(), detail::FromProto(p.exited_at())};
}

Result<ExitStatus> Process::Delete() {
  BERTH_ASSIGN_OR_RETURN(ProcessStatus status, GetStatus());
  if (status.state != TaskState::kStopped && status.state != TaskState::kCreated) {
    return FailedPrecondition(fmt::format("delete {}: it must be stopped first (it is {})",
                                          Describe(*state_), StateName(status.state)));
  }
  // The IO drains first (Cancel only stops streams the shim never opened), then the process
  // goes; the FIFOs go with the IO.
  std::unique_ptr<cio::IO> io;
  {
    std::lock_guard lock(state_->mu);
    io = std::move(state_->io);
  }
  if (io) {
    io->Cancel();
    io->Wait();
  }
  tasks_api::DeleteResponse resp;
  auto ctx = state_->client->session.Context();
  grpc::Status st;
  if (state_->exec_id.empty()) {
    tasks_api::DeleteTaskRequest req;
    req.set_container_id(state_->container_id);
    st = Stub(*state_->client)->Delete(ctx.get(), req, &resp);
  } else {
    tasks_api::DeleteProcessRequest req;
    req.set_container_id(state_->container_id);
    req.set_exec_id(state_->exec_id);
    st = Stub(*state_->client)->DeleteProcess(ctx.get(), req, &resp);
  }
  if (!st.ok()) return client::FromGrpc(st);
  return ExitStatus{resp.exit_status(), detail::FromProto(resp.exited_at())};
}

// ---- Task ----

Status Task::Pause() const {
  tasks_api::PauseTaskRequest req;
  req.set_container_id(state_->container_id);
  google::protobuf::Empty resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->Pause(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st);
  }
  return Ok();
}

Status Task::Resume() const {
  tasks_api::ResumeTaskRequest req;
  req.set_container_id(state_->container_id);
  google::protobuf::Empty resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->Resume(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st);
  }
  return Ok();
}

Result<std::vector<ProcessInfo>> Task::Pids() const {
  tasks_api::ListPidsRequest req;
  req.set_container_id(state_->container_id);
  tasks_api::ListPidsResponse resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->ListPids(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st);
  }
  std::vector<ProcessInfo> out;
  for (const auto& p : resp.processes()) {
    out.push_back({p.pid(), p.info().type_url(), p.info().value()});
  }
  return out;
}

Result<Metrics> Task::GetMetrics() const {
  tasks_api::MetricsRequest req;
  req.add_filters("id==" + state_->container_id);
  tasks_api::MetricsResponse resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->Metrics(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st);
  }
  if (resp.metrics().empty()) return Unknown("no metrics received");  // the Go client's words
  const auto& m = resp.metrics(0);
  return Metrics{detail::FromProto(m.timestamp()), m.id(), m.data().type_url(), m.data().value()};
}

Status Task::Update(const std::string& resources_json) const {
  tasks_api::UpdateTaskRequest req;
  req.set_container_id(state_->container_id);
  req.mutable_resources()->set_type_url(std::string(oci::kResourcesTypeUrl));
  req.mutable_resources()->set_value(resources_json);
  google::protobuf::Empty resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->Update(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st);
  }
  return Ok();
}

Result<nlohmann::json> Task::ProcessSpec() const {
  BERTH_ASSIGN_OR_RETURN(auto container, Client(state_->client).LoadContainer(ContainerId()));
  const Spec& spec = container.Cached().spec;
  if (!spec.is_object() || !spec.contains("process")) {
    return NotFound(fmt::format("container {:?} has no process spec", ContainerId()));
  }
  return spec["process"];
}

Result<Process> Task::Exec(const std::string& exec_id, const nlohmann::json& process_spec,
                           const cio::Creator& io) const {
  if (exec_id.empty()) return InvalidArgument("exec: the exec id must not be empty");
  if (!process_spec.is_object()) return InvalidArgument("exec: the process spec must be an object");
  if (!io) return InvalidArgument("exec: no IO creator");
  auto state = std::make_shared<detail::ProcessState>();
  state->client = state_->client;
  state->container_id = state_->container_id;
  state->exec_id = exec_id;
  BERTH_ASSIGN_OR_RETURN(state->io, io(exec_id));
  const cio::Config& cfg = state->io->Config();
  tasks_api::ExecProcessRequest req;
  req.set_container_id(state->container_id);
  req.set_exec_id(exec_id);
  req.set_stdin(cfg.stdin_path);
  req.set_stdout(cfg.stdout_path);
  req.set_stderr(cfg.stderr_path);
  req.set_terminal(cfg.terminal);
  req.mutable_spec()->set_type_url(std::string(oci::kProcessTypeUrl));
  req.mutable_spec()->set_value(process_spec.dump());
  google::protobuf::Empty resp;
  auto ctx = state->client->session.Context();
  if (auto st = Stub(*state->client)->Exec(ctx.get(), req, &resp); !st.ok()) {
    state->io->Cancel();
    return client::FromGrpc(st);
  }
  state->io->SetStdinCloser(StdinCloser(state->client, state->container_id, exec_id));
  return Process(std::move(state));
}

Result<Process> Task::LoadProcess(const std::string& exec_id) const {
  if (exec_id.empty()) return InvalidArgument("load process: the exec id must not be empty");
  tasks_api::GetRequest req;
  req.set_container_id(state_->container_id);
  req.set_exec_id(exec_id);
  tasks_api::GetResponse resp;
  auto ctx = state_->client->session.Context();
  if (auto st = Stub(*state_->client)->Get(ctx.get(), req, &resp); !st.ok()) {
    return client::FromGrpc(st);
  }
  auto state = std::make_shared<detail::ProcessState>();
  state->client = state_->client;
  state->container_id = state_->container_id;
  state->exec_id = exec_id;
  state->pid = resp.process().pid();
  return Process(std::move(state));
}

// ---- Client: tasks ----

Result<std::vector<TaskInfo>> Client::Tasks() const {
  tasks_api::ListTasksRequest req;
  tasks_api::ListTasksResponse resp;
  auto ctx = state_->session.Context();
  if (auto st = Stub(*state_)->List(ctx.get(), req, &resp); !st.ok()) return client::FromGrpc(st);
  std::vector<TaskInfo> out;
  for (const auto& t : resp.tasks()) {
    out.push_back({t.id().empty() ? t.container_id() : t.id(), t.pid(), StateOf(t.status()),
                   t.exit_status()});
  }
  return out;
}

// ---- Container: tasks ----

Result<Task> Container::NewTask(const cio::Creator& io, NewTaskOptions options) const {
  if (!io) return InvalidArgument("new task: no IO creator");
  auto state = std::make_shared<detail::ProcessState>();
  state->client = client_;
  state->container_id = info_.id;
  tasks_api::CreateTaskRequest req;
  req.set_container_id(info_.id);
  if (!info_.snapshot_key.empty()) {
    client::SnapshotClient snapshots(client_->session, info_.snapshotter);
    auto mounts = snapshots.Mounts(info_.snapshot_key);
    if (!mounts) {
      return std::move(mounts).error().Wrap(fmt::format("new task {:?}: rootfs", info_.id));
    }
    for (const auto& m : *mounts) {
      auto* pm = req.add_rootfs();
      pm->set_type(m.type);
      pm->set_source(m.source);
      pm->set_target(m.target);
      for (const auto& o : m.options) pm->add_options(o);
    }
  }
  if (options.no_pivot_root) {
    containerd::runc::v1::Options runc;
    runc.set_no_pivot_root(true);
    req.mutable_options()->set_type_url("containerd.runc.v1.Options");
    req.mutable_options()->set_value(runc.SerializeAsString());
  }
  BERTH_ASSIGN_OR_RETURN(state->io, io(info_.id));
  const cio::Config& cfg = state->io->Config();
  req.set_stdin(cfg.stdin_path);
  req.set_stdout(cfg.stdout_path);
  req.set_stderr(cfg.stderr_path);
  req.set_terminal(cfg.terminal);
  tasks_api::CreateTaskResponse resp;
  auto ctx = client_->session.Context();
  if (auto st = Stub(*client_)->Create(ctx.get(), req, &resp); !st.ok()) {
    state->io->Cancel();
    return client::FromGrpc(st);
  }
  state->pid = resp.pid();
  state->io->SetStdinCloser(StdinCloser(client_, info_.id, ""));
  return Task(std::move(state));
}

Result<Task> Container::LoadTask(const cio::Attacher& attach) const {
  tasks_api::GetRequest req;
  req.set_container_id(info_.id);
  tasks_api::GetResponse resp;
  auto ctx = client_->session.Context();
  if (auto st = Stub(*client_)->Get(ctx.get(), req, &resp); !st.ok()) {
    Error err = client::FromGrpc(st);
    // As the Go client's container.Task.
    if (err.Is(Errc::kNotFound)) return std::move(err).Wrap("no running task found");
    return err;
  }
  auto state = std::make_shared<detail::ProcessState>();
  state->client = client_;
  state->container_id = info_.id;
  state->pid = resp.process().pid();
  if (attach) {
    const auto& p = resp.process();
    BERTH_ASSIGN_OR_RETURN(state->io, attach({p.stdin(), p.stdout(), p.stderr(), p.terminal()}));
    state->io->SetStdinCloser(StdinCloser(client_, info_.id, ""));
  }
  return Task(std::move(state));
}

}  // namespace berth

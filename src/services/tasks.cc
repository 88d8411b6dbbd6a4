// containerd.services.tasks.v1.Tasks over the runtime's TaskManager (containerd 1.6
// services/tasks/local.go). Every call that talks to a shim runs on the services pool; Wait is
// answered from the ttrpc io thread when the shim replies, so it holds no thread while waiting.
#include <github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h>
#include <github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h>

#include <atomic>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "common/filters.h"
#include "common/identifiers.h"
#include "common/log.h"
#include "metadata/containers.h"
#include "metadata/db.h"
#include "runtime/manager.h"
#include "services/plugins.h"
#include "services/pool.h"

namespace berth::services {
namespace {

namespace api = containerd::services::tasks::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kStateTimeout = seconds(2);  // io.containerd.timeout.task.state
// Go's zero time.Time (0001-01-01T00:00:00Z): a process that has not exited.
constexpr int64_t kGoZeroTimeSeconds = -62135596800;

google::protobuf::Any ToProtoAny(const metadata::Any& a) {
  google::protobuf::Any out;
  out.set_type_url(a.type_url);
  out.set_value(a.value);
  return out;
}

// containerd's checkRuntime(current, "io.containerd.runc"): a runc-family runtime name.
bool IsRuncRuntime(const std::string& name) { return name.starts_with("io.containerd.runc."); }

// A Wait answered later from another thread. The reactor finishes exactly once: with the shim's
// answer, or Cancelled when the client goes away or the server shuts down (so shutdown never
// waits for a task to exit).
class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  struct Shared {
    std::mutex mu;
    WaitReactor* reactor = nullptr;  // null once finished
  };

  WaitReactor() : shared_(std::make_shared<Shared>()) { shared_->reactor = this; }

  std::shared_ptr<Shared> State() const { return shared_; }

  // Finishes once; later calls do nothing.
  // Takes the reactor if nobody finished it yet (then only the taker may Finish it, and OnDone
  // cannot run before that Finish). Finish is called outside the lock: it may run OnDone.
  static WaitReactor* Take(const std::shared_ptr<Shared>& shared) {
    std::lock_guard lock(shared->mu);
    return std::exchange(shared->reactor, nullptr);
  }
  static void FinishOnce(const std::shared_ptr<Shared>& shared, const grpc::Status& status) {
    if (WaitReactor* r = Take(shared)) r->Finish(status);
  }

  void OnCancel() override {
    FinishOnce(shared_, grpc::Status(grpc::StatusCode::CANCELLED, "wait cancelled"));
  }
  void OnDone() override {
    {
      std::lock_guard lock(shared_->mu);
      shared_->reactor = nullptr;
    }
    delete this;
  }

 private:
  std::shared_ptr<Shared> shared_;
};

class TasksService final : public api::Tasks::CallbackService {
 public:
  TasksService(runtime::TaskManager& tasks, std::shared_ptr<metadata::ContainerStore> containers)
      : tasks_(tasks), containers_(std::move(containers)) {}

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* rpc,
                                   const api::CreateTaskRequest* req,
                                   api::CreateTaskResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto container, containers_->Get(ctx, req->container_id()));
      runtime::CreateOpts opts;
      if (container.spec) opts.spec = container.spec->value;
      opts.stdin_path = req->stdin();
      opts.stdout_path = req->stdout();
      opts.stderr_path = req->stderr();
      opts.terminal = req->terminal();
      opts.runtime = req->runtime_path().empty() ? container.runtime.name : req->runtime_path();
      if (container.runtime.options) {
        opts.runtime_options = ToProtoAny(*container.runtime.options);
      }
      if (req->has_options()) opts.task_options = req->options();
      if (IsRuncRuntime(container.runtime.name) && req->has_options()) {
        containerd::runc::v1::Options o;
        if (req->options().type_url() == "containerd.runc.v1.Options" &&
            o.ParseFromString(req->options().value())) {
          opts.checkpoint = o.criu_image_path();
        }
      }
      if (opts.checkpoint.empty() && req->has_checkpoint()) {
        return NotImplemented("restoring a task from a checkpoint in the content store");
      }
      for (const auto& m : req->rootfs()) {
        opts.rootfs.push_back({.type = m.type(),
                               .source = m.source(),
                               .target = m.target(),
                               .options = {m.options().begin(), m.options().end()}});
      }
      if (tasks_.Get(ctx, req->container_id())) {
        return AlreadyExists(fmt::format("task {}", req->container_id()));
      }
      BERTH_ASSIGN_OR_RETURN(auto created,
                             tasks_.Create(ctx, req->container_id(), std::move(opts)));
      resp->set_container_id(req->container_id());
      resp->set_pid(created->Pid());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* rpc, const api::StartRequest* req,
                                  api::StartResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      BERTH_ASSIGN_OR_RETURN(uint32_t pid, task->Start(req->exec_id()));
      resp->set_pid(pid);
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* rpc,
                                   const api::DeleteTaskRequest* req,
                                   api::DeleteResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_TRY(GetTask(ctx, req->container_id()));
      BERTH_ASSIGN_OR_RETURN(runtime::Exit exit, tasks_.Delete(ctx, req->container_id()));
      resp->set_pid(exit.pid);
      resp->set_exit_status(exit.status);
      SetTimestamp(exit.exited_at, resp->mutable_exited_at());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* DeleteProcess(grpc::CallbackServerContext* rpc,
                                          const api::DeleteProcessRequest* req,
                                          api::DeleteResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      BERTH_TRY(task->State(req->exec_id(), kStateTimeout));
      BERTH_ASSIGN_OR_RETURN(runtime::Exit exit, task->DeleteProcess(req->exec_id()));
      resp->set_id(req->exec_id());
      resp->set_pid(exit.pid);
      resp->set_exit_status(exit.status);
      SetTimestamp(exit.exited_at, resp->mutable_exited_at());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* rpc, const api::GetRequest* req,
                                api::GetResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      BERTH_ASSIGN_OR_RETURN(auto st, task->State(req->exec_id(), kStateTimeout));
      ToProcess(st, resp->mutable_process());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* rpc, const api::ListTasksRequest*,
                                 api::ListTasksResponse* resp) override {
    return Pool(rpc, [this, resp](const Context& ctx) -> Status {
      for (const auto& task : tasks_.List(ctx)) {
        auto st = task->State("", kStateTimeout);
        if (!st) {
          if (!st.error().Is(Errc::kNotFound)) {
            log::L().With("id", task->Id()).WithError(st.error()).Error("get task state");
          }
          continue;
        }
        ToProcess(*st, resp->add_tasks());
      }
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Kill(grpc::CallbackServerContext* rpc, const api::KillRequest* req,
                                 google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      if (!req->exec_id().empty()) BERTH_TRY(task->State(req->exec_id(), kStateTimeout));
      return task->Kill(req->exec_id(), req->signal(), req->all());
    });
  }

  grpc::ServerUnaryReactor* Exec(grpc::CallbackServerContext* rpc,
                                 const api::ExecProcessRequest* req,
                                 google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      if (req->exec_id().empty()) return InvalidArgument("exec id cannot be empty");
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      if (auto st = identifiers::Validate(req->exec_id()); !st) {
        return std::move(st).error().Wrap(fmt::format("invalid exec id {}", req->exec_id()));
      }
      return task->Exec(req->exec_id(), {.spec = req->spec(),
                                         .stdin_path = req->stdin(),
                                         .stdout_path = req->stdout(),
                                         .stderr_path = req->stderr(),
                                         .terminal = req->terminal()});
    });
  }

  grpc::ServerUnaryReactor* ResizePty(grpc::CallbackServerContext* rpc,
                                      const api::ResizePtyRequest* req,
                                      google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      if (!req->exec_id().empty()) BERTH_TRY(task->State(req->exec_id(), kStateTimeout));
      return task->ResizePty(req->exec_id(), req->width(), req->height());
    });
  }

  grpc::ServerUnaryReactor* CloseIO(grpc::CallbackServerContext* rpc,
                                    const api::CloseIORequest* req,
                                    google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      if (!req->exec_id().empty()) BERTH_TRY(task->State(req->exec_id(), kStateTimeout));
      if (!req->stdin()) return Ok();
      return task->CloseStdin(req->exec_id());
    });
  }

  grpc::ServerUnaryReactor* Pause(grpc::CallbackServerContext* rpc,
                                  const api::PauseTaskRequest* req,
                                  google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      return task->Pause();
    });
  }

  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* rpc,
                                   const api::ResumeTaskRequest* req,
                                   google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      return task->Resume();
    });
  }

  grpc::ServerUnaryReactor* ListPids(grpc::CallbackServerContext* rpc,
                                     const api::ListPidsRequest* req,
                                     api::ListPidsResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      BERTH_ASSIGN_OR_RETURN(auto pids, task->Pids());
      for (const auto& p : pids) {
        auto* out = resp->add_processes();
        out->set_pid(p.pid);
        if (p.info) *out->mutable_info() = *p.info;
      }
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Checkpoint(grpc::CallbackServerContext* rpc,
                                       const api::CheckpointTaskRequest* req,
                                       api::CheckpointTaskResponse*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto container, containers_->Get(ctx, req->container_id()));
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      std::string image_path;
      if (req->has_options() && IsRuncRuntime(container.runtime.name)) {
        containerd::runc::v1::CheckpointOptions o;
        if (req->options().type_url() != "containerd.runc.v1.CheckpointOptions" ||
            !o.ParseFromString(req->options().value())) {
          return InvalidArgument(
              fmt::format("invalid task checkpoint option for {}", container.runtime.name));
        }
        image_path = o.image_path();
      }
      if (image_path.empty()) {
        // containerd tars the image into the content store; berth only checkpoints to a path.
        return NotImplemented(
            "checkpoint into the content store (give CheckpointOptions.image_path)");
      }
      return task->Checkpoint(image_path, req->options());
    });
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* rpc,
                                   const api::UpdateTaskRequest* req,
                                   google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto task, GetTask(ctx, req->container_id()));
      std::optional<google::protobuf::Any> resources;
      if (req->has_resources()) resources = req->resources();
      return task->Update(resources, ToMap(req->annotations()));
    });
  }

  grpc::ServerUnaryReactor* Metrics(grpc::CallbackServerContext* rpc,
                                    const api::MetricsRequest* req,
                                    api::MetricsResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto filter, filters::ParseAll(std::vector<std::string>(
                                              req->filters().begin(), req->filters().end())));
      for (const auto& task : tasks_.List(ctx)) {
        bool match =
            filter.Match([&](const std::vector<std::string>& path) -> std::optional<std::string> {
              if (path.empty()) return std::nullopt;
              if (path[0] == "id") return task->Id();
              if (path[0] == "namespace") return task->Namespace();
              return std::nullopt;
            });
        if (!match) continue;
        Timestamp collected = Now();
        auto stats = task->Stats();
        if (!stats) {
          if (!stats.error().Is(Errc::kNotFound)) {
            log::L().With("id", task->Id()).WithError(stats.error()).Error("collecting metrics");
          }
          continue;
        }
        auto* m = resp->add_metrics();
        SetTimestamp(collected, m->mutable_timestamp());
        m->set_id(task->Id());
        *m->mutable_data() = std::move(stats).value();
      }
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Wait(grpc::CallbackServerContext* rpc, const api::WaitRequest* req,
                                 api::WaitResponse* resp) override {
    auto* reactor = new WaitReactor();
    auto shared = reactor->State();
    auto ctx = NamespacedContextFrom(rpc);
    if (!ctx) {
      WaitReactor::FinishOnce(shared, ToGrpc(ctx.error()));
      return reactor;
    }
    auto task = GetTask(*ctx, req->container_id());
    if (!task) {
      WaitReactor::FinishOnce(shared, ToGrpc(task.error()));
      return reactor;
    }
    // Answered on the io thread whenever the process exits; `resp` lives until Finish.
    (*task)->Wait(req->exec_id(), [shared, resp](Result<runtime::ExitStatus> r) {
      WaitReactor* rr = WaitReactor::Take(shared);
      if (rr == nullptr) return;  // cancelled meanwhile
      if (!r) {
        rr->Finish(ToGrpc(r.error()));
        return;
      }
      resp->set_exit_status(r->status);
      SetTimestamp(r->exited_at, resp->mutable_exited_at());
      rr->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  template <class Fn>
  grpc::ServerUnaryReactor* Pool(grpc::CallbackServerContext* rpc, Fn fn) {
    auto ctx = NamespacedContextFrom(rpc);
    return OnPool(rpc, [ctx = std::move(ctx), fn = std::move(fn)]() mutable -> Status {
      BERTH_TRY(ctx);
      return fn(*ctx);
    });
  }

  // The container must exist, then its task (containerd's getTask).
  Result<std::shared_ptr<runtime::Task>> GetTask(const Context& ctx, const std::string& id) {
    BERTH_TRY(containers_->Get(ctx, id));
    auto task = tasks_.Get(ctx, id);
    if (!task) return NotFound(fmt::format("task {} not found", id));
    return task;
  }

  static void ToProcess(const runtime::ProcessState& st, containerd::v1::types::Process* out) {
    out->set_id(st.id);
    out->set_pid(st.pid);
    out->set_status(static_cast<containerd::v1::types::Status>(st.status));
    out->set_stdin(st.stdin_path);
    out->set_stdout(st.stdout_path);
    out->set_stderr(st.stderr_path);
    out->set_terminal(st.terminal);
    out->set_exit_status(st.exit_status);
    if (st.exited_at) {
      SetTimestamp(*st.exited_at, out->mutable_exited_at());
    } else {
      out->mutable_exited_at()->set_seconds(kGoZeroTimeSeconds);  // as the shim sent it
    }
  }

  runtime::TaskManager& tasks_;
  std::shared_ptr<metadata::ContainerStore> containers_;
};

}  // namespace

void RegisterTasks(plugin::Registry& registry) {
  registry.Add({.type = plugin::kService,
                .id = "tasks-service",
                .requires_types = {plugin::kRuntimeV2, plugin::kMetadata},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  BERTH_ASSIGN_OR_RETURN(auto* tasks,
                                         ic.GetSingle<runtime::TaskManager>(plugin::kRuntimeV2));
                  BERTH_ASSIGN_OR_RETURN(auto* db, ic.GetSingle<metadata::Db>(plugin::kMetadata));
                  return plugin::Instance::Of<grpc::Service>(std::make_shared<TasksService>(
                      *tasks, std::make_shared<metadata::ContainerStore>(*db)));
                }});
  registry.Add({.type = plugin::kGrpc,
                .id = "tasks",
                .requires_types = {plugin::kService},
                .init = [](plugin::InitContext& ic) -> Result<plugin::Instance> {
                  // The service object is the grpc one (containerd wraps local in a thin
                  // grpc adapter; here they are one class).
                  for (const auto& p : ic.Plugins().All()) {
                    if (p->registration->type == plugin::kService &&
                        p->registration->id == "tasks-service" && p->instance) {
                      if (auto* s = p->instance->As<grpc::Service>()) {
                        (void)s;
                        return *p->instance;
                      }
                    }
                  }
                  return NotFound("tasks-service is not loaded");
                }});
}

}  // namespace berth::services

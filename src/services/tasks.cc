// containerd.services.tasks.v1.Tasks over the runtime's TaskManager (containerd 1.6
// services/tasks/local.go). Every call that talks to a shim runs on the services pool; Wait is
// answered from the ttrpc io thread when the shim replies, so it holds no thread while waiting.
#include <github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h>
#include <github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h>
#include <github.com/containerd/containerd/runtime/v2/task/shim.pb.h>

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
namespace v2 = containerd::task::v2;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kStateTimeout = seconds(2);  // io.containerd.timeout.task.state

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
      resp->set_pid(created.second);
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* rpc, const api::StartRequest* req,
                                  api::StartResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      v2::StartRequest sreq;
      sreq.set_id(shim->Id());
      sreq.set_exec_id(req->exec_id());
      BERTH_ASSIGN_OR_RETURN(auto r, shim->Call<v2::StartResponse>("Start", sreq));
      resp->set_pid(r.pid());
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
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      BERTH_TRY(ProcessState(*shim, req->exec_id()));
      v2::DeleteRequest dreq;
      dreq.set_id(shim->Id());
      dreq.set_exec_id(req->exec_id());
      BERTH_ASSIGN_OR_RETURN(auto r, shim->Call<v2::DeleteResponse>("Delete", dreq));
      resp->set_id(req->exec_id());
      resp->set_pid(r.pid());
      resp->set_exit_status(r.exit_status());
      *resp->mutable_exited_at() = r.exited_at();
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* rpc, const api::GetRequest* req,
                                api::GetResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      BERTH_ASSIGN_OR_RETURN(auto st, ProcessState(*shim, req->exec_id()));
      ToProcess(st, req->exec_id().empty() ? shim->Id() : req->exec_id(), resp->mutable_process());
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* rpc, const api::ListTasksRequest*,
                                 api::ListTasksResponse* resp) override {
    return Pool(rpc, [this, resp](const Context& ctx) -> Status {
      for (const auto& shim : tasks_.List(ctx)) {
        auto st = ProcessState(*shim, "");
        if (!st) {
          if (!st.error().Is(Errc::kNotFound)) {
            log::L().With("id", shim->Id()).WithError(st.error()).Error("get task state");
          }
          continue;
        }
        ToProcess(*st, shim->Id(), resp->add_tasks());
      }
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Kill(grpc::CallbackServerContext* rpc, const api::KillRequest* req,
                                 google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      if (!req->exec_id().empty()) BERTH_TRY(ProcessState(*shim, req->exec_id()));
      v2::KillRequest k;
      k.set_id(shim->Id());
      k.set_exec_id(req->exec_id());
      k.set_signal(req->signal());
      k.set_all(req->all());
      return Empty(shim->Call<google::protobuf::Empty>("Kill", k));
    });
  }

  grpc::ServerUnaryReactor* Exec(grpc::CallbackServerContext* rpc,
                                 const api::ExecProcessRequest* req,
                                 google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      if (req->exec_id().empty()) return InvalidArgument("exec id cannot be empty");
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      if (auto st = identifiers::Validate(req->exec_id()); !st) {
        return std::move(st).error().Wrap(fmt::format("invalid exec id {}", req->exec_id()));
      }
      v2::ExecProcessRequest e;
      e.set_id(shim->Id());
      e.set_exec_id(req->exec_id());
      e.set_stdin(req->stdin());
      e.set_stdout(req->stdout());
      e.set_stderr(req->stderr());
      e.set_terminal(req->terminal());
      if (req->has_spec()) *e.mutable_spec() = req->spec();
      return Empty(shim->Call<google::protobuf::Empty>("Exec", e));
    });
  }

  grpc::ServerUnaryReactor* ResizePty(grpc::CallbackServerContext* rpc,
                                      const api::ResizePtyRequest* req,
                                      google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      if (!req->exec_id().empty()) BERTH_TRY(ProcessState(*shim, req->exec_id()));
      v2::ResizePtyRequest r;
      r.set_id(shim->Id());
      r.set_exec_id(req->exec_id());
      r.set_width(req->width());
      r.set_height(req->height());
      return Empty(shim->Call<google::protobuf::Empty>("ResizePty", r));
    });
  }

  grpc::ServerUnaryReactor* CloseIO(grpc::CallbackServerContext* rpc,
                                    const api::CloseIORequest* req,
                                    google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      if (!req->exec_id().empty()) BERTH_TRY(ProcessState(*shim, req->exec_id()));
      if (!req->stdin()) return Ok();
      v2::CloseIORequest c;
      c.set_id(shim->Id());
      c.set_exec_id(req->exec_id());
      c.set_stdin(true);
      return Empty(shim->Call<google::protobuf::Empty>("CloseIO", c));
    });
  }

  grpc::ServerUnaryReactor* Pause(grpc::CallbackServerContext* rpc,
                                  const api::PauseTaskRequest* req,
                                  google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      v2::PauseRequest p;
      p.set_id(shim->Id());
      return Empty(shim->Call<google::protobuf::Empty>("Pause", p));
    });
  }

  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* rpc,
                                   const api::ResumeTaskRequest* req,
                                   google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      v2::ResumeRequest p;
      p.set_id(shim->Id());
      return Empty(shim->Call<google::protobuf::Empty>("Resume", p));
    });
  }

  grpc::ServerUnaryReactor* ListPids(grpc::CallbackServerContext* rpc,
                                     const api::ListPidsRequest* req,
                                     api::ListPidsResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      v2::PidsRequest p;
      p.set_id(shim->Id());
      BERTH_ASSIGN_OR_RETURN(auto r, shim->Call<v2::PidsResponse>("Pids", p));
      *resp->mutable_processes() = r.processes();
      return Ok();
    });
  }

  grpc::ServerUnaryReactor* Checkpoint(grpc::CallbackServerContext* rpc,
                                       const api::CheckpointTaskRequest* req,
                                       api::CheckpointTaskResponse*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto container, containers_->Get(ctx, req->container_id()));
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
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
      v2::CheckpointTaskRequest c;
      c.set_id(shim->Id());
      c.set_path(image_path);
      *c.mutable_options() = req->options();
      return Empty(shim->Call<google::protobuf::Empty>("Checkpoint", c));
    });
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* rpc,
                                   const api::UpdateTaskRequest* req,
                                   google::protobuf::Empty*) override {
    return Pool(rpc, [this, req](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto shim, GetTask(ctx, req->container_id()));
      v2::UpdateTaskRequest u;
      u.set_id(shim->Id());
      if (req->has_resources()) *u.mutable_resources() = req->resources();
      *u.mutable_annotations() = req->annotations();
      return Empty(shim->Call<google::protobuf::Empty>("Update", u));
    });
  }

  grpc::ServerUnaryReactor* Metrics(grpc::CallbackServerContext* rpc,
                                    const api::MetricsRequest* req,
                                    api::MetricsResponse* resp) override {
    return Pool(rpc, [this, req, resp](const Context& ctx) -> Status {
      BERTH_ASSIGN_OR_RETURN(auto filter, filters::ParseAll(std::vector<std::string>(
                                              req->filters().begin(), req->filters().end())));
      for (const auto& shim : tasks_.List(ctx)) {
        bool match =
            filter.Match([&](const std::vector<std::string>& path) -> std::optional<std::string> {
              if (path.empty()) return std::nullopt;
              if (path[0] == "id") return shim->Id();
              if (path[0] == "namespace") return shim->Namespace();
              return std::nullopt;
            });
        if (!match) continue;
        Timestamp collected = Now();
        v2::StatsRequest s;
        s.set_id(shim->Id());
        auto stats = shim->Call<v2::StatsResponse>("Stats", s);
        if (!stats) {
          if (!stats.error().Is(Errc::kNotFound)) {
            log::L().With("id", shim->Id()).WithError(stats.error()).Error("collecting metrics");
          }
          continue;
        }
        auto* m = resp->add_metrics();
        SetTimestamp(collected, m->mutable_timestamp());
        m->set_id(shim->Id());
        *m->mutable_data() = stats->stats();
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
    auto shim = GetTask(*ctx, req->container_id());
    if (!shim) {
      WaitReactor::FinishOnce(shared, ToGrpc(shim.error()));
      return reactor;
    }
    v2::WaitRequest w;
    w.set_id((*shim)->Id());
    w.set_exec_id(req->exec_id());
    // Answered on the io thread whenever the process exits; `resp` lives until Finish.
    (*shim)->CallAsync<v2::WaitResponse>("Wait", w, [shared, resp](Result<v2::WaitResponse> r) {
      WaitReactor* rr = WaitReactor::Take(shared);
      if (rr == nullptr) return;  // cancelled meanwhile
      if (!r) {
        rr->Finish(ToGrpc(r.error()));
        return;
      }
      resp->set_exit_status(r->exit_status());
      *resp->mutable_exited_at() = r->exited_at();
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

  static Status Empty(const Result<google::protobuf::Empty>& r) {
    if (!r) return r.error();
    return Ok();
  }

  // The container must exist, then its task (containerd's getTask).
  Result<std::shared_ptr<runtime::Shim>> GetTask(const Context& ctx, const std::string& id) {
    BERTH_TRY(containers_->Get(ctx, id));
    auto shim = tasks_.Get(ctx, id);
    if (!shim) return NotFound(fmt::format("task {} not found", id));
    return shim;
  }

  // The shim's state of the init process ("" exec id) or an exec'd one; NotFound when the shim
  // is gone (its cleanup is under way).
  static Result<v2::StateResponse> ProcessState(runtime::Shim& shim, const std::string& exec_id) {
    v2::StateRequest s;
    s.set_id(shim.Id());
    s.set_exec_id(exec_id);
    auto r = shim.Call<v2::StateResponse>("State", s, kStateTimeout);
    if (!r && shim.Closed()) return NotFound(fmt::format("task {} not found", shim.Id()));
    return r;
  }

  static void ToProcess(const v2::StateResponse& st, const std::string& id,
                        containerd::v1::types::Process* out) {
    out->set_id(id);
    out->set_pid(st.pid());
    out->set_status(st.status());
    out->set_stdin(st.stdin());
    out->set_stdout(st.stdout());
    out->set_stderr(st.stderr());
    out->set_terminal(st.terminal());
    out->set_exit_status(st.exit_status());
    *out->mutable_exited_at() = st.exited_at();
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

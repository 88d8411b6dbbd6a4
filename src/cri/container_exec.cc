// ExecSync (containerd 1.6 container_execsync.go; reference/cri.md §11): the container's
// process spec with the given argv, output captured (16 MiB per stream), a timeout that kills.
#include <future>

#include <fmt/format.h>

#include "common/log.h"
#include "cri/io/exec_io.h"
#include "cri/service.h"

namespace berth::cri {

Status Service::ExecSync(const CallContext& cc, const v1::ExecSyncRequest& req,
                         v1::ExecSyncResponse* resp) {
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(req.container_id()));
  std::shared_ptr<runtime::Task> task;
  {
    std::lock_guard lock(c->mu);
    auto state = c->status.State();
    if (state != v1::CONTAINER_RUNNING || c->task == nullptr) {
      return Unknown(fmt::format("container is in {} state", v1::ContainerState_Name(state)));
    }
    task = c->task;
  }
  if (req.cmd().empty()) return InvalidArgument("cmd cannot be empty");
  BERTH_ASSIGN_OR_RETURN(oci::Spec spec, ContainerSpecOf(c->meta.id));
  nlohmann::json process = spec.value("process", nlohmann::json::object());
  process["args"] = std::vector<std::string>(req.cmd().begin(), req.cmd().end());
  process.erase("terminal");

  const std::string exec_id = GenerateId();
  auto eio = io::ExecIo::Create(io_, ContainerStateDir(c->meta.id) + "/io", exec_id,
                                {.stdin = false, .tty = false});
  if (!eio) return std::move(eio).error().Wrap("failed to create exec io");
  struct Closer {
    io::ExecIo& e;
    ~Closer() { (void)e.Close(); }
  } closer{*eio};

  runtime::ExecOpts opts;
  opts.spec.set_type_url(std::string(oci::kProcessTypeUrl));
  opts.spec.set_value(process.dump());
  opts.stdout_path = eio->Fifos().stdout_path;
  opts.stderr_path = eio->Fifos().stderr_path;
  if (auto st = task->Exec(exec_id, opts); !st) {
    return std::move(st).error().Wrap(fmt::format("failed to create exec {:?}", exec_id));
  }
  auto remove = [&] {
    if (auto d = task->DeleteProcess(exec_id); !d && !d.error().Is(Errc::kNotFound)) {
      log::L().With("exec", exec_id).WithError(d.error()).Warn("delete exec process");
    }
  };
  auto exited = std::make_shared<std::promise<Result<runtime::ExitStatus>>>();
  auto exit_future = exited->get_future();
  task->Wait(exec_id, [exited](Result<runtime::ExitStatus> r) { exited->set_value(std::move(r)); });
  if (auto started = task->Start(exec_id); !started) {
    remove();
    return std::move(started).error().Wrap(fmt::format("failed to start exec {:?}", exec_id));
  }
  eio->Started();

  auto deadline = cc.deadline;
  if (req.timeout() > 0) {
    deadline =
        std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(req.timeout()));
  }
  auto timed_out = [&]() -> Status {
    (void)task->Kill(exec_id, SIGKILL, false);
    exit_future.wait_for(std::chrono::seconds(10));
    eio->Cancel();
    remove();
    return Error(Errc::kDeadlineExceeded,
                 fmt::format("timeout {}s exceeded: context deadline exceeded", req.timeout()));
  };
  if (exit_future.wait_until(deadline) != std::future_status::ready) return timed_out();
  Result<runtime::ExitStatus> exit = exit_future.get();
  auto remaining = deadline - std::chrono::steady_clock::now();
  if (deadline == std::chrono::steady_clock::time_point::max()) remaining = std::chrono::hours(24);
  if (auto st =
          eio->Wait(std::max<std::chrono::nanoseconds>(remaining, std::chrono::nanoseconds(0)));
      !st) {
    if (st.error().Is(Errc::kDeadlineExceeded)) return timed_out();
  }
  remove();
  if (!exit) return std::move(exit).error().Wrap("failed to wait for exec process");
  io::ExecOutput out = eio->TakeOutput();
  resp->set_stdout(std::move(out.stdout_data));
  resp->set_stderr(std::move(out.stderr_data));
  resp->set_exit_code(static_cast<int32_t>(exit->status));
  return Ok();
}

}  // namespace berth::cri

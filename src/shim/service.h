#pragma once
// containerd.task.v2.Task served by the shim, with the runc shim's (runtime/v2/runc) process
// states, errors and events. Everything runs on one io_context thread: no locks.
//
// Processes: a container's init ("" exec id) and its execs. States: created -> running <->
// paused -> stopped -> deleted (execs have no paused). Wrong-state calls fail with containerd's
// texts ("cannot delete a running process", ...) as Unknown; an unknown container is NotFound
// "container not created"; an unknown exec is NotFound "process does not exist <id>".
//
// Exits come from the reaper (OnExit): the exit code is recorded with its time, Wait callers are
// answered and /tasks/exit is published. The runtime runs synchronously on the loop, so a
// process's start event always precedes its exit event.
#include <sys/types.h>

#include <asio.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/errdefs.h"
#include "common/timeutil.h"
#include "github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "shim/cgroups.h"
#include "shim/events.h"
#include "shim/oom.h"
#include "shim/runc.h"
#include "shim/stdio.h"
#include "ttrpc/ttrpc.h"

namespace berth::shim {

namespace task = containerd::task::v2;
using RuncOptions = containerd::runc::v1::Options;

// Default parent of runc's --root (the namespace is appended, as containerd does).
inline constexpr const char* kDefaultRuncRoot = "/run/berth/runc";

enum class ProcState { kCreated, kRunning, kPaused, kStopped, kDeleted };

struct Process {
  std::string id;  // exec id; the container id for init
  bool is_init = false;
  pid_t pid = 0;
  ProcState state = ProcState::kCreated;
  Stdio stdio;
  int exit_status = 0;
  std::optional<Timestamp> exited_at;
  std::unique_ptr<ProcessIo> io;
  std::vector<ttrpc::TypedResponder<task::WaitResponse>> waiters;
  std::string spec_json;  // exec: the OCI process
  bool deleting = false;
};

struct Container {
  std::string id;
  std::string bundle;
  std::string rootfs;  // mounted at <bundle>/rootfs when Create had mounts, else ""
  RuncOptions options;
  std::unique_ptr<Runc> runc;
  std::unique_ptr<Process> init;
  std::map<std::string, std::unique_ptr<Process>> execs;
  std::optional<Cgroup> cgroup;
  bool kill_all_on_exit = false;  // no pid namespace of its own
};

struct ServiceConfig {
  std::string ns;
  std::string runc_root = kDefaultRuncRoot;
  CgroupMode cgroup_mode = CgroupMode::kLegacy;
};

class Service {
 public:
  // `shutdown` is called once, from within the Shutdown rpc (before its answer), when the shim
  // decides to exit; it must not block (the exit itself is posted).
  Service(asio::io_context& io, ServiceConfig config, Publisher& publisher,
          std::function<void()> shutdown);
  ~Service();

  void Register(ttrpc::Server& server);
  // A reaped child: records the exit of the process it belongs to, if any.
  void OnExit(pid_t pid, int exit_code);
  bool Empty() const { return containers_.empty(); }

  Result<task::CreateTaskResponse> Create(const task::CreateTaskRequest& req);
  Result<task::StartResponse> Start(const task::StartRequest& req);
  void Delete(const task::DeleteRequest& req, ttrpc::TypedResponder<task::DeleteResponse> r);
  Status Exec(const task::ExecProcessRequest& req);
  Result<task::StateResponse> State(const task::StateRequest& req);
  Result<task::PidsResponse> Pids(const task::PidsRequest& req);
  Status Pause(const task::PauseRequest& req);
  Status Resume(const task::ResumeRequest& req);
  Status Kill(const task::KillRequest& req);
  Status ResizePty(const task::ResizePtyRequest& req);
  Status CloseIo(const task::CloseIORequest& req);
  Status Update(const task::UpdateTaskRequest& req);
  void Wait(const task::WaitRequest& req, ttrpc::TypedResponder<task::WaitResponse> r);
  Result<task::StatsResponse> Stats(const task::StatsRequest& req);
  Result<task::ConnectResponse> Connect(const task::ConnectRequest& req);
  Status Shutdown(const task::ShutdownRequest& req);

 private:
  Result<Container*> GetContainer(const std::string& id);
  Result<Process*> GetProcess(Container& c, const std::string& exec_id);
  Status StartExec(Container& c, Process& p);
  void FinishDelete(const std::string& id, const std::string& exec_id,
                    ttrpc::TypedResponder<task::DeleteResponse> r);
  void SetExited(Container& c, Process& p, int exit_code);

  asio::io_context& io_;
  ServiceConfig config_;
  Publisher& publisher_;
  std::function<void()> shutdown_;
  bool shutting_down_ = false;
  OomWatcher oom_;
  std::map<std::string, std::unique_ptr<Container>> containers_;
};

// True unless the bundle's config.json gives the container a new pid namespace of its own (a
// pid namespace entry without a path); an unreadable spec counts as shared (runc.go
// ShouldKillAllOnExit).
bool ShouldKillAllOnExit(const std::string& bundle);

// The runc options as containerd writes options.json (proto field names, defaults omitted).
std::string OptionsJson(const RuncOptions& options);
Result<RuncOptions> ParseOptionsJson(const std::string& json);

}  // namespace berth::shim

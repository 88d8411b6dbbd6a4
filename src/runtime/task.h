#pragma once
// The typed task interface (containerd 1.6 runtime.Task + runtime.Process): what services/ and
// cri/ do with a running container and its exec'd processes, without building shim requests.
// The one implementation is runtime::Shim, over the shim v2 ttrpc protocol (a process boundary).
//
// Every call names a process by exec id: "" is the task's init process. Calls block (bounded by
// kDefaultTimeout unless said otherwise) except Wait, which answers later from the runtime's io
// thread and must therefore never be awaited on that thread. Errors are the shim's, mapped to
// berth's classes: NotFound "process does not exist <id>" for an unknown exec id, NotFound when
// the shim is gone (its cleanup is under way), Unknown for state errors ("cannot start a
// stopped process", ...), as containerd-shim-runc-v2 answers.
#include <google/protobuf/any.pb.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/errdefs.h"
#include "common/timeutil.h"

namespace berth::runtime {

// containerd.v1.types.Status values.
enum class ProcessStatus : int {
  kUnknown = 0,
  kCreated = 1,
  kRunning = 2,
  kStopped = 3,
  kPaused = 4,
  kPausing = 5
};

struct ProcessState {
  std::string id;  // the task id for init, else the exec id
  uint32_t pid = 0;
  ProcessStatus status = ProcessStatus::kUnknown;
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  bool terminal = false;
  uint32_t exit_status = 0;
  std::optional<Timestamp> exited_at;  // none while it runs (the shim sends Go's zero time)
};

// How a process ended (Wait).
struct ExitStatus {
  uint32_t status = 0;
  Timestamp exited_at{};
};

// A removed process or task (Delete).
struct Exit {
  uint32_t pid = 0;
  uint32_t status = 0;
  Timestamp exited_at;
};

struct ExecOpts {
  // The OCI process JSON (runtime-spec Process), as an Any of oci::kProcessTypeUrl.
  google::protobuf::Any spec;
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  bool terminal = false;
};

struct ProcessInfo {
  uint32_t pid = 0;
  std::optional<google::protobuf::Any>
      info;  // runtime-specific (runc: containerd.runc.v1.ProcessDetails)
};

class Task {
 public:
  virtual ~Task() = default;

  virtual const std::string& Id() const = 0;
  virtual const std::string& Namespace() const = 0;
  // The init process's pid as the shim reported it at create (or reconnect).
  virtual uint32_t Pid() const = 0;
  // Whether the connection to the shim is gone.
  virtual bool Closed() const = 0;

  // Starts a created process; returns its pid.
  virtual Result<uint32_t> Start(const std::string& exec_id) = 0;
  // Signals a process; `all` signals every process of the container (init only).
  // NotFound "process already finished" when it has exited.
  virtual Status Kill(const std::string& exec_id, uint32_t signal, bool all) = 0;
  // Calls `done` once the process has exited (immediately if it has), from the io thread.
  // `done` gets an error if the shim goes away first.
  virtual void Wait(const std::string& exec_id, std::function<void(Result<ExitStatus>)> done) = 0;
  // State of a process; `timeout` bounds the call (containerd: 2 s for task state).
  virtual Result<ProcessState> State(const std::string& exec_id,
                                     std::chrono::milliseconds timeout) = 0;
  // Adds an exec'd process (created, not started). AlreadyExists "id <exec_id>" for a duplicate.
  virtual Status Exec(const std::string& exec_id, const ExecOpts& opts) = 0;
  // Removes an exited exec'd process (the init process goes with TaskManager::Delete).
  virtual Result<Exit> DeleteProcess(const std::string& exec_id) = 0;
  virtual Status ResizePty(const std::string& exec_id, uint32_t width, uint32_t height) = 0;
  // Closes the process's stdin.
  virtual Status CloseStdin(const std::string& exec_id) = 0;
  virtual Status Pause() = 0;
  virtual Status Resume() = 0;
  virtual Result<std::vector<ProcessInfo>> Pids() = 0;
  // New resources (an Any of oci::kResourcesTypeUrl holding LinuxResources JSON) and annotations.
  virtual Status Update(const std::optional<google::protobuf::Any>& resources,
                        const std::map<std::string, std::string>& annotations) = 0;
  // The container's cgroup metrics (io.containerd.cgroups.v1.Metrics or .v2.Metrics).
  // NotFound when the cgroup is gone.
  virtual Result<google::protobuf::Any> Stats() = 0;
  // Checkpoints the task into `path` with runtime-specific options.
  virtual Status Checkpoint(const std::string& path,
                            const std::optional<google::protobuf::Any>& options) = 0;
};

}  // namespace berth::runtime

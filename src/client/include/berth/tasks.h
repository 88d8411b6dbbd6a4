#pragma once
// Tasks and processes (containerd's tasks service as the Go client's Task and Process): a task
// is the container's init process; Exec adds more processes to it.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "berth/cio.h"
#include "berth/errors.h"

namespace berth {

namespace detail {
struct ClientState;
struct ProcessState;
}  // namespace detail

struct ExitStatus {
  uint32_t code = 0;
  std::chrono::system_clock::time_point exited_at{};
};

// A process's state (containerd's task status).
enum class TaskState { kUnknown, kCreated, kRunning, kStopped, kPaused, kPausing };
// "unknown", "created", "running", "stopped", "paused", "pausing" (ctr's words, lower case).
std::string_view StateName(TaskState state);

struct ProcessStatus {
  TaskState state = TaskState::kUnknown;
  uint32_t exit_status = 0;
  std::chrono::system_clock::time_point exited_at{};
};

// A Wait call in flight (issued before Start, as the Go client does, so no exit is missed).
class ExitWaiter {
 public:
  struct Impl;
  explicit ExitWaiter(std::shared_ptr<Impl> impl);
  ~ExitWaiter();
  ExitWaiter(ExitWaiter&&) noexcept;
  ExitWaiter& operator=(ExitWaiter&&) noexcept;

  // Blocks until the process exits: its status, or why waiting failed (Canceled after Cancel).
  Result<ExitStatus> Get();
  // As Get, for at most `timeout`: nullopt while the process still runs.
  std::optional<Result<ExitStatus>> GetFor(std::chrono::nanoseconds timeout);
  // Gives up waiting (Get returns Canceled).
  void Cancel();

 private:
  std::shared_ptr<Impl> impl_;
};

// One task as the tasks list shows it.
struct TaskInfo {
  std::string id;  // the container's id
  uint32_t pid = 0;
  TaskState state = TaskState::kUnknown;
  uint32_t exit_status = 0;
};

struct ProcessInfo {
  uint32_t pid = 0;
  std::string info_type_url;  // runtime-specific details (an Any), may be empty
  std::string info;
};

struct Metrics {
  std::chrono::system_clock::time_point timestamp{};
  std::string id;
  std::string type_url;  // e.g. io.containerd.cgroups.v1.Metrics / v2
  std::string data;      // the metrics message, protobuf bytes
};

// Errors are the daemon's, unwrapped (as the Go client's errdefs.FromGRPC): a missing task is
// NotFound "task <id> not found", a running one deleted is FailedPrecondition.
class Process {
 public:
  explicit Process(std::shared_ptr<detail::ProcessState> state);
  virtual ~Process();
  Process(const Process&) = default;
  Process& operator=(const Process&) = default;
  Process(Process&&) = default;
  Process& operator=(Process&&) = default;

  // The container id, and the exec id ("" for the task itself).
  const std::string& ContainerId() const;
  const std::string& ExecId() const;
  uint32_t Pid() const;

  // Starts the process; its pid.
  Result<uint32_t> Start();
  // Sends `signal`; `all` signals every process of the task.
  Status Kill(int signal, bool all = false) const;
  // Starts a Wait call on its own thread.
  Result<ExitWaiter> Wait() const;
  // Closes the process's stdin (EOF inside).
  Status CloseIO() const;
  // Resizes its pty.
  Status Resize(uint32_t width, uint32_t height) const;
  Result<ProcessStatus> GetStatus() const;
  // The process's stdio (null when it was loaded without attaching).
  cio::IO* IO() const;
  // process.Delete: lets the output drain, deletes the process in the shim and returns its exit
  // status; the IO goes with it. FailedPrecondition while it is running.
  Result<ExitStatus> Delete();

 protected:
  std::shared_ptr<detail::ProcessState> state_;
};

class Task : public Process {
 public:
  using Process::Process;

  Status Pause() const;
  Status Resume() const;
  Result<std::vector<ProcessInfo>> Pids() const;
  Result<Metrics> GetMetrics() const;
  // task.Update(WithResources): the container's new resources, as OCI LinuxResources JSON text
  // holding only what changes ({"memory":{"limit":...}}).
  Status Update(const std::string& resources_json) const;
  // task.Exec: a new process in the task's container, from an OCI process spec (JSON: args,
  // env, cwd, user, terminal, ...), with stdio from `io`; Start it afterwards.
  Result<Process> Exec(const std::string& exec_id, const nlohmann::json& process_spec,
                       const cio::Creator& io) const;
  // task.LoadProcess: an exec'd process that exists, without attaching to its stdio.
  Result<Process> LoadProcess(const std::string& exec_id) const;
  // The process spec of the container's init process (a base for Exec).
  Result<nlohmann::json> ProcessSpec() const;
};

}  // namespace berth

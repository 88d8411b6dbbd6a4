#pragma once
// The task manager (containerd 1.6 runtime/v2 ShimManager + TaskManager), plugin
// io.containerd.runtime.v2 "task": creates bundles, launches shims and connects to them, keeps
// the list of live tasks per namespace, removes them, and on start-up reconnects to the shims
// that outlived a previous daemon (restart recovery).
//
// Threads: one asio io thread carries every shim connection (ttrpc) and log copy; blocking work
// (shim binaries, bundle removal) runs on the caller's thread, or, for a shim that died, on the
// manager's own cleanup thread. Shims are never stopped when the manager goes away: tasks keep
// running while berthd is down.
#include <google/protobuf/any.pb.h>

#include <asio.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/context.h"
#include "common/errdefs.h"
#include "common/mount.h"
#include "common/timeutil.h"
#include "events/events.h"
#include "runtime/binary.h"
#include "runtime/config.h"
#include "runtime/shim.h"
#include "runtime/task.h"

namespace berth::runtime {

inline constexpr const char* kPluginId = "task";  // io.containerd.runtime.v2.task

struct ManagerOptions {
  std::string root;   // <root>/io.containerd.runtime.v2.task (work dirs)
  std::string state;  // <state>/io.containerd.runtime.v2.task (bundles)
  std::string grpc_address;
  std::string ttrpc_address;
  std::string daemon_exe;  // -publish-binary; its directory is searched for shims
  Config config;
  bool debug = false;                      // pass -debug to shims
  events::Publisher* publisher = nullptr;  // for the events of shims found dead
  // The runtime name of a container, for loading a bundle without shim-binary-path.
  std::function<Result<std::string>(const Context&, const std::string& id)> container_runtime;
};

// What Create needs (containerd's runtime.CreateOpts).
struct CreateOpts {
  std::string spec;  // config.json (the container's spec JSON)
  std::vector<mount::Mount> rootfs;
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  bool terminal = false;
  std::string checkpoint;
  std::string runtime;  // runtime name or absolute shim path
  std::optional<google::protobuf::Any> runtime_options;
  std::optional<google::protobuf::Any> task_options;
};

class TaskManager {
 public:
  // Creates the dirs, starts the io thread and loads the tasks of every namespace found in the
  // state dir (see Load()).
  static Result<std::unique_ptr<TaskManager>> Open(ManagerOptions options);
  // Closes every connection and leaves the shims running.
  ~TaskManager();
  TaskManager(const TaskManager&) = delete;
  TaskManager& operator=(const TaskManager&) = delete;

  // Bundle + `start` + connect + shim Create. AlreadyExists when the namespace has task `id`;
  // a failing shim Create is answered by shim Delete + Shutdown and bundle removal, and its
  // error is returned. Returns the task; its Pid() is the init pid (from Connect).
  Result<std::shared_ptr<Task>> Create(const Context& ctx, const std::string& id, CreateOpts opts);
  // NotFound "task <id> not found".
  Result<std::shared_ptr<Task>> Get(const Context& ctx, const std::string& id) const;
  // Tasks of ctx.ns ("" = every namespace).
  std::vector<std::shared_ptr<Task>> List(const Context& ctx) const;
  // shim Delete, then Shutdown, close and bundle removal. The shim's error (e.g. a running
  // task) is returned with the task kept; a shim whose connection is gone is cleaned up with
  // its `delete` binary and NotFound comes back.
  Result<Exit> Delete(const Context& ctx, const std::string& id);

  asio::io_context& Io() { return io_; }

 private:
  explicit TaskManager(ManagerOptions options);
  void LoadAll();
  void LoadNamespace(const std::string& ns);
  // Connects to the shim at bundle/address; Connect call within 5 s.
  // Uses `log` (the bundle's log FIFO copier) or opens one.
  Result<std::shared_ptr<Shim>> Connect(
      const Bundle& bundle, ShimCommand command, const std::string& address,
      std::shared_ptr<LogCopier> log = nullptr,
      std::chrono::milliseconds dial_timeout = std::chrono::seconds(10));
  ShimCommand CommandFor(const Bundle& bundle, const std::string& binary) const;
  // Runs `delete` for a shim that is gone, publishes /tasks/exit + /tasks/delete when the task
  // was known, removes bundle and entry. Blocking.
  void CleanupDeadShim(const Bundle& bundle, const ShimCommand& command, bool publish);
  // Hook for a connection lost: cleanup on the cleanup thread.
  void OnShimClosed(const std::weak_ptr<Shim>& shim);
  void Remove(const std::string& ns, const std::string& id, const Shim* which);

  static std::string Key(const std::string& ns, const std::string& id) { return ns + "/" + id; }

  ManagerOptions options_;
  ShimResolver resolver_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::jthread io_thread_;
  asio::thread_pool cleanup_{1};

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Shim>> tasks_;  // "<ns>/<id>"
};

}  // namespace berth::runtime

#pragma once
// What `berth run`, `berth containers` and `berth tasks` share: ctr's container flags, the
// container creation of ctr's run.NewContainer (image unpack, snapshot, spec, runtime options),
// and ctr's foreground task loop (stdio, tty, signals, exit status).
#include <github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "berth/client.h"
#include "berth/containers.h"
#include "berth/tasks.h"
#include "cli/app.h"
#include "cli/client.h"
#include "common/errdefs.h"
#include "common/mount.h"

namespace berth::cli {

namespace containers_api = containerd::services::containers::v1;

inline constexpr const char* kDefaultRuntime = "io.containerd.runc.v2";
inline constexpr const char* kStopSignalLabel = "io.containerd.image.config.stop-signal";
inline constexpr const char* kRuncOptionsTypeUrl = "containerd.runc.v1.Options";

// ctr's ContainerFlags, SnapshotterFlags and the Linux run flags (`run` and `containers create`).
struct ContainerFlags {
  std::string snapshotter;
  std::vector<std::string> snapshotter_labels;
  std::string config;  // -c: a spec file instead of an image
  std::string cwd;
  std::vector<std::string> env;
  std::string env_file;
  std::vector<std::string> labels;
  std::vector<std::string> annotations;
  std::vector<std::string> mounts;
  bool net_host = false;
  bool privileged = false;
  bool read_only = false;
  std::string runtime = kDefaultRuntime;
  std::string runtime_config_path;
  bool tty = false;
  std::vector<std::string> with_ns;
  std::string pid_file;
  bool allow_new_privs = false;
  uint64_t memory_limit = 0;
  std::vector<std::string> devices;
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;
  bool seccomp = false;
  std::string seccomp_profile;
  bool rootfs = false;
  bool no_pivot = false;
  int64_t cpu_quota = -1;
  uint64_t cpu_period = 0;
  std::string rootfs_propagation;
  std::string runc_binary;
  std::string runc_root;
  bool runc_systemd_cgroup = false;
  double cpus = 0;
  int cpu_shares = 1024;
  std::optional<std::string> cgroup;  // set: --cgroup given (even "")
  std::string platform;
  std::string user;  // berth extension (nerdctl's --user): a USER value for the process
};
void AddContainerFlags(CLI::App* cmd, ContainerFlags& flags);

// ctr's run.NewContainer: `args` = IMAGE|ROOTFS ID [CMD ARG...] (with --config: ID only).
// Unpacks the image if needed, prepares snapshot `ID` on its top layer, builds the spec and
// creates the container with runtime options (containerd.runc.v1.Options for runc v2). The
// prepared snapshot is removed again if the container cannot be created.
Result<containers_api::Container> NewContainer(const Session& session, const ContainerFlags& flags,
                                               const std::vector<std::string>& args);

// ---- Containers ----

Result<containers_api::Container> GetContainer(const Session& session, const std::string& id);
// container.Delete: NotFound if missing; with `cleanup_snapshot` the snapshot goes first
// (WithSnapshotCleanup), then the record.
Status DeleteContainer(const Session& session, const containers_api::Container& c,
                       bool cleanup_snapshot);
// The container's stored OCI spec: the JSON text of its Any (NotFound if it has none).
Result<std::string> ContainerSpecJson(const containers_api::Container& c);

// ---- Tasks ----

// The client library over the CLI's connection (its namespace and --timeout).
berth::Client LibClient(const Session& session);
// The library's view of a container record the CLI has loaded, over the same connection.
berth::Container LibContainer(const Session& session, const containers_api::Container& c);
// ctr's container.Task(ctx, nil) for container `id` (whose record the caller has checked): its
// task, not attached to its stdio; NotFound "no running task found: ..." when it has none.
Result<berth::Task> LoadTask(const Session& session, const std::string& id);

// How a task's stdio is wired (ctr's tasks.NewTask arguments).
struct TaskIoOptions {
  bool null_io = false;
  std::string log_uri;
  std::string fifo_dir;
};

// ctr's `run`/`tasks start` after the container exists: creates the task with stdio (tty when
// the spec says so), then, unless `detach`, waits, starts, relays the terminal size or the
// signals, waits for the exit, deletes the task and returns the exit status. `pid_file` gets the
// task's pid. With `detach` the task keeps running and 0 is returned.
struct StartTaskOptions {
  TaskIoOptions io;
  bool detach = false;
  std::string pid_file;
  bool no_pivot = false;
};
Result<int> StartTask(const Session& session, const containers_api::Container& container,
                      const StartTaskOptions& options);

// ctr's `tasks exec` after the checks: Exec with `process_spec` (an OCI process, JSON), FIFOs
// named after `exec_id`, then as StartTask; returns the exec'd process's exit status.
Result<int> ExecProcess(const berth::Task& task, const std::string& exec_id,
                        const nlohmann::json& process_spec, bool tty, bool detach,
                        const TaskIoOptions& io_options);
// ctr's `tasks attach`: the task's own FIFOs (from its state), never removed; the task is
// deleted once it exits and its exit status returned.
Result<int> AttachTask(const Session& session, const containers_api::Container& container);

// A signal name or number as ctr's signal.ParseSignal: "SIGKILL", "KILL", "9".
Result<int> ParseSignal(std::string_view text);

// Like SetAction for commands that end with a process's exit status: an error prints
// "berth: <message>" and exits 1; a non-zero code exits with it and prints nothing (ctr's
// cli.NewExitError("", code)). Forwarded signals are blocked before the action runs.
void SetCodeAction(CLI::App* cmd, std::function<Result<int>()> action);

// Runs fn with the container's rootfs mounted read-only on a temp dir (oci's user lookups);
// fn gets nullopt when the container has no snapshot.
Status WithContainerRoot(const Session& session, const containers_api::Container& c,
                         const std::function<Status(const std::optional<std::string>&)>& fn);

// Registers the commands of this group.
void AddContainersCommand(CLI::App& root, App& app);
void AddTasksCommand(CLI::App& root, App& app);
void AddRunCommand(CLI::App& root, App& app);

}  // namespace berth::cli

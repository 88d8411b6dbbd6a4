#pragma once
// The CRI plugin's in-memory view of its pod sandboxes and containers (containerd's
// pkg/cri/store): what it persisted (metadata in the container record's extension, container
// status in a file) plus what only lives while berthd runs (the task, the netns, the stdio).
//
// Locking: a Store's mutex guards its map; each Sandbox/Container has its own mutex for its
// mutable status. Never hold a store lock while calling into the runtime or CNI.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/errdefs.h"
#include "cri/api/api.pb.h"
#include "cri/io/container_io.h"
#include "cri/io/log_file.h"
#include "runtime/task.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// A one-shot signal: Fire() wakes every WaitFor(); later waits return at once.
class Signal {
 public:
  void Fire();
  bool Fired() const;
  // True if fired before `deadline`.
  bool WaitUntil(std::chrono::steady_clock::time_point deadline) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool fired_ = false;
};

// ---- Sandboxes

enum class SandboxState { kReady, kNotReady, kUnknown };

// What is persisted in the sandbox container's extension (io.cri-containerd.sandbox.metadata).
struct SandboxMetadata {
  std::string id;
  std::string name;  // <name>_<namespace>_<uid>_<attempt>
  v1::PodSandboxConfig config;
  std::string netns_path;
  std::string ip;
  std::vector<std::string> additional_ips;
  std::string runtime_handler;
  std::string cni_result;  // JSON: the CNI results of the pod's networks
};

struct Sandbox {
  SandboxMetadata meta;
  int64_t created_at = 0;  // unix ns (the container record's creation)
  std::string image;       // the sandbox image as resolved (record name)
  std::string runtime_type;

  mutable std::mutex mu;
  SandboxState state = SandboxState::kUnknown;
  uint32_t pid = 0;
  std::shared_ptr<runtime::Task> task;  // while it runs
  bool netns_closed = false;
  std::shared_ptr<Signal> stopped = std::make_shared<Signal>();  // the pause process exited
};

// ---- Containers

// Persisted in criRoot/containers/<id>/status.
struct ContainerStatus {
  uint32_t pid = 0;
  int64_t created_at = 0;  // unix ns
  int64_t started_at = 0;
  int64_t finished_at = 0;
  int32_t exit_code = 0;
  std::string reason;
  std::string message;
  // Not persisted:
  bool unknown = false;
  bool starting = false;
  bool removing = false;

  v1::ContainerState State() const;
};

// Persisted in the container's extension (io.cri-containerd.container.metadata).
struct ContainerMetadata {
  std::string id;
  std::string name;  // <name>_<pod name>_<pod namespace>_<pod uid>_<attempt>
  std::string sandbox_id;
  v1::ContainerConfig config;
  std::string image_ref;  // the image ID (sha256:<config digest>)
  std::string log_path;   // absolute; "" = no log
  std::string stop_signal;
};

struct Container {
  ContainerMetadata meta;

  mutable std::mutex mu;
  ContainerStatus status;
  std::shared_ptr<runtime::Task> task;  // while created/running
  std::shared_ptr<io::ContainerIo> io;  // the FIFOs, from create until the exit is handled
  std::shared_ptr<io::LogFile> log;     // while running with a log path
  bool oom_killed = false;              // a /tasks/oom event came for it
  bool stop_signal_sent = false;
  std::shared_ptr<Signal> stopped = std::make_shared<Signal>();  // the exit was handled

  ContainerStatus Status() const {
    std::lock_guard lock(mu);
    return status;
  }
};

// ---- Indexes

// Unique names (containerd's registrar): Reserve fails while another id holds the name.
class NameIndex {
 public:
  // Unknown `name "<n>" is reserved for "<id>"` (containerd's plain error); reserving the same
  // pair again is fine.
  Status Reserve(const std::string& name, const std::string& id);
  void Release(const std::string& name);

 private:
  std::mutex mu_;
  std::map<std::string, std::string> names_;
};

// Objects by id with lookup by unique id prefix (containerd's truncindex).
template <class T>
class Store {
 public:
  void Add(std::shared_ptr<T> v, const std::string& id) {
    std::lock_guard lock(mu_);
    items_[id] = std::move(v);
  }
  void Remove(const std::string& id) {
    std::lock_guard lock(mu_);
    items_.erase(id);
  }
  void Clear() {
    std::lock_guard lock(mu_);
    items_.clear();
  }
  // By full id or unique prefix: NotFound `<kind> "<p>" not found` / Unknown for an ambiguous
  // prefix ("Multiple IDs found with provided prefix: <p>").
  Result<std::shared_ptr<T>> Get(const std::string& id_or_prefix, const char* kind) const;
  // The full id of a prefix, or "" when unknown/ambiguous (for filters).
  std::string Resolve(const std::string& id_or_prefix) const;
  std::vector<std::shared_ptr<T>> List() const {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<T>> out;
    out.reserve(items_.size());
    for (const auto& [id, v] : items_) out.push_back(v);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<T>> items_;
};

// Random 64-hex ids (32 random bytes), as containerd's util.GenerateID.
std::string GenerateId();

}  // namespace berth::cri

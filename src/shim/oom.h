#pragma once
// OOM notifications for containers' cgroups: memory.oom_control through cgroup.event_control and
// an eventfd on cgroup v1, inotify on memory.events on v2. Runs on the shim's io_context.
#include <asio.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/errdefs.h"
#include "shim/cgroups.h"

namespace berth::shim {

class OomWatcher {
 public:
  using Callback = std::function<void(const std::string& id)>;
  OomWatcher(asio::io_context& io, Callback on_oom) : io_(io), on_oom_(std::move(on_oom)) {}
  ~OomWatcher();
  OomWatcher(const OomWatcher&) = delete;
  OomWatcher& operator=(const OomWatcher&) = delete;

  // Starts watching container `id`'s memory cgroup; a cgroup without a memory controller is
  // FailedPrecondition (the caller logs it, as containerd does).
  Status Add(const std::string& id, const Cgroup& cg);
  void Remove(const std::string& id);

 private:
  struct Watch;
  void Arm(const std::string& id);

  asio::io_context& io_;
  Callback on_oom_;
  std::map<std::string, std::shared_ptr<Watch>> watches_;
};

}  // namespace berth::shim

// StopPodSandbox and RemovePodSandbox (containerd 1.6 sandbox_stop.go, sandbox_remove.go;
// reference/cri.md §5).
#include <fmt/format.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/mount.h"
#include "cri/service.h"

namespace berth::cri {

Status Service::StopPodSandbox(const CallContext& cc, const v1::StopPodSandboxRequest& req) {
  BERTH_ASSIGN_OR_RETURN(auto sb, GetSandbox(req.pod_sandbox_id()));
  return StopSandbox(cc, sb);
}

Status Service::StopSandbox(const CallContext& cc, const std::shared_ptr<Sandbox>& sb) {
  const std::string& id = sb->meta.id;
  // Every container of the pod, forcibly.
  for (const auto& c : containers_.List()) {
    if (c->meta.sandbox_id != id) continue;
    if (auto st = DoStopContainer(cc, c, 0); !st) {
      return std::move(st).error().Wrap(fmt::format("failed to stop container {:?}", c->meta.id));
    }
  }
  // The pod's shm.
  if (auto st = mount::UnmountAll(SandboxStateDir(id) + "/shm"); !st) {
    return std::move(st).error().Wrap("failed to unmount sandbox shm");
  }
  // The pause process.
  std::shared_ptr<runtime::Task> task;
  {
    std::lock_guard lock(sb->mu);
    if (sb->state == SandboxState::kReady || sb->state == SandboxState::kUnknown) task = sb->task;
  }
  if (task) {
    if (auto st = task->Kill("", SIGKILL, true); !st && !st.error().Is(Errc::kNotFound)) {
      return std::move(st).error().Wrap(fmt::format("failed to kill sandbox container {:?}", id));
    }
    if (!sb->stopped->WaitUntil(cc.deadline)) {
      return Error(Errc::kDeadlineExceeded,
                   fmt::format("failed to wait for sandbox container {:?} to stop", id));
    }
  } else {
    std::lock_guard lock(sb->mu);
    if (sb->state == SandboxState::kUnknown) sb->state = SandboxState::kNotReady;
  }
  // The network: CNI DEL, then the netns itself does not outlive Stop.
  BERTH_TRY(TeardownNetwork(sb));
  return Ok();
}

Status Service::TeardownNetwork(const std::shared_ptr<Sandbox>& sb) {
  if (sb->meta.netns_path.empty()) return Ok();
  {
    std::lock_guard lock(sb->mu);
    if (sb->netns_closed) return Ok();
  }
  auto ns = cni::NetNs::Load(sb->meta.netns_path);
  auto closed = ns.Closed();
  cni::PodNetwork pod = PodNetworkOf(sb->meta);
  if (closed && *closed) pod.netns = "";
  if (auto st = cni_->Remove(pod); !st) {
    return std::move(st).error().Wrap(
        fmt::format("failed to destroy network for sandbox {:?}", sb->meta.id));
  }
  if (auto st = ns.Remove(); !st) {
    return std::move(st).error().Wrap(
        fmt::format("failed to remove network namespace for sandbox {:?}", sb->meta.id));
  }
  std::lock_guard lock(sb->mu);
  sb->netns_closed = true;
  return Ok();
}

Status Service::RemovePodSandbox(const CallContext& cc, const v1::RemovePodSandboxRequest& req) {
  auto found = GetSandbox(req.pod_sandbox_id());
  if (!found) {
    if (found.error().Is(Errc::kNotFound)) return Ok();
    return std::move(found).error();
  }
  auto sb = *found;
  const std::string& id = sb->meta.id;
  BERTH_TRY(StopSandbox(cc, sb));
  if (!sb->meta.netns_path.empty()) {
    auto closed = cni::NetNs::Load(sb->meta.netns_path).Closed();
    if (closed && !*closed) {
      return Unknown(
          fmt::format("sandbox network namespace {:?} is not fully closed", sb->meta.netns_path));
    }
  }
  for (const auto& c : containers_.List()) {
    if (c->meta.sandbox_id != id) continue;
    if (auto st = DoRemoveContainer(cc, c); !st) {
      return std::move(st).error().Wrap(fmt::format("failed to remove container {:?}", c->meta.id));
    }
  }
  (void)mount::UnmountAll(SandboxStateDir(id) + "/shm");
  if (auto st = fs::RemoveAll(SandboxRootDir(id)); !st) {
    return std::move(st).error().Wrap("failed to remove sandbox root directory");
  }
  if (auto st = fs::RemoveAll(SandboxStateDir(id)); !st) {
    return std::move(st).error().Wrap("failed to remove sandbox state directory");
  }
  // A task left over (the sandbox never became ready, or a lost exit).
  if (auto t = options_.tasks->Get(Ctx(), id); t) {
    if (auto d = options_.tasks->Delete(Ctx(), id); !d && !d.error().Is(Errc::kNotFound)) {
      return std::move(d).error().Wrap("failed to delete sandbox task");
    }
  }
  if (auto st = DeleteRecord(id); !st) {
    return std::move(st).error().Wrap(fmt::format("failed to delete sandbox container {:?}", id));
  }
  sandboxes_.Remove(id);
  sandbox_names_.Release(sb->meta.name);
  {
    std::lock_guard lock(stats_mu_);
    last_cpu_.erase("sandbox:" + id);
  }
  return Ok();
}

}  // namespace berth::cri

// PodSandboxStatus and ListPodSandbox (containerd 1.6 sandbox_status.go, sandbox_list.go;
// reference/cri.md §5).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cri/service.h"

namespace berth::cri {
namespace {

v1::PodSandboxState ToCri(SandboxState s) {
  return s == SandboxState::kReady ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY;
}

}  // namespace

Status Service::GetPodSandboxStatus(const v1::PodSandboxStatusRequest& req,
                                    v1::PodSandboxStatusResponse* resp) {
  BERTH_ASSIGN_OR_RETURN(auto sb, GetSandbox(req.pod_sandbox_id()));
  SandboxState state;
  uint32_t pid;
  bool netns_closed;
  {
    std::lock_guard lock(sb->mu);
    state = sb->state;
    pid = sb->pid;
    netns_closed = sb->netns_closed;
  }
  const auto& cfg = sb->meta.config;
  auto* out = resp->mutable_status();
  out->set_id(sb->meta.id);
  *out->mutable_metadata() = cfg.metadata();
  out->set_state(ToCri(state));
  out->set_created_at(sb->created_at);
  const bool host_network =
      cfg.linux().security_context().namespace_options().network() == v1::NODE;
  if (!host_network && !netns_closed) {
    out->mutable_network()->set_ip(sb->meta.ip);
    for (const auto& ip : sb->meta.additional_ips) {
      out->mutable_network()->add_additional_ips()->set_ip(ip);
    }
  } else {
    out->mutable_network()->set_ip("");
  }
  auto* opts = out->mutable_linux()->mutable_namespaces()->mutable_options();
  const auto& ns = cfg.linux().security_context().namespace_options();
  opts->set_network(ns.network());
  opts->set_pid(ns.pid());
  opts->set_ipc(ns.ipc());
  *out->mutable_labels() = cfg.labels();
  *out->mutable_annotations() = cfg.annotations();
  out->set_runtime_handler(sb->meta.runtime_handler);
  if (req.verbose()) {
    nlohmann::json info = {
        {"pid", pid},
        {"processStatus", state == SandboxState::kReady ? "running" : "stopped"},
        {"netNamespaceClosed", netns_closed},
        {"image", sb->image},
        {"snapshotKey", sb->meta.id},
        {"snapshotter", options_.config.snapshotter},
        {"runtimeHandler", sb->meta.runtime_handler},
        {"runtimeType", sb->runtime_type},
        {"cniResult", sb->meta.cni_result.empty()
                          ? nlohmann::json(nullptr)
                          : nlohmann::json::parse(sb->meta.cni_result, nullptr, false)}};
    if (auto spec = ContainerSpecOf(sb->meta.id); spec) info["runtimeSpec"] = *spec;
    (*resp->mutable_info())["info"] = info.dump();
  }
  return Ok();
}

Status Service::ListPodSandbox(const v1::ListPodSandboxRequest& req,
                               v1::ListPodSandboxResponse* resp) {
  const auto& f = req.filter();
  std::string id;
  if (!f.id().empty()) {
    id = sandboxes_.Resolve(f.id());
    if (id.empty()) id = f.id();
  }
  for (const auto& sb : sandboxes_.List()) {
    if (!id.empty() && sb->meta.id != id) continue;
    SandboxState state;
    {
      std::lock_guard lock(sb->mu);
      state = sb->state;
    }
    if (f.has_state() && ToCri(state) != f.state().state()) continue;
    const auto& cfg = sb->meta.config;
    bool match = true;
    for (const auto& [k, v] : f.label_selector()) {
      auto it = cfg.labels().find(k);
      if (it == cfg.labels().end() || it->second != v) match = false;
    }
    if (!match) continue;
    auto* out = resp->add_items();
    out->set_id(sb->meta.id);
    *out->mutable_metadata() = cfg.metadata();
    out->set_state(ToCri(state));
    out->set_created_at(sb->created_at);
    *out->mutable_labels() = cfg.labels();
    *out->mutable_annotations() = cfg.annotations();
    out->set_runtime_handler(sb->meta.runtime_handler);
  }
  return Ok();
}

}  // namespace berth::cri

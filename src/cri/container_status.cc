// ContainerStatus, ListContainers, UpdateContainerResources, ReopenContainerLog (containerd 1.6
// container_status.go, container_list.go, container_update_resources.go, container_log_reopen.go;
// reference/cri.md §7).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "cri/service.h"

namespace berth::cri {
namespace {

bool LabelsMatch(const google::protobuf::Map<std::string, std::string>& selector,
                 const google::protobuf::Map<std::string, std::string>& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

Result<std::shared_ptr<Sandbox>> Service::GetSandbox(const std::string& id) const {
  if (id.empty()) return InvalidArgument("sandbox id cannot be empty");
  auto sb = sandboxes_.Get(id, "sandbox");
  if (!sb) return std::move(sb).error().Wrap("an error occurred when try to find sandbox");
  return sb;
}

Result<std::shared_ptr<Container>> Service::GetContainer(const std::string& id) const {
  if (id.empty()) return InvalidArgument("container id cannot be empty");
  auto c = containers_.Get(id, "container");
  if (!c) return std::move(c).error().Wrap("an error occurred when try to find container");
  return c;
}

Result<oci::Spec> Service::ContainerSpecOf(const std::string& id) const {
  BERTH_ASSIGN_OR_RETURN(auto record,
                         const_cast<metadata::ContainerStore&>(containers_meta_).Get(Ctx(), id));
  if (!record.spec) return NotFound(fmt::format("container {:?} has no spec", id));
  auto spec = nlohmann::json::parse(record.spec->value, nullptr, false);
  if (spec.is_discarded()) return InvalidArgument(fmt::format("container {:?}: bad spec", id));
  return spec;
}

void Service::ToCriContainer(const Container& c, v1::Container* out) const {
  const auto& cfg = c.meta.config;
  out->set_id(c.meta.id);
  out->set_pod_sandbox_id(c.meta.sandbox_id);
  *out->mutable_metadata() = cfg.metadata();
  *out->mutable_image() = cfg.image();
  out->set_image_ref(c.meta.image_ref);
  out->set_state(c.status.State());
  out->set_created_at(c.status.created_at);
  *out->mutable_labels() = cfg.labels();
  *out->mutable_annotations() = cfg.annotations();
}

Status Service::GetContainerStatus(const v1::ContainerStatusRequest& req,
                                   v1::ContainerStatusResponse* resp) {
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(req.container_id()));
  const auto& cfg = c->meta.config;
  ContainerStatus st = c->Status();
  auto* out = resp->mutable_status();
  out->set_id(c->meta.id);
  *out->mutable_metadata() = cfg.metadata();
  auto state = st.State();
  out->set_state(state);
  out->set_created_at(st.created_at);
  if (state == v1::CONTAINER_RUNNING || state == v1::CONTAINER_EXITED ||
      state == v1::CONTAINER_UNKNOWN) {
    out->set_started_at(st.started_at);
  }
  if (state == v1::CONTAINER_EXITED || state == v1::CONTAINER_UNKNOWN) {
    out->set_finished_at(st.finished_at);
    out->set_exit_code(st.exit_code);
  }
  std::string reason = st.reason;
  if (state == v1::CONTAINER_EXITED && reason.empty()) {
    reason = st.exit_code == 0 ? "Completed" : "Error";
  }
  out->set_reason(reason);
  out->set_message(st.message);
  // image: the image's first repo tag, else what was asked; image_ref: first repo digest, else
  // the ID.
  v1::ImageSpec image = cfg.image();
  std::string image_ref = c->meta.image_ref;
  if (auto view = ResolveImage(c->meta.image_ref); view) {
    if (!view->repo_tags.empty()) image.set_image(view->repo_tags.front());
    if (!view->repo_digests.empty()) image_ref = view->repo_digests.front();
  }
  *out->mutable_image() = image;
  out->set_image_ref(image_ref);
  *out->mutable_labels() = cfg.labels();
  *out->mutable_annotations() = cfg.annotations();
  *out->mutable_mounts() = cfg.mounts();
  out->set_log_path(c->meta.log_path);
  if (auto spec = ContainerSpecOf(c->meta.id); spec) {
    *out->mutable_resources()->mutable_linux() = spec::ResourcesFromSpec(*spec);
    if (req.verbose()) {
      nlohmann::json info = {{"sandboxID", c->meta.sandbox_id},
                             {"pid", st.pid},
                             {"removing", st.removing},
                             {"snapshotKey", c->meta.id},
                             {"snapshotter", options_.config.snapshotter},
                             {"runtimeType", ""},
                             {"runtimeSpec", *spec}};
      if (auto sb = sandboxes_.Get(c->meta.sandbox_id, "sandbox"); sb) {
        info["runtimeType"] = (*sb)->runtime_type;
      }
      (*resp->mutable_info())["info"] = info.dump();
    }
  }
  return Ok();
}

Status Service::ListContainers(const v1::ListContainersRequest& req,
                               v1::ListContainersResponse* resp) {
  const auto& f = req.filter();
  std::string id_filter;
  if (!f.id().empty()) {
    id_filter = containers_.Resolve(f.id());
    if (id_filter.empty()) id_filter = f.id();
  }
  std::string sandbox_filter;
  if (!f.pod_sandbox_id().empty()) {
    sandbox_filter = sandboxes_.Resolve(f.pod_sandbox_id());
    if (sandbox_filter.empty()) sandbox_filter = f.pod_sandbox_id();
  }
  for (const auto& c : containers_.List()) {
    std::lock_guard lock(c->mu);
    if (!id_filter.empty() && c->meta.id != id_filter) continue;
    if (!sandbox_filter.empty() && c->meta.sandbox_id != sandbox_filter) continue;
    if (f.has_state() && c->status.State() != f.state().state()) continue;
    if (!LabelsMatch(f.label_selector(), c->meta.config.labels())) continue;
    ToCriContainer(*c, resp->add_containers());
  }
  return Ok();
}

Status Service::UpdateContainerResources(const v1::UpdateContainerResourcesRequest& req) {
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(req.container_id()));
  const std::string& id = c->meta.id;
  {
    std::lock_guard lock(c->mu);
    if (c->status.removing) {
      return Unknown(fmt::format("container {:?} is in removing state", id));
    }
  }
  BERTH_ASSIGN_OR_RETURN(auto sb, GetSandbox(c->meta.sandbox_id));
  BERTH_ASSIGN_OR_RETURN(const RuntimeConfig* rc, RuntimeFor(sb->meta.runtime_handler));
  BERTH_ASSIGN_OR_RETURN(auto record, containers_meta_.Get(Ctx(), id));
  if (!record.spec) return NotFound(fmt::format("container {:?} has no spec", id));
  auto spec = nlohmann::json::parse(record.spec->value, nullptr, false);
  if (spec.is_discarded()) return InvalidArgument(fmt::format("container {:?}: bad spec", id));
  const metadata::Any old_spec = *record.spec;
  if (auto st = spec::UpdateResources(spec, req.linux(), SpecOptions(*rc)); !st) {
    return std::move(st).error().Wrap("failed to update resource in spec");
  }
  record.spec = metadata::Any{old_spec.type_url, spec.dump()};
  BERTH_TRY(containers_meta_.Update(Ctx(), record, {"spec"}));
  std::shared_ptr<runtime::Task> task;
  {
    std::lock_guard lock(c->mu);
    if (c->status.State() == v1::CONTAINER_RUNNING) task = c->task;
  }
  if (task) {
    google::protobuf::Any resources;
    resources.set_type_url(std::string(oci::kResourcesTypeUrl));
    nlohmann::json r = nlohmann::json::object();
    if (auto l = spec.find("linux"); l != spec.end()) {
      if (auto res = l->find("resources"); res != l->end()) r = *res;
    }
    resources.set_value(r.dump());
    if (auto st = task->Update(resources, {}); !st) {
      // Roll back the stored spec.
      record.spec = old_spec;
      (void)containers_meta_.Update(Ctx(), record, {"spec"});
      return std::move(st).error().Wrap("failed to update resources");
    }
  }
  return Ok();
}

Status Service::ReopenContainerLog(const v1::ReopenContainerLogRequest& req) {
  BERTH_ASSIGN_OR_RETURN(auto c, GetContainer(req.container_id()));
  std::shared_ptr<io::LogFile> log;
  {
    std::lock_guard lock(c->mu);
    if (c->status.State() != v1::CONTAINER_RUNNING) {
      return Unknown("container is not running");
    }
    log = c->log;
  }
  if (log == nullptr) return Ok();  // no log path: nothing to reopen
  return log->Reopen();
}

}  // namespace berth::cri
